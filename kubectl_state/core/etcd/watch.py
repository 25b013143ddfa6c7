"""Watches over the gateway's streaming POST /v3/watch: one stream per watch."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import requests

from kubectl_state.core.errors import ConnectionFailed, EtcdError
from kubectl_state.core.etcd.transport import Stream, compacted_watch_error, make_error, stream_lost, unreachable
from kubectl_state.core.etcd.types import WatchEvent, decode_header_revision, to_int


class Watch:
    """A running watch: iterate for WatchEvents; close() (from any thread) ends the iteration.

    Iteration raises CompactedError when the start revision is compacted, EtcdError when etcd
    cancels the watch, and ConnectionFailed when the stream breaks; `revision` then tells
    where to resume (watch again from revision + 1).
    """

    def __init__(self, stream: Stream, created: Mapping[str, Any], start_revision: int) -> None:
        self._stream = stream
        self._start_revision = start_revision
        self._pending: deque[WatchEvent] = deque()
        self._closed = threading.Event()
        self.endpoint = stream.endpoint
        self.watch_id = to_int(created.get("watch_id"))
        #: The revision of the last response seen; everything up to it has been delivered.
        self.revision = decode_header_revision(created)
        self._absorb(created)

    def _absorb(self, result: Mapping[str, Any]) -> None:
        if result.get("canceled"):
            raise watch_cancel_error(self.endpoint, result, self._start_revision)
        self._pending.extend(WatchEvent.from_json(e) for e in result.get("events") or [])
        header_revision = decode_header_revision(result)
        if header_revision:
            self.revision = header_revision

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> WatchEvent:
        while not self._pending:
            if self._closed.is_set():
                raise StopIteration
            try:
                result = self._stream.next_result()
            except EtcdError:
                if self._closed.is_set():
                    raise StopIteration from None
                self.close()
                raise
            except Exception as exc:
                if self._closed.is_set():
                    raise StopIteration from None
                self.close()
                if isinstance(exc, requests.RequestException):
                    raise stream_lost(unreachable(self.endpoint, exc), "watch") from None
                raise ConnectionFailed(
                    f"the watch stream from etcd at {self.endpoint} broke: {exc}", endpoint=self.endpoint
                ) from None
            if result is None:
                if self._closed.is_set():
                    raise StopIteration
                self.close()
                raise ConnectionFailed(f"etcd at {self.endpoint} ended the watch stream", endpoint=self.endpoint)
            try:
                self._absorb(result)
            except EtcdError:
                self.close()
                raise
        return self._pending.popleft()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()
        self._stream.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_GRPC_CODES = {
    "Canceled": 1,
    "Unknown": 2,
    "InvalidArgument": 3,
    "DeadlineExceeded": 4,
    "NotFound": 5,
    "AlreadyExists": 6,
    "PermissionDenied": 7,
    "ResourceExhausted": 8,
    "FailedPrecondition": 9,
    "Aborted": 10,
    "OutOfRange": 11,
    "Unimplemented": 12,
    "Internal": 13,
    "Unavailable": 14,
    "DataLoss": 15,
    "Unauthenticated": 16,
}
_CANCEL_REASON_RE = re.compile(r"^rpc error: code = (\w+) desc = (.*)$", re.DOTALL)


def watch_cancel_error(endpoint: str, result: Mapping[str, Any], start_revision: int) -> EtcdError:
    compact_revision = to_int(result.get("compact_revision"))
    if compact_revision:
        return compacted_watch_error(endpoint, compact_revision, start_revision)
    reason = str(result.get("cancel_reason") or "")
    # The gateway passes the gRPC error as text: "rpc error: code = PermissionDenied desc = etcdserver: ...".
    match = _CANCEL_REASON_RE.match(reason)
    if match:
        return make_error(endpoint, match.group(2), _GRPC_CODES.get(match.group(1)))
    return make_error(endpoint, reason or f"etcd at {endpoint} canceled the watch without a reason", None)
