"""HTTP plumbing under the etcd client: one POST to one member, streams, failure translation.

Kept apart from the client so the API methods read as etcd calls and the failure rules live
in one place.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import requests
import urllib3.exceptions

from kubectl_state.core.errors import ConnectionFailed, EtcdError, OperationTimeout
from kubectl_state.core.etcd.types import COMPACTED_MESSAGE, JSON, CompactedError

# gRPC status codes the client acts on.
GRPC_UNAVAILABLE = 14
GRPC_UNAUTHENTICATED = 16
GRPC_UNIMPLEMENTED = 12


class Unreachable(Exception):
    """No answer from one endpoint. Internal: the client turns it into ConnectionFailed.

    `sent` is False only when the request provably never left this process (the TCP
    connection was refused or never established), which is what makes a write safe to
    send to another member.
    """

    def __init__(self, endpoint: str, reason: str, *, sent: bool, timed_out: bool) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.sent = sent
        self.timed_out = timed_out


def unreachable(endpoint: str, exc: requests.RequestException, *, before_request: bool = False) -> Unreachable:
    inner: BaseException | None = None
    if exc.args and isinstance(exc.args[0], urllib3.exceptions.MaxRetryError):
        inner = exc.args[0].reason
    never_connected = isinstance(exc, requests.ConnectTimeout) or isinstance(
        inner, urllib3.exceptions.NewConnectionError
    )
    return Unreachable(
        endpoint,
        describe_failure(exc, inner),
        sent=not (before_request or never_connected),
        timed_out=isinstance(exc, requests.Timeout),
    )


def describe_failure(exc: requests.RequestException, inner: BaseException | None) -> str:  # noqa: PLR0911
    """A short reason for a person; requests' own text repeats the URL and urllib3's retry talk."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer in time"
    if isinstance(inner, urllib3.exceptions.NameResolutionError):
        return "cannot resolve the host name"
    if isinstance(inner, urllib3.exceptions.NewConnectionError):
        cause = inner.__cause__ or inner.__context__
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        return "cannot connect"
    if isinstance(exc, requests.exceptions.SSLError):
        detail: BaseException = inner if inner is not None else exc
        while detail.args and isinstance(detail.args[0], BaseException):
            detail = detail.args[0]
        return f"TLS failure: {detail}"
    if isinstance(inner, BaseException):
        return f"{type(inner).__name__}: {inner}"
    if exc.args and isinstance(exc.args[0], BaseException):
        cause = exc.args[0]
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}"


def error_from_body(endpoint: str, data: Mapping[str, Any]) -> EtcdError:
    """EtcdError from a gateway error object, unary ({"error","message","code"}) or stream form."""
    err = data.get("error")
    if isinstance(err, Mapping):
        # grpc-gateway wraps errors inside a stream as {"error": {"grpc_code", "message", ...}}.
        message = str(err.get("message") or "")
        code = err.get("grpc_code")
    else:
        message = str(data.get("message") or err or "")
        code = data.get("code")
    return make_error(endpoint, message or "etcd reported an error without a message", code)


def make_error(endpoint: str, message: str, code: object) -> EtcdError:
    grpc_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if "required revision has been compacted" in message:
        return CompactedError(message, code=grpc_code, endpoint=endpoint)
    return EtcdError(message, code=grpc_code, endpoint=endpoint)


def compacted_watch_error(endpoint: str, compact_revision: int, start_revision: int) -> CompactedError:
    # The gateway cancels such a watch with only the number; say it in etcd's own words.
    return CompactedError(
        f"{COMPACTED_MESSAGE} (watch from revision {start_revision}; the oldest revision left is {compact_revision})",
        compact_revision=compact_revision,
        code=11,
        endpoint=endpoint,
    )


def is_bad_token(exc: EtcdError) -> bool:
    """The token expired or was revoked (simple tokens expire after --auth-token-ttl idle seconds)."""
    return (
        exc.code == GRPC_UNAUTHENTICATED
        or "invalid auth token" in exc.message
        or "revision of auth store is old" in exc.message
    )


def decode_unary(endpoint: str, path: str, response: requests.Response) -> JSON:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 200 and isinstance(data, dict):
        return data
    if isinstance(data, dict) and ("error" in data or "message" in data):
        raise error_from_body(endpoint, data)
    if response.status_code == 404:
        raise EtcdError(
            f"etcd at {endpoint} does not serve {path} (HTTP 404)", code=GRPC_UNIMPLEMENTED, endpoint=endpoint
        )
    raise EtcdError(
        f"etcd at {endpoint} answered {path} with HTTP {response.status_code} and no etcd error",
        endpoint=endpoint,
    )


class Stream:
    """A server-streaming gateway call: newline-delimited JSON messages over one response."""

    def __init__(self, endpoint: str, path: str, response: requests.Response) -> None:
        self.endpoint = endpoint
        self.path = path
        self.response = response
        self._sock = _socket_of(response)
        self._messages = self._read()

    def _read(self) -> Iterator[Any]:
        buf = bytearray()
        for chunk in self.response.iter_content(chunk_size=None):
            buf += chunk
            start = 0
            while (end := buf.find(b"\n", start)) >= 0:
                line = bytes(buf[start:end])
                start = end + 1
                if line.strip():
                    yield json.loads(line)
            del buf[:start]
        if bytes(buf).strip():
            yield json.loads(bytes(buf))

    def next_result(self) -> JSON | None:
        """The next message's "result"; None at the end of the stream; EtcdError for an error message.

        Transport failures escape as requests exceptions for the caller to translate, because
        only the caller knows whether it closed the stream itself.
        """
        try:
            message = next(self._messages)
        except StopIteration:
            return None
        except ValueError as exc:
            raise EtcdError(f"etcd at {self.endpoint} sent a malformed {self.path} stream: {exc}") from None
        if not isinstance(message, dict):
            raise EtcdError(f"etcd at {self.endpoint} sent a malformed {self.path} stream message")
        if "error" in message:
            raise error_from_body(self.endpoint, message)
        result = message.get("result")
        return result if isinstance(result, dict) else {}

    def set_read_timeout(self, seconds: float | None) -> None:
        if self._sock is not None:
            self._sock.settimeout(seconds)

    def abort(self) -> None:
        """Unblock a reader in another thread; safe to call from any thread, any number of times."""
        if self._sock is not None:
            # The plain-socket shutdown, also for TLS sockets: SSLSocket.shutdown would tear
            # down TLS state that the reading thread may be using at this very moment.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self.abort()
        # Closing a response whose socket was shut down under it can fail in several ways, none
        # of which leaves anything to clean up.
        with contextlib.suppress(Exception):
            self.response.close()


def _socket_of(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def stream_lost(exc: Unreachable, what: str) -> ConnectionFailed:
    cls = OperationTimeout if exc.timed_out else ConnectionFailed
    return cls(f"the {what} stream from etcd at {exc.endpoint} broke: {exc.reason}", endpoint=exc.endpoint)
