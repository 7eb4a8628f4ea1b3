"""One Lambda execution environment: the runtime loop a function's process runs, as Lambda's Python runtime does.

Started by `local.functions` as
`python -I -S -u bootstrap.py <task root> <runtime dir> <handler> <request fd> <response fd> <marker>
[<emulator port> <relay socket>]`, so nothing of the caller's interpreter leaks in: no site-packages,
no PYTHON* variables, no script folder on the path. This file imports the standard library only;
the handler then sees exactly the task root (the unpacked archive, Lambda's /var/task), the runtime
libraries (Lambda's /var/runtime: boto3 and its dependencies) and the standard library. A library
the archive lacks fails to import here as it would on AWS.

The protocol runs over its own pipe pair, one JSON object per line, so the function's stdout and
stderr stay what they are on Lambda: its log.
- after init: `{"ready": true}`, or `{"init_error": <error>}` and the process exits;
- per invocation, in: `{"id", "event", "deadline_ms", "arn", "client_context"}`;
  out: `{"ok": <result>}` or `{"error": <error>}`, an error shaped as Lambda's Python runtime reports it.
In a network namespace of its own (`local.netns`: the last two arguments), it first brings the
loopback interface up and serves 127.0.0.1:<emulator port> by passing each connection through the
relay socket to the emulator: the only address the function, or anything it starts, can reach.
After each invocation the marker line goes to stdout (stderr shares its pipe), so the host knows it
has every log line the invocation wrote before it logs Lambda's END line.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback
from types import SimpleNamespace
from typing import Any

# Local mode must never reach real AWS (an offline emulator once consumed a production queue).
# Audit hooks cannot be removed once installed, so handler code cannot switch the guard off.
_GUARDED_EVENTS = frozenset({"socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg"})
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
# A synchronous invocation's response limit (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_RESPONSE_BYTES = 6_291_556


def _is_loopback(host: Any) -> bool:
    """127.0.0.0/8, ::1 or the name localhost; anything else (a name, another address) is not local."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _destination(event: str, args: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """(host, port) an audited socket call would reach, or None for a Unix socket or a passive lookup."""
    if event == "socket.getaddrinfo":  # (host, port, family, type, flags)
        return None if args[0] is None else (args[0], args[1])
    address = args[1] if len(args) > 1 else None  # connect, sendto, sendmsg: (socket, address)
    if isinstance(address, tuple) and address:
        return address[0], address[1] if len(address) > 1 else None
    return None  # AF_UNIX paths and the like stay on this machine


def _network_guard(event: str, args: tuple[Any, ...]) -> None:
    if event not in _GUARDED_EVENTS:
        return
    destination = _destination(event, args)
    if destination is None or _is_loopback(destination[0]):
        return
    host, port = destination
    message = f"local mode: connections leave 127.0.0.1 only; refused {host}:{port}"
    # botocore turns the error into a generic EndpointConnectionError: say it in the log too.
    os.write(2, f"[ERROR] {message}\n".encode())
    raise PermissionError(message)


# Linux's interface ioctls (<linux/sockios.h>, <net/if.h>): read and set an interface's flags.
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """A new network namespace's loopback interface is down: bring it up (as `ip link set lo up`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(control, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


# The host's relay (local/netns.py) pumps its side the same way; this process can import nothing of
# local/ (its path holds the task root and the runtime's SDK only), so the few lines are its own.
def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _connection(inside: socket.socket, outside: socket.socket) -> None:
    """Both ways until both end, then both closed."""
    back = threading.Thread(target=_pump, args=(outside, inside), daemon=True)
    back.start()
    _pump(inside, outside)
    back.join()
    inside.close()
    outside.close()


def _serve_emulator(port: int, relay_path: str) -> None:
    """127.0.0.1:`port` inside the namespace, each connection passed through the relay socket."""
    _loopback_up()
    listener = socket.create_server(("127.0.0.1", port), backlog=64)

    def accept() -> None:
        while True:
            inside, _ = listener.accept()
            outside = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                outside.connect(relay_path)
            except OSError:
                inside.close()
                outside.close()
                continue
            threading.Thread(target=_connection, args=(inside, outside), daemon=True).start()

    threading.Thread(target=accept, name="emulator-relay", daemon=True).start()


def lambda_error(error: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    """An error as Lambda's Python runtime reports it: message, type and the frames as text."""
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "errorMessage": str(error) if message is None else message,
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _log_error(error: dict[str, Any]) -> None:
    """The `[ERROR]` entry Lambda's runtime writes for an unhandled error, traceback included."""
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}", "Traceback (most recent call last):"]
    lines += [frame.rstrip("\n") for frame in error["stackTrace"]]
    os.write(2, ("\n".join(lines) + "\n").encode(errors="replace"))


def load_handler(handler: str) -> Any:
    """Import `module.path.function` as Lambda's init phase does, failing with Lambda's error types."""
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as error:
        message = f"Syntax error in module '{module_name}': {error}"
        raise _InitError(lambda_error(error, "Runtime.UserCodeSyntaxError", message)) from None
    except ImportError as error:
        message = f"Unable to import module '{module_name}': {error}"
        raise _InitError(lambda_error(error, "Runtime.ImportModuleError", message)) from None
    except Exception as error:
        # An exception raised by module-level code: Lambda reports it as such, with its own type.
        raise _InitError(lambda_error(error)) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        raise _InitError({"errorMessage": message, "errorType": "Runtime.HandlerNotFound", "stackTrace": []})
    return function


class _InitError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error


class LambdaContext:
    """The `context` argument Lambda passes to a Python handler."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = request["arn"]
        self.aws_request_id = request["id"]
        self.identity = None
        self.client_context = _client_context(request.get("client_context"))
        self._deadline_ms = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _client_context(value: dict[str, Any] | None) -> SimpleNamespace | None:
    """The mobile client context as attributes (`client`, `custom`, `env`), as the runtime builds it."""
    if value is None:
        return None
    client = value.get("client")
    return SimpleNamespace(
        client=None if client is None else SimpleNamespace(**client), custom=value.get("custom"), env=value.get("env")
    )


def _invoke(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    try:
        result = handler(request["event"], LambdaContext(request))
    except Exception as error:
        failure = lambda_error(error)
        _log_error(failure)
        return {"error": failure}
    try:
        payload = json.dumps(result)
    except (TypeError, ValueError) as error:
        failure = lambda_error(error, "Runtime.MarshalError", f"Unable to marshal response: {error}")
        _log_error(failure)
        return {"error": failure}
    if len(payload.encode()) > MAX_RESPONSE_BYTES:
        message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
        failure = {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge", "stackTrace": []}
        _log_error(failure)
        return {"error": failure}
    return {"ok": json.loads(payload)}


def _mark_logs(marker: bytes) -> None:
    """Everything the invocation printed is written; then the marker, on the real descriptors."""
    for stream in (sys.stdout, sys.stderr):
        # The handler may have closed or replaced a stream: the marker still goes to the descriptor.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os.write(1, marker)  # the host reads stderr through the same pipe, as Lambda's log has both


def main(argv: list[str]) -> int:
    task_root, runtime_dir, handler_name, request_fd, response_fd, marker, *relay = argv
    if relay:
        _serve_emulator(int(relay[0]), relay[1])
    sys.path[:] = [task_root, runtime_dir, *sys.path]
    os.chdir(task_root)
    sys.addaudithook(_network_guard)
    requests = os.fdopen(int(request_fd), "rb")
    responses = os.fdopen(int(response_fd), "wb")

    def send(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message).encode() + b"\n")  # buffered: a large reply is written whole
        responses.flush()

    try:
        handler = load_handler(handler_name)
    except _InitError as failure:
        _log_error(failure.error)
        send({"init_error": failure.error})
        return 1
    send({"ready": True})
    line_marker = f"{marker}\n".encode()
    for line in requests:  # EOF: the host closed the pipe or is gone, and so is this environment
        reply = _invoke(handler, json.loads(line))
        _mark_logs(line_marker)
        send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
