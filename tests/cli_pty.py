"""The real ``flujo-trio`` console script in a pseudo-terminal, read through a terminal
emulator (pyte), so tests see the live view as a person would."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pyte

from tests.cli_run import CLI, ENV, ROOT

#: How long a test waits for the screen to show what it expects before it fails.
DEADLINE_S = 60.0


class Terminal:
    """``flujo-trio ARGS`` on a pty of ``columns`` x ``lines``."""

    def __init__(
        self,
        *args: str,
        extra_env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        columns: int = 120,
        lines: int = 50,
    ) -> None:
        master, slave = os.openpty()
        env = {
            **ENV,
            "TERM": "xterm-256color",
            "COLUMNS": str(columns),
            "LINES": str(lines),
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [CLI, *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.master = master
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.closed = False

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:  # a failed test leaves nothing running
            self.process.kill()
            self.process.wait(timeout=DEADLINE_S)
        if not self.closed:
            os.close(self.master)
            self.closed = True

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip()

    def _feed(self, timeout: float) -> None:
        """Read what the program wrote (waiting at most ``timeout`` for it)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the program closed the terminal
            chunk = b""
        if not chunk:
            os.close(self.master)
            self.closed = True
            return
        self.stream.feed(chunk)

    def wait_for(self, seen: Callable[[str], bool] | str) -> str:
        """The screen as soon as it shows ``seen`` (text, or a test of the screen)."""
        check = seen if callable(seen) else (lambda text: seen in text)
        deadline = time.monotonic() + DEADLINE_S
        while not check(self.text):
            left = deadline - time.monotonic()
            assert left > 0 and not self.closed, f"never shown: {seen!r}\n{self.text}"
            self._feed(left)
        return self.text

    def interrupt(self) -> None:
        """Ctrl-C, as the terminal would send it."""
        self.process.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str]:
        """Read to the end; the exit code and the last screen."""
        deadline = time.monotonic() + DEADLINE_S
        while not self.closed:
            left = deadline - time.monotonic()
            assert left > 0, f"the program did not end:\n{self.text}"
            self._feed(left)
        return self.process.wait(timeout=DEADLINE_S), self.text


def lines_with(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if all(n in line for n in needles)]
