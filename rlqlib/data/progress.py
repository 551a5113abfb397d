"""Progress bars that suit where they are shown: live in a terminal or a notebook, a line every few seconds in a log.

tqdm redraws its bar in place with a carriage return; in a file (a CI log, papermill's log, a SLURM job's output file,
the log of an ``rlq train`` worker) every redraw lands on one ever longer line. :func:`bar` is tqdm's usual bar
(:mod:`tqdm.auto`) when its stream is a terminal or the code runs in a Jupyter kernel, and otherwise a plain ASCII bar
that writes a whole line — no carriage return, no cursor movement — at most every :data:`LOG_INTERVAL_S` seconds
(and on :meth:`~tqdm.std.tqdm.set_postfix`), plus its final state when it is kept (``leave``)::

    for spec in bar(specs, desc="SynthCC smoke", unit="img"):
        ...

Every bar of ``rlq synth``, of training (``runtime.progress``) and of the book's run list goes through it. It lives in
the bottom tier so that every tier can use it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

LOG_INTERVAL_S = 10.0  # seconds between two lines of a bar written to a log


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether a bar on ``stream`` (default: ``sys.stderr``, tqdm's) is shown live: the stream is a terminal, or this
    process is a Jupyter kernel (tqdm.auto draws a widget there)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and "IPKernelApp" in getattr(shell, "config", {}):
        return True
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class _Lines:
    """A stream for tqdm that turns each in-place redraw (``\\r`` + text + padding) into one line of text."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        if line:
            self._stream.write(line + "\n")

    def flush(self) -> None:
        getattr(self._stream, "flush", lambda: None)()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, ... of the wrapped stream
        return getattr(self._stream, name)


def bar(iterable: Iterable | None = None, *, file: IO[str] | None = None, interval: float = LOG_INTERVAL_S,
        **kwargs: Any):
    """A tqdm bar over ``iterable`` (or a manual one: ``total=``), live when :func:`interactive`, else a line at most
    every ``interval`` seconds on ``file``.

    Args:
        iterable: what to iterate (None: call ``update`` yourself).
        file: the stream (default: ``sys.stderr``).
        interval: seconds between two lines in a log (tqdm's ``mininterval`` and ``maxinterval`` there).
        **kwargs: tqdm's (``total``, ``desc``, ``unit``, ``leave``, ``disable`` ...).
    """
    if kwargs.get("disable") or interactive(file):
        from tqdm.auto import tqdm

        return tqdm(iterable, file=file, **kwargs)
    from tqdm.std import tqdm

    lines = _Lines(sys.stderr if file is None else file)
    return tqdm(iterable, file=lines, **{**kwargs, "mininterval": interval, "maxinterval": interval, "ascii": True,
                                         "dynamic_ncols": False, "ncols": kwargs.get("ncols", 100)})
