"""The run lock: one holder at a time across processes, waiting for a live holder, taking over from a dead one, the
heartbeat, and a holder that learns it lost its lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from rlqlib.engine import locks as L
from tests.engine.polling import until


def _write(path: Path, owner: L.Owner, age_s: float = 0.0) -> None:
    path.write_text(json.dumps(asdict(owner)))
    then = time.time() - age_s
    os.utime(path, (then, then))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer runs
    return proc.pid


def test_processes_hold_the_lock_one_at_a_time(tmp_path):
    script = textwrap.dedent(f"""
        import os, time
        from rlqlib.engine import locks as L
        for _ in range(3):
            with L.hold({str(tmp_path / 'lock')!r}, poll_s=0.01):
                with open({str(tmp_path / 'trace')!r}, 'a') as fh:
                    fh.write(f'enter {{os.getpid()}}\\n'); fh.flush()
                    time.sleep(0.05)
                    fh.write(f'exit {{os.getpid()}}\\n')
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    trace = (tmp_path / "trace").read_text().split()
    events = list(zip(trace[::2], trace[1::2]))
    assert len(events) == 18
    for enter, leave in zip(events[::2], events[1::2]):  # every enter is followed by the same process's exit
        assert enter[0] == "enter" and leave == ("exit", enter[1])
    assert not (tmp_path / "lock").exists() and not list(tmp_path.glob("lock.*"))  # no temporary left behind


def test_a_live_holder_is_waited_for_then_the_lock_is_free(tmp_path):
    path = tmp_path / "lock"
    first = L.acquire(path, label="job 7")
    seen = []
    with pytest.raises(TimeoutError, match="job 7"):
        L.acquire(path, timeout_s=0.3, poll_s=0.05, on_wait=seen.append)
    assert seen == [first.owner]  # told once who holds it
    holder, age = L.read(path)
    assert holder == first.owner and holder.host == socket.gethostname() and holder.pid == os.getpid()
    first.release()
    assert L.read(path) is None
    with L.hold(path, timeout_s=1) as second:
        assert second.owner.token != first.owner.token and not second.lost


def test_a_lock_whose_heartbeat_is_old_is_taken_over(tmp_path):
    path = tmp_path / "lock"
    elsewhere = L.Owner("another-node", 4242, "pid:[1]", time.time() - 3600, "deadbeef", "slurm 99")
    _write(path, elsewhere, age_s=L.STALE_S + 60)
    with L.hold(path, timeout_s=5, poll_s=0.05) as lock:
        assert L.read(path)[0] == lock.owner
    _write(path, elsewhere, age_s=10)  # a recent heartbeat from another machine: alive
    with pytest.raises(TimeoutError):
        L.acquire(path, timeout_s=0.2, poll_s=0.05)


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    path = tmp_path / "lock"
    dead = replace(L.me(), pid=_dead_pid(), token="0123")
    _write(path, dead)  # a fresh heartbeat, but its process is gone
    assert L.stale(dead, 0.0)
    with L.hold(path, timeout_s=5, poll_s=0.05, stale_s=3600) as lock:
        assert L.read(path)[0] == lock.owner
    assert not L.stale(L.me(), 0.0)  # this process runs


def test_the_heartbeat_refreshes_the_lock_and_a_holder_learns_it_was_taken_over(tmp_path):
    path = tmp_path / "lock"
    lock = L.acquire(path, heartbeat_s=0.05)
    old = time.time() - 1000
    os.utime(path, (old, old))
    assert until(lambda: L.read(path)[1] < 100, 20.0, 0.02)  # touched again
    usurper = replace(L.me(label=""), token="feed")
    _write(path, usurper)  # another process took it over (it judged this one dead)
    assert until(lambda: lock.lost, 20.0, 0.02)
    with pytest.raises(L.LockLost):
        lock.check()
    lock.release()
    assert L.read(path)[0] == usurper  # not removed: it is not this process's any more


def test_a_take_over_never_removes_a_lock_taken_meanwhile(tmp_path):
    path = tmp_path / "lock"
    stale, fresh = replace(L.me(), token="01"), replace(L.me(), token="02")
    _write(path, fresh)
    L._take_over(path, stale)  # judged stale by its old content, replaced meanwhile: it is put back
    assert L.read(path)[0] == fresh
    L._take_over(path, fresh)
    assert L.read(path) is None and not list(tmp_path.glob("lock.*"))
