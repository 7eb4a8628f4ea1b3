"""A command whose stdin, stdout and stderr are a terminal (a pseudo-terminal of a given size), as a
user's: what it sends is read as it comes (a live display blocks once the terminal's buffer is full)."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def ctrl_c_as_in_a_terminal() -> None:
    """`preexec_fn` of a command a test sends SIGINT to: SIGINT at its default, as a shell leaves it for
    a command it runs in the foreground. A test runner started in the background (`nohup make test &`)
    has it ignored, every child inherits that, and Python then installs no KeyboardInterrupt for it: a
    command that rightly keeps an ignored Ctrl-C ignored would never see the test's."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class PtyCommand:
    def __init__(self, command: Sequence[str], env: Mapping[str, str], *, columns: int, rows: int = 50) -> None:
        primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        try:
            self.process = subprocess.Popen(
                list(command),
                cwd=REPO_ROOT,
                env=dict(env),
                stdin=secondary,
                stdout=secondary,
                stderr=secondary,
                preexec_fn=ctrl_c_as_in_a_terminal,
            )
        finally:
            os.close(secondary)
        self._primary = primary
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._primary, 65536)
            except OSError:  # EIO: every writer of the terminal closed it
                return
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    def text(self) -> str:
        """What the command has sent so far."""
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", errors="replace")

    def finish(self, timeout: float, *, interrupt: bool = False) -> str:
        """Everything the command sent, once it has exited: after Ctrl-C (SIGINT) if `interrupt`; killed
        if it has not exited `timeout` seconds on."""
        try:
            if interrupt and self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(10)
            os.close(self._primary)
        return self.text()
