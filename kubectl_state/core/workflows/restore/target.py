"""The target cluster as an import sees it: writes with retries, reads, owners, CRD waits.

Retries: a request is tried again, with exponential backoff and jitter (or the server's
`retryAfterSeconds`), when trying again can help: 429 (throttled), 500/502/503/504 (an
overloaded server, a webhook that timed out or was not reachable yet), a quota whose usage
the quota controller has not computed yet (403 mentioning quota), an optimistic-lock 409
Conflict on an update, and a connection that failed or timed out. Everything else (invalid
objects, forbidden, field-manager conflicts, AlreadyExists) is an answer, not a hiccup, and
is returned at once.

A create whose connection failed may still have reached the server; its retry then answers
AlreadyExists. `Tries.ambiguous` tells the caller so, which then reads the object back
rather than reporting someone else's object.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubectl_state.core.errors import ApiError, ConnectionFailed, KubectlStateError
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import ApiResource, Discovery, discover
from kubectl_state.core.transform.clean import clean_object

T = TypeVar("T")

#: The field manager of every write (server-side apply and create alike).
FIELD_MANAGER = "kubectl-state"
CRD_RESOURCE = ApiResource(group="apiextensions.k8s.io", version="v1", resource="customresourcedefinitions",
                           kind="CustomResourceDefinition", namespaced=False)
_RETRY_CODES = frozenset({429, 500, 502, 503, 504})
_MAX_DELAY = 8.0


@dataclass
class Tries:
    attempts: int = 0
    #: An attempt failed without an answer, so a write may have happened anyway.
    ambiguous: bool = False


def retry_delay(exc: KubectlStateError, attempt: int, *, conflicts: bool) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when retrying cannot help."""
    backoff = min(_MAX_DELAY, 0.1 * 2.0**attempt) * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto
    if isinstance(exc, ConnectionFailed):
        return backoff
    if not isinstance(exc, ApiError):
        return None
    after: Any = (exc.status.get("details") or {}).get("retryAfterSeconds")
    hinted: float | None = float(after) if isinstance(after, int | float) and 0 < after <= 60 else None
    if exc.code in _RETRY_CODES:
        return hinted or backoff
    if exc.code == 403 and "quota" in str(exc).lower():
        return hinted or backoff
    if exc.code == 409 and exc.reason == "Conflict" and conflicts and not _field_manager_conflict(exc):
        return backoff
    return None


def _field_manager_conflict(exc: ApiError) -> bool:
    causes = (exc.status.get("details") or {}).get("causes") or []
    return any(isinstance(c, Mapping) and c.get("type") == "FieldManagerConflict" for c in causes)


def comparable(obj: Mapping[str, Any], resource: ApiResource, *, include_status: bool) -> dict[str, Any]:
    """An object as import and diff compare it: cleaned exactly as export cleans."""
    return clean_object(obj, resource=resource.resource, group=resource.group, include_status=include_status)


class Target:
    def __init__(self, kube: KubeClient, discovery: Discovery, *, dry_run: bool, retries: int = 6) -> None:
        self.kube = kube
        self.dry_run = dry_run
        self.retries = retries
        self._lock = threading.Lock()
        self._set_discovery(discovery)
        self._owner_uids: dict[tuple[str, str, str | None, str], str | None] = {}

    # --- discovery ------------------------------------------------------------------------

    def _set_discovery(self, discovery: Discovery) -> None:
        with self._lock:
            self.discovery = discovery
            self._served = {(r.group, r.version, r.resource): r for r in discovery.all_versions}
            self._by_kind = {(r.group_version, r.kind): r for r in reversed(discovery.all_versions)}
            self._by_kind.update({(r.group_version, r.kind): r for r in discovery.resources})
            # A kind served in any version of its group, for owners named in another version.
            self._by_group_kind = {(r.group, r.kind): r for r in discovery.resources}

    def refresh(self) -> None:
        self._set_discovery(discover(self.kube))

    def served(self, resource: ApiResource) -> ApiResource | None:
        """The target's own description of `resource` (with its subresources), if served."""
        return self._served.get((resource.group, resource.version, resource.resource))

    def resource_for(self, api_version: str, kind: str) -> ApiResource | None:
        found = self._by_kind.get((api_version, kind))
        if found is None:
            found = self._by_group_kind.get((api_version.rpartition("/")[0], kind))
        return found

    # --- requests -------------------------------------------------------------------------

    def call(self, request: Callable[[], T], tries: Tries, *, conflicts: bool = False) -> T:
        while True:
            tries.attempts += 1
            try:
                return request()
            except KubectlStateError as exc:
                delay = retry_delay(exc, tries.attempts, conflicts=conflicts)
                if delay is None or tries.attempts > self.retries:
                    raise
                if isinstance(exc, ConnectionFailed):
                    tries.ambiguous = True
                time.sleep(delay)

    def _params(self, *, dry_run: bool = False, **extra: str) -> dict[str, str | int]:
        params: dict[str, str | int] = {"fieldManager": FIELD_MANAGER, **extra}
        if self.dry_run or dry_run:
            params["dryRun"] = "All"
        return params

    def create(self, resource: ApiResource, namespace: str | None, body: Mapping[str, Any],
               tries: Tries) -> dict[str, Any]:
        path = resource.collection_path(namespace)
        return self.call(lambda: self.kube.request("POST", path, params=self._params(), body=body), tries)

    def get(self, resource: ApiResource, namespace: str | None, name: str, tries: Tries) -> dict[str, Any] | None:
        path = resource.object_path(name, namespace)
        try:
            return self.call(lambda: self.kube.get(path), tries)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def apply(self, resource: ApiResource, namespace: str | None, name: str, body: Mapping[str, Any],
              tries: Tries, *, force: bool, subresource: str = "", dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply as field manager `kubectl-state` (only checked, with `dry_run`)."""
        path = resource.object_path(name, namespace) + (f"/{subresource}" if subresource else "")
        params = self._params(dry_run=dry_run, **({"force": "true"} if force else {}))
        return self.call(lambda: self.kube.request("PATCH", path, params=params, body=body,
                                                   content_type="application/apply-patch+yaml"),
                         tries, conflicts=True)

    def stored_as_is(self, resource: ApiResource, namespace: str | None, name: str, body: Mapping[str, Any],
                     live: Mapping[str, Any]) -> bool:
        """Whether `live` is what kubectl-state made of `body`, when the two differ as written:
        an archive of hand-written objects (or a YAML stream) lacks what the server defaults
        on create (a Deployment's strategy, a container's pull policy...), so such an object,
        once imported, never compares equal to the archive's. Only objects no other field
        manager has written (status aside) qualify, so that a change someone made is never
        taken for a default. A dry-run server-side apply of `body` answers with what the
        object would become; if that is `live` (both cleaned, status aside), importing changes
        nothing. Any refusal (a conflict, an invalid object) means it would, or could not."""
        managers = (live.get("metadata") or {}).get("managedFields") or []
        if not managers or any(not isinstance(m, Mapping) or (m.get("manager") != FIELD_MANAGER
                                                               and m.get("subresource") != "status")
                               for m in managers):
            return False
        try:
            applied = self.apply(resource, namespace, name, body, Tries(), force=False, dry_run=True)
        except KubectlStateError:
            return False
        return comparable(applied, resource, include_status=False) == comparable(live, resource,
                                                                                 include_status=False)

    # --- owners ---------------------------------------------------------------------------

    def owner_uid(self, api_version: str, kind: str, namespace: str | None, name: str) -> str | None:
        """The uid of an owner already in the cluster, looked up by kind, namespace and name."""
        key = (api_version, kind, namespace, name)
        with self._lock:
            if key in self._owner_uids:
                return self._owner_uids[key]
        resource = self.resource_for(api_version, kind)
        uid: str | None = None
        if resource is not None:
            live = self.get(resource, namespace if resource.namespaced else None, name, Tries())
            found = (live or {}).get("metadata", {}).get("uid")
            uid = found if isinstance(found, str) else None
        with self._lock:
            self._owner_uids[key] = uid
        return uid

    # --- CRDs -----------------------------------------------------------------------------

    def wait_for_crds(self, names: Iterable[str], timeout: float) -> dict[str, str]:
        """Wait until each CRD is Established with its names accepted and its resource is in
        discovery; the CRDs that did not get there, with why."""
        pending = {name: "not checked yet" for name in names}
        if not pending:
            return {}
        deadline = time.monotonic() + timeout
        delay = 0.05
        ready: dict[str, tuple[str, str]] = {}  # name -> (group, plural)
        while True:
            for name in list(pending):
                crd = self.get(CRD_RESOURCE, None, name, Tries())
                if crd is None:
                    pending[name] = "it does not exist"
                    continue
                problem = _crd_problem(crd)
                if problem is None:
                    spec = crd.get("spec") or {}
                    ready[name] = (str(spec.get("group")), str((spec.get("names") or {}).get("plural")))
                    del pending[name]
                else:
                    pending[name] = problem
            if ready:
                # Discovery lags behind the Established condition on a real server.
                self.refresh()
                served = {(r.group, r.resource) for r in self.discovery.all_versions}
                for name, key in list(ready.items()):
                    if key in served:
                        del ready[name]
            if not pending and not ready:
                return {}
            if time.monotonic() > deadline:
                left = {**pending, **{name: "its resource is not in discovery yet" for name in ready}}
                return {name: f"not ready after {timeout:g}s: {why}" for name, why in left.items()}
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _crd_problem(crd: Mapping[str, Any]) -> str | None:
    conditions = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or ()
                  if isinstance(c, Mapping)}
    for wanted in ("NamesAccepted", "Established"):
        condition = conditions.get(wanted)
        if condition is None or condition.get("status") != "True":
            message = (condition or {}).get("message") or "no condition yet"
            return f"{wanted} is not True ({message})"
    return None
