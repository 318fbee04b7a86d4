"""The progress bar of ``tasklake demo``, on stderr: a bar redrawn in place on a terminal, a
line per stage elsewhere (a log keeps no carriage returns)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._lock = threading.Lock()
        self.label, self.total, self.done = "", 0, 0
        self._drawn = 0.0

    def stage(self, label: str, total: int) -> None:
        """Begin a stage of ``total`` units (0: a stage with no count)."""
        with self._lock:
            self.label, self.total, self.done = label, total, 0
            if self.tty:
                self._draw()
            else:
                self.stream.write(f"tasklake demo: {label}…\n")
                self.stream.flush()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done = min(self.total, self.done + n) if self.total else self.done + n
            now = time.monotonic()
            if self.tty and (now - self._drawn > 0.05 or self.done == self.total):
                self._draw()

    def finish(self, note: str = "") -> None:
        """End the stage: the bar full, and a newline."""
        with self._lock:
            self.done = self.total
            if self.tty:
                self._draw()
                self.stream.write("\n")
            elif note:
                self.stream.write(f"tasklake demo: {note}\n")
            self.stream.flush()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        if self.total:
            filled = round(WIDTH * self.done / self.total)
            bar = "█" * filled + "░" * (WIDTH - filled)
            share = 100 * self.done // self.total
            text = f"\r{self.label:<24} {bar} {share:3d}%  {self.done:,}/{self.total:,}"
        else:
            text = f"\r{self.label:<24} …"
        self.stream.write(text + " " * 4)
        self.stream.flush()
