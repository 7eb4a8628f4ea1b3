"""Ctrl-C and SIGTERM in the commands: heard wherever they land, and what a command exits with then.

`interrupt` is the handler of the commands that run until stopped (`local up`, `demo`), and
`wait_for_interrupt` their main thread's sleep. `interruptible` serves a command's long wait.

Ctrl-C during a command's long wait is heard even where Python drops it.

Python runs a signal's handler in the main thread at the next bytecode, and the default handler
raises `KeyboardInterrupt` there. Where that is inside a finalizer (a socket or an HTTP response
collected during a poll), Python prints "Exception ignored in …" and drops the exception
(https://docs.python.org/3/reference/datamodel.html#object.__del__): a wait that relies on it polls on
as if nothing had come. `interruptible()` records that the interrupt came, so a wait's loop checks
it at every turn (`raise_if_interrupted`). A Ctrl-C the command was started ignoring (`cmd &` in a
script: the shell sets SIGINT to SIG_IGN) stays ignored, as Python itself leaves it.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command Ctrl-C ended."""


class Heard:
    """Whether an interrupt came: a plain flag, which a signal handler may set where a lock could
    deadlock (`threading.Event.set` takes a lock the main thread may hold, inside `Event.wait`)."""

    def __init__(self) -> None:
        self.came = False


@contextlib.contextmanager
def interruptible() -> Iterator[Heard]:
    """While open, Ctrl-C marks what it yields and raises `KeyboardInterrupt`, after any handler that
    was installed before (which may raise its own). A Ctrl-C the shell had the command ignore (`&` in
    a non-interactive shell: SIG_IGN inherited) stays ignored. Outside the main thread, where no
    handler can be installed, nothing is marked and Ctrl-C stays the main thread's concern."""
    heard = Heard()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is signal.SIG_IGN:
        yield heard
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        heard.came = True
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield heard
    finally:
        signal.signal(signal.SIGINT, previous)


def raise_if_interrupted(heard: Heard) -> None:
    """Raise `KeyboardInterrupt` if an interrupt came, even one whose own exception was dropped."""
    if heard.came:
        raise KeyboardInterrupt


INTERRUPTED = Heard()
"""Marked once Ctrl-C or SIGTERM arrived: whatever error start-up then ends with, it was interrupted."""


def interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C and SIGTERM: stop. The KeyboardInterrupt can land anywhere (even inside an import,
    which then fails with another error), so `INTERRUPTED` records that it came: a plain flag, as a
    second signal may run this handler again while the first runs it, and a lock taken here (a
    `threading.Event`'s) would then wait for ever for itself (seen: SIGTERM from make and from a
    `kill` of its process group at once)."""
    INTERRUPTED.came = True
    raise KeyboardInterrupt


def wait_for_interrupt(done: threading.Event | None = None) -> None:
    """Block until a signal handler raises (`interrupt`: Ctrl-C, SIGTERM), or until `done` is set
    (by any thread).

    The kernel may deliver a signal to any thread, and Python runs the handler in the main thread
    only once that thread runs bytecode again: sleeping in `signal.pause()` then sleeps through it
    (seen: SIGTERM ignored while the pollers were busy). The wakeup fd is written whichever thread
    the signal lands on, so the main thread wakes and runs the handler."""
    with _Wakeup() as wakeup:
        if done is not None:
            wakeup.when_set(done)
        wakeup.wait(done)


class _Wakeup:
    """What the main thread sleeps on: a socket pair written by a signal (the wakeup fd) or by another
    thread (`wake`)."""

    def __enter__(self) -> _Wakeup:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        return self

    def when_set(self, event: threading.Event) -> None:
        """Wake the sleeper once `event` is set (a thread that watches it)."""
        threading.Thread(target=lambda: (event.wait(), self.wake()), name="wakeup", daemon=True).start()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or already closed
            self._writer.send(b"\0")

    def wait(self, done: threading.Event | None) -> None:
        while done is None or not done.is_set():
            select.select([self._reader], [], [])
            with contextlib.suppress(BlockingIOError):  # another wake-up already drained it
                self._reader.recv(4096)

    def __exit__(self, *_exc: object) -> None:
        signal.set_wakeup_fd(self._previous)
        self._reader.close()
        self._writer.close()
