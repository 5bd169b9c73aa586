"""The progress of long commands: plain lines with rate and ETA off a terminal, a bar on one."""
from __future__ import annotations

import io

from integration.cli.backfill import cell
from integration.cli.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_interval_with_the_measured_rate_and_eta():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("queueing", 100, stream=out, interval=5.0, clock=clock)
    clock.now = 1.0
    progress.tick(10)  # within the interval: nothing printed
    assert out.getvalue() == ""
    clock.now = 5.0
    progress.tick(10)  # 20 done in 5 s: 4/s, 80 left -> 20 s
    assert out.getvalue() == "queueing: 20/100, ETA 20s (4/s)\n"
    assert "\r" not in out.getvalue() and "[" not in out.getvalue()


def test_a_terminal_gets_a_bar_redrawn_in_place():
    clock, out = FakeClock(), Tty()
    progress = Progress("queueing", 10, stream=out, clock=clock)
    clock.now = 1.0
    progress.tick(5)
    progress.finish()
    assert out.getvalue().startswith("\rqueueing: [###############...............] 5/10, ETA 1s")
    assert out.getvalue().endswith("\n")


def test_report_cells_that_a_spreadsheet_would_run_are_quoted():
    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("acc-1") == "acc-1"
