"""Progress for long commands (CONTRACT §1): a bar redrawn in place on a terminal, a plain line every
few seconds otherwise (a log file or a CI job must not fill with carriage returns). The rate is
measured, and the ETA, when the total is known, is the remaining count at that rate."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import click


class Progress:
    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 interval: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else interval
        self.clock = clock
        self.done = 0
        self.started = clock()
        self._last = self.started

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        text = f"{self.label}: {self.done}"
        if self.total:
            width = 30
            filled = int(width * min(self.done, self.total) / self.total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] " if self.tty else ""
            text = f"{self.label}: {bar}{self.done}/{self.total}"
            if rate > 0:
                text += f", ETA {int((self.total - self.done) / rate)}s"
        return text + f" ({rate:.0f}/s)"

    def tick(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            click.echo(("\r" + self.line()) if self.tty else self.line(), file=self.stream, nl=not self.tty)

    def finish(self) -> None:
        if self.tty:
            click.echo("\r" + self.line(), file=self.stream)
