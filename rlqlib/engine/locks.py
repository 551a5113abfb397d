"""A lock per run folder that holds across processes and machines sharing a filesystem, taken over from a dead holder.

:func:`rlqlib.engine.runs.run_or_load` holds ``<run folder>/.lock`` (:data:`LOCK`) while it trains, so that two
workers, two ``make book`` or two SLURM jobs never train the same run::

    with hold(run_dir / LOCK) as lock:   # waits while a live process holds it; takes it over from a dead one
        ...                               # train; lock.lost: another process took it over meanwhile

Protocol:

* **Taking it** is atomic: the lock's content is written whole to a temporary file, which is then hard-linked to the
  lock's name; ``link(2)`` fails when the name exists, atomically, on a local filesystem and on every NFS version (the
  classic NFS-safe lock; ``open(O_CREAT|O_EXCL)`` is atomic from NFSv3 on, link also before), and no reader ever sees
  a half-written lock. The content (:class:`Owner`): host, pid and pid namespace, start time, a random token and a
  label (the SLURM job id, if any).
* **Heartbeat**: while held, a daemon thread touches the lock every :data:`HEARTBEAT_S` seconds (its mtime is the
  heartbeat), after checking that the lock is still its own (same token); if it is not, :attr:`Lock.lost` turns true.
* **Stale**: a lock whose heartbeat is older than :data:`STALE_S` seconds (its holder's machine died, or the holder
  hangs), or at once one whose holder ran on this host (same host name and pid namespace) under a pid that no longer
  runs. The heartbeat's age is this machine's clock minus the file's mtime: the machines' clocks must agree to well
  within :data:`STALE_S` (NTP), and an NFS client's attribute cache (up to a minute) only makes a lock look older.
* **Taking over** a stale lock: it is renamed to a unique name (of several processes racing, one rename wins), checked
  to be the very lock judged stale (its token; if a new holder took the name meanwhile, that lock is linked back), and
  deleted; the name is then taken as usual. A holder whose lock was taken over (it hung for :data:`STALE_S`) sees
  :attr:`Lock.lost`; the trainer then stops after its epoch (:func:`rlqlib.engine.runs.run_or_load`).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK = ".lock"  # the lock's name inside a run folder
HEARTBEAT_S = 30.0  # seconds between two touches of a held lock
STALE_S = 300.0  # a lock not touched for this long belongs to a dead (or hung) holder
POLL_S = 2.0  # seconds between two looks at a lock held by another process


class LockLost(RuntimeError):
    """This process's lock was taken over by another process (it judged this one dead: no heartbeat for STALE_S)."""


@dataclass(frozen=True)
class Owner:
    """Who holds a lock: host name, pid and pid namespace (Linux; '' elsewhere), start time (seconds since the epoch),
    a random token naming this holding, and a label (the SLURM job id, if any)."""

    host: str
    pid: int
    pidns: str
    started: float
    token: str
    label: str = ""

    def describe(self) -> str:
        """``host pid N[, label]``: for log lines."""
        return f"{self.host} pid {self.pid}" + (f" ({self.label})" if self.label else "")


def _pidns() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def me(label: str | None = None) -> Owner:
    """A new :class:`Owner` for this process (label: ``SLURM_JOB_ID`` when unset)."""
    label = os.environ.get("SLURM_JOB_ID", "") if label is None else label
    return Owner(socket.gethostname(), os.getpid(), _pidns(), time.time(), secrets.token_hex(8), label)


def read(path: str | Path) -> tuple[Owner | None, float] | None:
    """The holder of the lock at ``path`` (None when its content is not a lock's) and its heartbeat's age in seconds;
    None when there is no lock."""
    path = Path(path)
    try:
        age = time.time() - path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return Owner(**json.loads(text)), age
    except (ValueError, TypeError):
        return None, age


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale(owner: Owner | None, age: float, stale_s: float = STALE_S) -> bool:
    """Whether a lock held by ``owner`` whose heartbeat is ``age`` seconds old belongs to a dead holder."""
    if age > stale_s:
        return True
    here = owner is not None and owner.host == socket.gethostname() and owner.pidns == _pidns()
    return here and not _pid_alive(owner.pid)


def _link(path: Path, owner: Owner) -> bool:
    """Create the lock at ``path`` holding ``owner``, atomically; False when it exists."""
    tmp = path.with_name(f"{path.name}.tmp-{owner.token}")
    tmp.write_text(json.dumps(asdict(owner)))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # NFS: the link may have been made though its reply was lost
        if tmp.stat().st_nlink == 2:
            return True
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, seen: Owner | None) -> None:
    """Remove the stale lock at ``path`` held by ``seen``, unless another process has replaced it meanwhile."""
    grave = path.with_name(f"{path.name}.stale-{secrets.token_hex(8)}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:  # another process removed it first
        return
    found = read(grave)
    moved = found[0] if found else None
    if moved is not None and (seen is None or moved.token != seen.token):  # a new holder's: put it back
        try:
            os.link(grave, path)
        except FileExistsError:  # a third process took the name: that new holder has lost (its heartbeat sees it)
            pass
    grave.unlink(missing_ok=True)


class Lock:
    """A held lock (:func:`acquire`): refreshed by a daemon thread until :meth:`release`."""

    def __init__(self, path: Path, owner: Owner, heartbeat_s: float) -> None:
        self.path, self.owner = path, owner
        self._lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True,
                                        name=f"heartbeat {path}")
        self._thread.start()

    @property
    def lost(self) -> bool:
        """Whether another process has taken this lock over (it is no longer this process's)."""
        return self._lost or not self._mine()

    def check(self, *_: object) -> None:
        """Raise :class:`LockLost` when the lock was taken over (a per-epoch callback of the trainer)."""
        if self.lost:
            raise LockLost(f"{self.path}: another process took this run over (this one sent no heartbeat for "
                           f"{STALE_S:.0f} s); it continues from the last checkpoint")

    def _mine(self) -> bool:
        found = read(self.path)
        return found is not None and found[0] is not None and found[0].token == self.owner.token

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                if not self._mine():
                    raise FileNotFoundError
                os.utime(self.path)
            except FileNotFoundError:
                self._lost = True
                log.warning("lock %s was taken over by another process", self.path)
                return

    def release(self) -> None:
        """Stop the heartbeat and remove the lock (if it is still this process's)."""
        self._stop.set()
        self._thread.join()
        if self._mine():
            self.path.unlink(missing_ok=True)


def acquire(path: str | Path, *, timeout_s: float | None = None, poll_s: float = POLL_S, stale_s: float = STALE_S,
            heartbeat_s: float = HEARTBEAT_S, label: str | None = None,
            on_wait: Callable[[Owner | None], None] | None = None) -> Lock:
    """Take the lock at ``path`` (its folder must exist), waiting while a live process holds it and taking it over
    from a dead one (see the module docstring).

    Args:
        timeout_s: give up after this many seconds of waiting (None: wait as long as the holder lives).
        poll_s: seconds between two looks at another process's lock.
        stale_s: heartbeat age beyond which the holder counts as dead.
        heartbeat_s: seconds between two touches of the lock while held.
        label: shown to waiters (default: ``SLURM_JOB_ID``).
        on_wait: called once, with the holder, when this call has to wait.

    Raises:
        TimeoutError: ``timeout_s`` passed while another live process held the lock.
    """
    path = Path(path)
    owner = me(label)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waited = False
    while True:
        if _link(path, owner):
            return Lock(path, owner, heartbeat_s)
        found = read(path)
        if found is None:  # released meanwhile
            continue
        holder, age = found
        if stale(holder, age, stale_s):
            log.warning("taking over the stale lock %s of %s (heartbeat %.0f s old)", path,
                        holder.describe() if holder else "an unknown holder", age)
            _take_over(path, holder)
            continue
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{path} is held by {holder.describe() if holder else 'another process'}; waited "
                               f"{timeout_s} s (delete the file only if no process holds it)")
        if not waited and on_wait is not None:
            on_wait(holder)
        waited = True
        time.sleep(poll_s)


@contextmanager
def hold(path: str | Path, **kwargs) -> Iterator[Lock]:
    """:func:`acquire` the lock at ``path`` for the block, release it after (keyword arguments: :func:`acquire`'s)."""
    lock = acquire(path, **kwargs)
    try:
        yield lock
    finally:
        lock.release()
