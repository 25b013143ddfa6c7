"""Watch: an etcd watch on the collection's key prefix, turned into Kubernetes events.

ADDED/MODIFIED come from puts (a key created at this revision is ADDED), DELETED from
deletes (carrying the last state, at the deletion's revision), with selectors applied as
kube-apiserver applies them: an object that stops matching is DELETED for this watcher,
one that starts matching is ADDED. Without a resourceVersion (or with "0") the watch first
replays the current objects as ADDED, as a real server does.

The etcd stream is read on a thread of its own and handed over through a queue, so the
HTTP thread can notice a client that went away, the timeout, and bookmarks while etcd is
silent.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from kubectl_state.core.errors import EtcdError, KubectlStateError

from .registry import ResourceInfo
from .status import ApiStatusError, bad_request, expired
from .storage import decode, is_compacted

if TYPE_CHECKING:
    from .handlers import Api, RequestContext

Event = dict[str, Any]
#: The longest a watch stays open when the client names no timeoutSeconds (kube-apiserver
#: picks 30-60 minutes; clients reconnect either way).
DEFAULT_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 30.0
_END = object()


def _status_event(error: ApiStatusError) -> Event:
    return {"type": "ERROR", "object": error.body()}


def events(
    api: Api, ctx: RequestContext, info: ResourceInfo, namespace: str | None, params: dict[str, str]
) -> Generator[Event | None, None, None]:
    """Kubernetes watch events; None now and then while idle (the caller's chance to check
    on its client). Ends at the timeout or when the client stops iterating."""
    predicate = api.filter_for(info, params)
    try:
        timeout = float(params.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    except ValueError:
        raise bad_request(f"invalid timeoutSeconds {params.get('timeoutSeconds')!r}") from None
    deadline = time.monotonic() + timeout
    bookmarks = params.get("allowWatchBookmarks", "").lower() == "true"
    prefix = info.collection_prefix(api.prefix, namespace)
    rv = params.get("resourceVersion") or ""
    initial = rv in ("", "0") or params.get("sendInitialEvents", "").lower() == "true"
    if not info.stored:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            yield None
        return
    if initial:
        kvs = list(api.store.iter_prefix(prefix, revision=int(rv) if rv not in ("", "0") else 0))
        revision = (
            api.store.current_revision()
            if not kvs
            else max(api.store.current_revision(), *(kv.mod_revision for kv in kvs))
        )
        for kv in kvs:
            obj = decode(kv)
            if predicate is None or predicate(obj):
                yield {"type": "ADDED", "object": api.served(info, obj)}
        if params.get("sendInitialEvents", "").lower() == "true" and bookmarks:
            yield _bookmark(info, revision, initial_end=True)
        start = revision + 1
    else:
        try:
            start = int(rv) + 1
        except ValueError:
            raise bad_request(f"invalid resourceVersion {rv!r}") from None
    try:
        stream = api.store.client.watch(prefix, prefix=True, start_revision=start, prev_kv=True)
    except EtcdError as exc:
        if is_compacted(exc):
            yield _status_event(expired(f"too old resource version: {start - 1}"))
            return
        raise
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1000)

    def pump() -> None:
        try:
            for event in stream:
                handoff.put(event)
        except (KubectlStateError, OSError) as exc:
            handoff.put(exc)
        finally:
            handoff.put(_END)

    threading.Thread(target=pump, name="watch-pump", daemon=True).start()
    last = start - 1
    last_bookmark = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                item = handoff.get(timeout=1.0)
            except queue.Empty:
                if bookmarks and time.monotonic() - last_bookmark > BOOKMARK_INTERVAL:
                    last_bookmark = time.monotonic()
                    yield _bookmark(info, last, initial_end=False)
                yield None
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                if isinstance(item, EtcdError) and is_compacted(item):
                    yield _status_event(expired(f"too old resource version: {start - 1}"))
                return
            last = item.kv.mod_revision
            event = _translate(api, info, item, predicate)
            if event is not None:
                yield event
    finally:
        stream.close()


def _bookmark(info: ResourceInfo, revision: int, *, initial_end: bool) -> Event:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}}


def _translate(
    api: Api, info: ResourceInfo, event: Any, predicate: Callable[[dict[str, Any]], bool] | None
) -> Event | None:
    if event.type == "DELETE":
        if event.prev_kv is None:
            return None
        obj = decode(event.prev_kv)
        obj["metadata"]["resourceVersion"] = str(event.kv.mod_revision)
        if predicate is None or predicate(obj):
            return {"type": "DELETED", "object": api.served(info, obj)}
        return None
    obj = decode(event.kv)
    previous = decode(event.prev_kv) if event.prev_kv is not None else None
    if predicate is None:
        kind = "ADDED" if previous is None else "MODIFIED"
    else:
        now_matches = predicate(obj)
        before = previous is not None and predicate(previous)
        if now_matches:
            kind = "MODIFIED" if before else "ADDED"
        elif before:
            kind = "DELETED"
        else:
            return None
    return {"type": kind, "object": api.served(info, obj)}
