"""A function's whole process tree reaches the emulator and nothing else: a network namespace of its own.

The bootstrap's audit hook refuses a function's own connections off 127.0.0.1, but a process the
function starts (`subprocess.run`) has no such hook. So each function process starts in a new
network namespace (`unshare --user --map-root-user --net`, a user namespace first so that no
privilege is needed: https://man7.org/linux/man-pages/man7/network_namespaces.7.html,
https://man7.org/linux/man-pages/man1/unshare.1.html), holding only a loopback interface. Inside it,
the bootstrap listens on 127.0.0.1:<emulator's port> and passes each connection through a Unix
socket (a file, which every network namespace sees alike) to an `EmulatorRelay` here, which opens
it to the emulator. Any other address, from the function or anything it starts, has no route.

Where the OS refuses a namespace (user namespaces disabled, seccomp in a container), `refusal()`
says why, start-up prints it in one line, and functions run with the audit hook alone.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--")
_PROBE_TIMEOUT_SECONDS = 30
_CHUNK = 1 << 16


@functools.cache
def refusal() -> str | None:
    """None when this machine gives a process a network namespace of its own; else why not, in one line."""
    unshare = shutil.which("unshare") or "unshare"
    try:
        probe = subprocess.run(
            [unshare, *UNSHARE[1:], "true"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        reason = str(error)
    else:
        if probe.returncode == 0:
            return None
        said = probe.stderr.strip().splitlines()
        reason = said[-1] if said else f"unshare exited with {probe.returncode}"
    return (
        f"network: this machine refuses a network namespace ({reason}); a function's own connections"
        " off 127.0.0.1 are refused, but processes it starts can reach any address"
    )


def confined(command: list[str]) -> list[str]:
    """`command`, started in a network namespace of its own (only where `refusal()` is None)."""
    return [shutil.which("unshare") or "unshare", *UNSHARE[1:], *command]


class EmulatorRelay:
    """A Unix socket whose connections go on to the emulator's TCP port on 127.0.0.1: the only way
    out of a function's namespace. Its folder is a short private one (a socket's path is limited to
    108 bytes), removed by `close()`."""

    def __init__(self, emulator_port: int) -> None:
        self._port = emulator_port
        self._folder = Path(tempfile.mkdtemp(prefix="ingest-relay-"))  # 0700
        self.path = self._folder / "emulator.sock"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"relay-{emulator_port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                inside, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                outside = socket.create_connection(("127.0.0.1", self._port))
            except OSError:
                inside.close()
                continue
            relay(inside, outside)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways between two connected sockets, each way on a thread of its own, until both end."""
    done = threading.Semaphore(0)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            done.release()

    def close_when_done() -> None:
        done.acquire()
        done.acquire()
        one.close()
        other.close()

    for source, sink in ((one, other), (other, one)):
        threading.Thread(target=pump, args=(source, sink), daemon=True).start()
    threading.Thread(target=close_when_done, daemon=True).start()
