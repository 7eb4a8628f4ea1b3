"""`local up` waits for Ctrl-C or SIGTERM however the kernel delivers it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.local.support import REPO_ROOT

# SIGTERM sent to a thread other than the main one, as the kernel may deliver a process's signal:
# its Python handler only runs once the main thread wakes.
SIGNAL_ON_ANOTHER_THREAD = textwrap.dedent(
    """
    import signal, threading, time
    from ingest.commands.local import interrupt, wait_for_interrupt

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
    finished = subprocess.run(
        [sys.executable, "-c", SIGNAL_ON_ANOTHER_THREAD], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20
    )

    assert finished.stdout.strip() == "interrupted", finished.stderr
