"""Progress bars in a log (not a terminal): whole lines, no carriage returns, a bounded number of them; live bars in a
terminal as before."""

from __future__ import annotations

import io

from rlqlib.data import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_a_bar_writes_few_whole_lines():
    log = io.StringIO()
    for _ in progress.bar(range(5000), file=log, desc="SynthCC smoke", unit="img", interval=3600):
        pass
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text and text.endswith("\n")
    assert 1 <= len(lines) <= 3  # the first state and the last, not one redraw per update
    assert lines[-1].startswith("SynthCC smoke: 100%") and "5000/5000" in lines[-1]


def test_in_a_log_a_postfix_change_is_a_line_and_a_temporary_bar_leaves_no_blank_line():
    log = io.StringIO()
    with progress.bar(total=3, file=log, desc="planned runs", unit="run", interval=3600) as runs:
        for i in range(3):
            runs.update(1)
            runs.set_postfix({"done": i + 1, "running": 0, "failed": 0})
    lines = log.getvalue().splitlines()
    assert len(lines) == 5 and "done=3" in lines[-1]  # start, three changes, the final state
    log = io.StringIO()
    for _ in progress.bar(range(100), file=log, desc="cap", leave=False, interval=3600):
        pass
    text = log.getvalue()
    assert text.endswith("\n") and all(text.split("\n")[:-1])  # whole lines, none blank


def test_a_terminal_gets_the_live_bar_and_disabled_bars_write_nothing():
    tty = _Terminal()
    assert progress.interactive(tty) and not progress.interactive(io.StringIO())
    for _ in progress.bar(range(10), file=tty, desc="x", mininterval=0):
        pass
    assert "\r" in tty.getvalue()  # redrawn in place
    quiet = io.StringIO()
    for _ in progress.bar(range(10), file=quiet, disable=True):
        pass
    assert quiet.getvalue() == ""
