"""The sandbox's log: the library's warnings go to a file in the town's folder.

A small model's degraded calls (a day plan refused and replaced by the routine, an
importance score that fell back to the heuristic, a skipped reflection) are logged as
warnings by the code that degrades, and with no logging configured Python prints them
on stderr, in the middle of the town's screen. While a sandbox session is open its
records (info and up, of every `concordia_like` logger) go to `sandbox.log` in the
town's run folder (`memory/RUN/sandbox.log` by default) instead, and the screen gets
at most one line after a command or step: how many warnings it wrote, and where. The
file is created at the first record, and follows the session into a fork's folder."""

from __future__ import annotations

import logging
from pathlib import Path

LOGGER = "concordia_like"
LOG_NAME = "sandbox.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RunLog(logging.Handler):
    """Writes the library's records to one run folder's log and counts its warnings."""

    def __init__(self, folder: Path) -> None:
        super().__init__(logging.INFO)
        self.path = folder / LOG_NAME
        self._file = self._open(self.path)
        self.warnings = 0
        self._logger = logging.getLogger(LOGGER)
        self._saved = (self._logger.level, self._logger.propagate)
        self._logger.addHandler(self)
        self._logger.setLevel(logging.INFO)
        # not on stderr too (Python's last-resort handler, or a root handler)
        self._logger.propagate = False

    @staticmethod
    def _open(path: Path) -> logging.FileHandler:
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter(FORMAT))
        return handler

    def emit(self, record: logging.LogRecord) -> None:
        self._file.handle(record)
        if record.levelno >= logging.WARNING:
            self.warnings += 1

    def move_to(self, folder: Path) -> None:
        """Go on in another run folder (a fork's)."""
        self._file.close()
        self.path = folder / LOG_NAME
        self._file = self._open(self.path)

    def take(self) -> int:
        """Warnings written since the last take."""
        n, self.warnings = self.warnings, 0
        return n

    def close(self) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]
        self._file.close()
        super().close()
