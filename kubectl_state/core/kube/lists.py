"""Paged lists (`limit`/`continue`): memory stays bounded by one page, whatever the cluster's size."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubectl_state.core.errors import ApiError
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import ApiResource

DEFAULT_PAGE_SIZE = 500


@dataclass
class ListProgress:
    """What a paged list saw: the collection's resourceVersion (from the first page, the
    revision the whole consistent list was read at), pages, objects, and whether the server
    had to fall back to an inconsistent continuation after the token expired."""

    resource_version: str = ""
    pages: int = 0
    objects: int = 0
    inconsistent: bool = False
    warnings: list[str] = field(default_factory=list)


def _fetch(kube: KubeClient, path: str, params: dict[str, str | int]) -> tuple[dict[str, Any], int]:
    """One page, and how many times its continue token had expired on the way (410 Gone)."""
    expired = 0
    while True:
        try:
            return kube.get(path, params=params), expired
        except ApiError as exc:
            # 410 Gone: the continue token outlived etcd's compaction. The Status carries a
            # fresh token that continues at the current revision; the list is then no longer
            # a single snapshot, which is recorded rather than hidden.
            token = (exc.status.get("metadata") or {}).get("continue")
            if exc.code == 410 and "continue" in params and token:
                params = {**params, "continue": token}
                expired += 1
                continue
            raise


def _receive(
    resource: ApiResource, progress: ListProgress, page: dict[str, Any], expired: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The page's items (apiVersion and kind filled in) and its continue token, if any."""
    for _ in range(expired):
        progress.inconsistent = True
        progress.warnings.append(f"{resource.qualified_name}: list continued after its token expired")
    metadata = page.get("metadata") or {}
    if progress.pages == 0:
        progress.resource_version = str(metadata.get("resourceVersion") or "")
    progress.pages += 1
    items = page.get("items") or []
    for item in items:
        item.setdefault("apiVersion", resource.api_version)
        item.setdefault("kind", resource.kind)
    progress.objects += len(items)
    token = metadata.get("continue")
    return items, str(token) if token else None


def iter_pages(
    kube: KubeClient,
    resource: ApiResource,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: ListProgress | None = None,
    prefetch: bool = False,
) -> Iterator[list[dict[str, Any]]]:
    """Yield the items of a list one page at a time, each item with apiVersion and kind set
    (list items come without them).

    With `prefetch`, the next page is requested (on a thread of its own) as soon as the
    current page's continue token is known, while the caller works on the current page: the
    server and the caller then work at the same time instead of in turns. At most two pages
    are held at once; a request still in flight when the caller stops early is waited for.
    """
    progress = progress if progress is not None else ListProgress()
    params: dict[str, str | int] = {"limit": page_size}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    path = resource.collection_path(namespace)
    if not prefetch:
        while True:
            items, token = _receive(resource, progress, *_fetch(kube, path, params))
            yield items
            if not token:
                return
            params = {**params, "continue": token}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as fetcher:
        pending = fetcher.submit(_fetch, kube, path, params)
        try:
            while True:
                items, token = _receive(resource, progress, *pending.result())
                if token:
                    params = {**params, "continue": token}
                    pending = fetcher.submit(_fetch, kube, path, params)
                yield items
                if not token:
                    return
        finally:
            pending.cancel()
