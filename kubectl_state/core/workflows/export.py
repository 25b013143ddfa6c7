"""Export: every selected resource of a cluster, cleaned, into an archive or a YAML stream.

The steps: discover what the server serves; decide per resource whether it is exported
(filters, the skip table, the cluster-scope rule); list the chosen collections in pages,
several at once; skip what the cluster derives itself and clean the rest; write each
object to the sink as it arrives, so memory holds a page per worker, never the cluster.
The sink publishes the archive only when `commit()` is reached; any failure before that
leaves nothing at PATH that could pass for a finished backup.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from kubectl_state.core.archive.secrets import AgeEncrypter, SecretEncrypter
from kubectl_state.core.archive.writer import ArchiveWriter, ObjectSink
from kubectl_state.core.errors import ApiError, KubectlStateError, UsageError
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import ApiResource, Discovery, discover
from kubectl_state.core.kube.lists import DEFAULT_PAGE_SIZE, ListProgress, iter_pages
from kubectl_state.core.transform.clean import clean_object_in_place
from kubectl_state.core.transform.selectors import parse_label_selector
from kubectl_state.core.transform.skip import resource_skip_reason, services_with_selector, skip_reason

ClusterScope = Literal["auto", "true", "false"]
SecretsMode = Literal["include", "skip", "encrypt"]

#: Reasons recorded in the manifest for objects left out by the user's own choices.
SECRETS_SKIPPED = "secrets-skipped"
FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class ExportOptions:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    label_selector: str | None = None
    include_resources: tuple[str, ...] = ()
    exclude_resources: tuple[str, ...] = ()
    include_cluster_resources: ClusterScope = "auto"
    include_status: bool = False
    keep_last_applied: bool = False
    secrets: SecretsMode = "include"
    concurrency: int = 8
    page_size: int = DEFAULT_PAGE_SIZE
    ignore_forbidden: bool = False

    def filters(self) -> dict[str, Any]:
        """The choices that shaped the export, as the manifest records them."""
        return {
            "namespaces": list(self.namespaces) or None,
            "labelSelector": self.label_selector,
            "includeResources": list(self.include_resources),
            "excludeResources": list(self.exclude_resources),
            "includeClusterResources": self.include_cluster_resources,
            "includeStatus": self.include_status,
            "keepLastApplied": self.keep_last_applied,
            "secrets": self.secrets,
        }


@dataclass
class ExportListener:
    """Progress callbacks (the CLI draws them; the Ansible module ignores them)."""

    planned: Callable[[int], None] = lambda total: None
    objects: Callable[[int], None] = lambda count: None
    resource_done: Callable[[ApiResource], None] = lambda resource: None


@dataclass
class ExportSummary:
    objects: int = 0
    resources: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "resources": self.resources, "skipped": dict(sorted(self.skipped.items())),
                "warnings": list(self.warnings), "seconds": round(self.seconds, 3)}


class _Stopped(Exception):
    """Raised in a list task that noticed the run is stopping; never leaves the run."""


@dataclass(frozen=True)
class _Task:
    resource: ApiResource
    namespace: str | None  # None: the whole collection (cluster-scoped, or all namespaces)
    #: Set for a resource skipped for this reason: its objects are counted, not listed.
    count_reason: str | None = None


class _Export:
    """One run. Holds the state shared by the worker threads, behind one lock."""

    def __init__(self, kube: KubeClient, sink: ObjectSink, options: ExportOptions, listener: ExportListener) -> None:
        self.kube = kube
        self.sink = sink
        self.options = options
        self.listener = listener
        self.summary = ExportSummary()
        self.lock = threading.Lock()
        self.services: frozenset[tuple[str, str]] = frozenset()
        #: Cluster-scoped objects the exported namespaced ones refer to: (group, resource) -> names.
        self.referenced: dict[tuple[str, str], set[str]] = {}
        #: (group, resource) of namespaced objects exported: their CRDs, if any, come along.
        self.namespaced_exported: set[tuple[str, str]] = set()
        #: Set when the run failed or was interrupted: list tasks still running stop at their next page.
        self.stopping = threading.Event()

    # --- deciding what to export ---------------------------------------------------------

    def select(self, discovery: Discovery) -> tuple[list[ApiResource], list[tuple[ApiResource, str]]]:
        """The resources to list, and the ones skipped with the reason (counted later)."""
        include = {(r.group, r.resource) for r in _resolve(discovery, self.options.include_resources)}
        exclude = {(r.group, r.resource) for r in _resolve(discovery, self.options.exclude_resources)}
        chosen: list[ApiResource] = []
        skipped: list[tuple[ApiResource, str]] = []
        for resource in discovery.resources:
            key = (resource.group, resource.resource)
            if key in exclude or (include and key not in include):
                continue  # the user's filter, recorded as such in the manifest's filters
            named = frozenset({resource.qualified_name}) if key in include else frozenset()
            reason = resource_skip_reason(resource.group, resource.version, resource.resource, resource.verbs,
                                          include=named)
            if reason is None and key == ("", "secrets") and self.options.secrets == "skip":
                reason = SECRETS_SKIPPED
            if reason is not None:
                # Counted only where the export would have looked: a cluster-scoped kind
                # skipped by a namespace export's scope is not worth a count.
                if resource.listable and (resource.namespaced or self._cluster_scoped_wanted(resource)):
                    skipped.append((resource, reason))
                continue
            if not resource.namespaced and not self._cluster_scoped_wanted(resource):
                continue
            chosen.append(resource)
        return chosen, skipped

    def _cluster_scoped_wanted(self, resource: ApiResource) -> bool:
        scope = self.options.include_cluster_resources
        if scope == "true":
            return True
        if scope == "false":
            return False
        # auto: everything when all namespaces are exported; otherwise only the objects the
        # exported namespaced ones refer to, fetched by name afterwards.
        return not self.options.namespaces

    def tasks(self, resources: Iterable[ApiResource]) -> list[_Task]:
        result: list[_Task] = []
        for resource in resources:
            if resource.namespaced and self.options.namespaces:
                result.extend(_Task(resource, ns) for ns in self.options.namespaces)
            else:
                result.append(_Task(resource, None))
        return result

    # --- listing and writing -------------------------------------------------------------

    def run_task(self, task: _Task) -> None:
        resource = task.resource
        if task.count_reason is not None:
            self.count_skipped_resource(resource, task.count_reason)
            return
        progress = ListProgress()
        try:
            for page in iter_pages(self.kube, resource, namespace=task.namespace,
                                   label_selector=self.options.label_selector,
                                   page_size=self.options.page_size, progress=progress, prefetch=True):
                if self.stopping.is_set():
                    raise _Stopped
                self.write_page(resource, page)
        except ApiError as exc:
            where = resource.qualified_name + (f" in namespace {task.namespace}" if task.namespace else "")
            if exc.code in (401, 403) and self.options.ignore_forbidden:
                with self.lock:
                    self.summary.warnings.append(f"skipped {where}: {exc.message}")
                self.count_skip(FORBIDDEN, resource, 1)
                return
            if exc.code in (401, 403):
                raise ApiError(exc.status, message=f"cannot list {where}: {exc.message} "
                                                   "(--ignore-forbidden exports the rest)") from exc
            if exc.code == 404:
                raise KubectlStateError(f"{where} vanished during the export (its API is no longer served): "
                                        f"{exc.message}") from exc
            raise ApiError(exc.status, message=f"cannot list {where}: {exc.message}") from exc
        with self.lock:
            self.summary.warnings.extend(progress.warnings)
        self.sink.record_list(resource.group, resource.version, resource.resource, resource.kind,
                              resource.namespaced, progress.resource_version or None)

    def write_page(self, resource: ApiResource, items: list[dict[str, Any]]) -> None:
        if (resource.group, resource.resource) == ("", "services"):
            with self.lock:
                self.services = self.services | services_with_selector(items)
        written = 0
        for obj in items:
            reason = skip_reason(resource.resource, resource.group, obj, services=self.services)
            if reason is not None:
                self.count_skip(reason, resource, 1)
                continue
            if resource.namespaced and self.options.namespaces:
                self.note_references(resource, obj)
            uid = (obj.get("metadata") or {}).get("uid")  # read first: cleaning removes it
            # The page's objects are this run's own and dropped once written: cleaned in place.
            cleaned = clean_object_in_place(obj, resource=resource.resource, group=resource.group,
                                            include_status=self.options.include_status,
                                            keep_last_applied=self.options.keep_last_applied)
            self.sink.add_object(resource.group, resource.version, resource.resource, resource.kind,
                                 resource.namespaced, cleaned, uid=uid if isinstance(uid, str) else None)
            written += 1
        with self.lock:
            self.summary.objects += written
        self.listener.objects(written)

    def count_skip(self, reason: str, resource: ApiResource, count: int) -> None:
        if count < 1:
            return
        self.sink.count_skip(reason, resource.resource, resource.group, count)
        with self.lock:
            self.summary.skipped[reason] = self.summary.skipped.get(reason, 0) + count

    def count_skipped_resource(self, resource: ApiResource, reason: str) -> None:
        """How many objects a skipped resource holds, so the manifest can say what it left out.
        One item per request: the server's remainingItemCount gives the rest."""
        count = 0
        namespaces: Iterable[str | None] = (self.options.namespaces if resource.namespaced and self.options.namespaces
                                            else (None,))
        for namespace in namespaces:
            try:
                page = self.kube.get(resource.collection_path(namespace), params=_count_params(self.options))
            except ApiError:
                continue  # not even countable (aggregated API down, forbidden): nothing to record
            metadata = page.get("metadata") or {}
            items = len(page.get("items") or [])
            remaining = metadata.get("remainingItemCount")
            if remaining is None and metadata.get("continue"):
                # No count offered (a label selector was used): count the pages instead.
                items = sum(len(p) for p in iter_pages(self.kube, resource, namespace=namespace,
                                                       label_selector=self.options.label_selector,
                                                       page_size=self.options.page_size))
                remaining = 0
            count += items + int(remaining or 0)
        self.count_skip(reason, resource, count)

    # --- cluster-scoped objects the namespaced ones need ------------------------------------

    def note_references(self, resource: ApiResource, obj: Mapping[str, Any]) -> None:
        spec = obj.get("spec") or {}
        found: list[tuple[tuple[str, str], str]] = []
        if (resource.group, resource.resource) == ("", "persistentvolumeclaims"):
            if spec.get("volumeName"):
                found.append((("", "persistentvolumes"), str(spec["volumeName"])))
            if spec.get("storageClassName"):
                found.append((("storage.k8s.io", "storageclasses"), str(spec["storageClassName"])))
        elif (resource.group, resource.resource) == ("rbac.authorization.k8s.io", "rolebindings"):
            role = obj.get("roleRef") or {}
            if role.get("kind") == "ClusterRole" and role.get("name"):
                found.append((("rbac.authorization.k8s.io", "clusterroles"), str(role["name"])))
        elif (resource.group, resource.resource) == ("", "pods") and spec.get("priorityClassName"):
            found.append((("scheduling.k8s.io", "priorityclasses"), str(spec["priorityClassName"])))
        with self.lock:
            self.namespaced_exported.add((resource.group, resource.resource))
            for key, name in found:
                self.referenced.setdefault(key, set()).add(name)

    def export_referenced(self, discovery: Discovery) -> None:
        """With -n and --include-cluster-resources=auto: the namespaces themselves and the
        cluster-scoped objects the exported ones refer to, so the backup restores whole."""
        self.referenced.setdefault(("", "namespaces"), set()).update(self.options.namespaces)
        by_key = {(r.group, r.resource): r for r in discovery.resources}
        crds = by_key.get(("apiextensions.k8s.io", "customresourcedefinitions"))
        if crds is not None and self.namespaced_exported:
            for page in iter_pages(self.kube, crds, page_size=self.options.page_size):
                for crd in page:
                    spec = crd.get("spec") or {}
                    if (spec.get("group"), (spec.get("names") or {}).get("plural")) in self.namespaced_exported:
                        name = (crd.get("metadata") or {}).get("name")
                        self.referenced.setdefault((crds.group, crds.resource), set()).add(str(name))
        for key, names in sorted(self.referenced.items()):
            resource = by_key.get(key)
            if resource is None:
                continue
            kept = 0
            for name in sorted(names):
                try:
                    obj = self.kube.get(resource.object_path(name))
                except ApiError as exc:
                    if exc.code == 404:
                        with self.lock:
                            self.summary.warnings.append(f"{resource.qualified_name} {name} is referred to "
                                                         "but does not exist")
                        continue
                    raise
                obj.setdefault("apiVersion", resource.api_version)
                obj.setdefault("kind", resource.kind)
                self.write_page(resource, [obj])
                kept += 1
            if kept:
                self.sink.record_list(resource.group, resource.version, resource.resource, resource.kind,
                                      resource.namespaced, None)


def _count_params(options: ExportOptions) -> dict[str, str | int]:
    params: dict[str, str | int] = {"limit": 1}
    if options.label_selector:
        params["labelSelector"] = options.label_selector
    return params


def _resolve(discovery: Discovery, names: Iterable[str]) -> list[ApiResource]:
    resolved = []
    for raw in names:
        for name in raw.split(","):
            if name.strip():
                resolved.append(discovery.find(name.strip()))
    return resolved


def check_options(options: ExportOptions) -> None:
    """Refuse options that cannot work, before anything is contacted or written."""
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if options.page_size < 1:
        raise UsageError("--page-size must be at least 1")
    if options.label_selector:
        parse_label_selector(options.label_selector)  # a typo fails here, not after discovery


def secrets_encrypter(mode: SecretsMode, recipients: Sequence[str]) -> SecretEncrypter | None:
    """The encrypter the secrets mode asks for, once mode and recipients are known to agree."""
    if recipients and mode != "encrypt":
        raise UsageError("age recipients are only used with secrets=encrypt")
    if mode == "encrypt" and not recipients:
        raise UsageError("secrets=encrypt needs at least one recipient (an age public key, age1...)")
    return AgeEncrypter(recipients) if mode == "encrypt" else None


def export_cluster(
    kube: KubeClient,
    sink: ObjectSink,
    options: ExportOptions,
    listener: ExportListener | None = None,
    *,
    discovery: Discovery | None = None,
) -> ExportSummary:
    """Export into `sink` and commit it. On any failure the sink is left uncommitted (the
    caller's `with` discards it) and the error is raised."""
    check_options(options)
    with _fewer_garbage_collections():
        return _export(kube, sink, options, listener, discovery)


#: Allocations between two collections of the youngest generation during an export (Python's
#: default is 700).
_GC_GENERATION0 = 50_000


@contextmanager
def _fewer_garbage_collections() -> Iterator[None]:
    """Collect cyclic garbage less often while objects stream through.

    Each decoded list page is tens of thousands of dicts and lists, none of them in a cycle
    (reference counting frees them), yet every 700 of them start a collection, and every few
    of those walk the older objects too: with a few pages in flight, the collector cost more
    than the JSON decoding itself. The previous thresholds are restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], _GC_GENERATION0), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _export(kube: KubeClient, sink: ObjectSink, options: ExportOptions, listener: ExportListener | None,
            discovery: Discovery | None) -> ExportSummary:
    started = time.monotonic()
    run = _Export(kube, sink, options, listener or ExportListener())
    discovery = discovery or discover(kube, concurrency=options.concurrency)
    chosen, skipped = run.select(discovery)
    tasks = run.tasks(chosen)
    run.listener.planned(len(chosen))

    # Whether an Endpoints object is derived depends on its Service: endpoints are listed
    # once every Service has been seen; everything else is listed alongside the Services.
    service_tasks = [t for t in tasks if (t.resource.group, t.resource.resource) == ("", "services")]
    endpoints_tasks: list[_Task] = []
    if service_tasks:
        endpoints_tasks = [t for t in tasks if (t.resource.group, t.resource.resource) == ("", "endpoints")]
    else:
        run.services = _services_with_selector(kube, discovery, options)
    # Counting what skipped resources hold is a request each: done on the same threads, after
    # the lists are under way, rather than one after the other at the end.
    counts = [_Task(resource, None, reason) for resource, reason in skipped]
    _run_parallel(run, [t for t in tasks if t not in endpoints_tasks] + counts, options.concurrency,
                  gate=service_tasks, gated=endpoints_tasks)
    done = {t.resource for t in tasks}
    for resource in done:
        run.listener.resource_done(resource)

    if options.namespaces and options.include_cluster_resources == "auto":
        run.export_referenced(discovery)
    run.summary.resources = len(chosen)
    run.summary.seconds = time.monotonic() - started
    if isinstance(sink, ArchiveWriter):
        # The entries are in the archive's manifest.json: reading them all back into memory
        # would make the export's size grow with the cluster's for nothing.
        sink.commit(entries=False)
    else:
        sink.commit()
    return run.summary


def _services_with_selector(kube: KubeClient, discovery: Discovery,
                            options: ExportOptions) -> frozenset[tuple[str, str]]:
    """(namespace, name) of every Service with a selector, when services themselves are not
    exported: whether an Endpoints object is derived depends on its Service."""
    services = discovery.find("services")
    found: set[tuple[str, str]] = set()
    namespaces: Iterable[str | None] = options.namespaces or (None,)
    for namespace in namespaces:
        for page in iter_pages(kube, services, namespace=namespace, page_size=options.page_size):
            found.update(services_with_selector(page))
    return frozenset(found)


def _run_parallel(run: _Export, tasks: list[_Task], concurrency: int, *,
                  gate: list[_Task] | None = None, gated: list[_Task] | None = None) -> None:
    """Run the list tasks on `concurrency` threads; `gated` ones start only once every task
    of `gate` (a subset of `tasks`, started first) has finished.

    The first failure, or an interrupt (Ctrl-C), cancels what has not started and makes the
    running tasks stop at their next page; it is raised once they have (what they wrote goes
    into a sink that is being discarded). Waiting for every queued collection to be listed
    first would turn Ctrl-C into "finish the export, then throw it away"."""
    gate = gate or []
    later = list(gated or [])
    ordered = gate + [t for t in tasks if t not in gate]
    if not ordered and not later:
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="export") as pool:
        gate_futures: list[Future[None]] = []
        futures: list[Future[None]] = []
        try:
            for task in ordered:
                future = pool.submit(run.run_task, task)
                futures.append(future)
                if task in gate:
                    gate_futures.append(future)
            waiting = set(futures)
            while waiting or later:
                if later and all(f.done() for f in gate_futures):
                    started = [pool.submit(run.run_task, task) for task in later]
                    later = []
                    futures += started
                    waiting.update(started)
                    continue
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        raise error
        except BaseException:
            run.stopping.set()
            for future in futures:
                future.cancel()
            raise
