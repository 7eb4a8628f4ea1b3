"""The commands hear Ctrl-C and SIGTERM however the kernel delivers them and wherever they land."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.local.support import REPO_ROOT
from tests.pty_command import ctrl_c_as_in_a_terminal


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    """A script in an interpreter of its own (signals go to its process, never the test runner's)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )


# SIGTERM sent to a thread other than the main one, as the kernel may deliver a process's signal:
# its Python handler only runs once the main thread wakes.
SIGNAL_ON_ANOTHER_THREAD = textwrap.dedent(
    """
    import signal, threading, time
    from ingest.interrupts import interrupt, wait_for_interrupt

    signal.signal(signal.SIGTERM, interrupt)

    def other_thread():
        time.sleep(0.3)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=other_thread, daemon=True).start()
    try:
        wait_for_interrupt()
    except KeyboardInterrupt:
        print("interrupted")
    """
)


def test_a_signal_delivered_to_another_thread_still_stops_the_wait() -> None:
    finished = run_script(SIGNAL_ON_ANOTHER_THREAD)

    assert finished.stdout.strip() == "interrupted", finished.stderr


# Ctrl-C landing where Python drops the KeyboardInterrupt its handler raises (a finalizer run during
# a poll: "Exception ignored in …"), stood for by a poll that catches it.
INTERRUPT_DROPPED_MID_POLL = textwrap.dedent(
    """
    import io, os, signal, time
    from ingest.api import ApiResponse
    from ingest.commands.upload import JobTimeout, wait_for_job

    class DroppingApi:
        def get(self, path):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here and raises
            except KeyboardInterrupt:
                pass  # dropped, as Python drops one raised inside __del__
            return ApiResponse(200, {"jobId": "j", "status": "QUEUED"})

    class Target:
        flags = "--local --stack dev"
        label = "dev (local)"

        def api(self):
            return DroppingApi()

    try:
        wait_for_job(Target(), "j", timeout=5, progress=False, out=io.StringIO())
    except KeyboardInterrupt:
        print("interrupted")
    except JobTimeout:
        print("waited on until the timeout")
    """
)


def test_an_interrupt_python_drops_mid_poll_still_ends_the_wait() -> None:
    finished = run_script(INTERRUPT_DROPPED_MID_POLL)

    assert finished.stdout.strip() == "interrupted", finished.stdout + finished.stderr


# Ctrl-C while the wait's loop checks whether one came, many times over: the handler must take no
# lock the loop may hold (a threading.Event's did: 8 hangs in 20 in review).
INTERRUPT_DURING_THE_CHECK = textwrap.dedent(
    """
    import os, signal, threading, time
    from ingest.interrupts import interruptible, raise_if_interrupted

    for attempt in range(20):
        threading.Timer(0.01 + attempt / 1000, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            with interruptible() as heard:
                while True:
                    raise_if_interrupted(heard)
        except KeyboardInterrupt:
            pass
    print("interrupted 20 times")
    """
)


def test_an_interrupt_during_the_loops_check_never_hangs_it() -> None:
    finished = run_script(INTERRUPT_DURING_THE_CHECK)

    assert finished.stdout.strip() == "interrupted 20 times", finished.stdout + finished.stderr


# `upload --wait &` in a script: the shell has it ignore Ctrl-C, and the wait keeps ignoring it.
IGNORED_INTERRUPT = textwrap.dedent(
    """
    import os, signal, time
    from ingest.interrupts import interruptible, raise_if_interrupted

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interruptible() as heard:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        raise_if_interrupted(heard)
    print("still ignored" if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else "handler changed")
    """
)


def test_a_wait_the_shell_told_to_ignore_ctrl_c_keeps_ignoring_it() -> None:
    finished = run_script(IGNORED_INTERRUPT)

    assert finished.stdout.strip() == "still ignored", finished.stdout + finished.stderr


# A second SIGTERM landing while the handler of the first runs, at its worst point: inside whatever
# lock the handler takes to record the interrupt (seen: `make up` sent SIGTERM by both make and a
# killpg, and `local up` hung for good in its handler). The trace stands for the kernel's timing: it
# raises the second signal from the line that runs once `threading.Event.set` holds its lock, the
# lock the handler took; a handler that takes no lock never reaches that line.
SIGNAL_DURING_THE_HANDLER = textwrap.dedent(
    """
    import inspect, signal, sys, threading
    from ingest import interrupts

    source, first = inspect.getsourcelines(threading.Event.set)
    LOCKED_LINE = first + next(n for n, line in enumerate(source) if "self._flag = True" in line)
    raised = []

    def trace(frame, event, arg):
        if event == "line" and frame.f_code is threading.Event.set.__code__ and frame.f_lineno == LOCKED_LINE:
            if not raised:
                raised.append(True)
                signal.raise_signal(signal.SIGTERM)
        return trace

    signal.signal(signal.SIGTERM, interrupts.interrupt)
    sys.settrace(trace)
    threading.settrace(trace)
    try:
        signal.raise_signal(signal.SIGTERM)
        for _ in range(1000):
            pass
    except KeyboardInterrupt:
        sys.settrace(None)
        print("interrupted", interrupts.INTERRUPTED.came)
    """
)


def test_a_signal_during_the_handler_of_another_never_hangs_it() -> None:
    finished = run_script(SIGNAL_DURING_THE_HANDLER)

    assert finished.stdout.strip() == "interrupted True", finished.stderr
