"""Diff: what importing an archive would change in a cluster, object by object.

Each planned object (filters and namespace mapping applied, owner references relinked to
the uids the owners have in the cluster, as import would) is compared with the live object,
both cleaned by the same `clean_object` export uses, as a unified diff of their YAML. As for
import, an object only kubectl-state wrote whose differences are the server's defaults
(a dry-run server-side apply of the archive's version gives the live object) is the same. An
object missing from the cluster diffs against nothing. Nothing is written; only GETs.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubectl_state.core.archive.yamlcodec import dump_object
from kubectl_state.core.errors import ApiError, KubectlStateError
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import Discovery
from kubectl_state.core.plan import ObjectId, Plan, PlannedObject
from kubectl_state.core.transform.owners import relink_owner_references
from kubectl_state.core.workflows.restore.target import Target, Tries, comparable

_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_SECRETS = ("", "secrets")


class DiffState(enum.StrEnum):
    SAME = "same"
    CHANGED = "changed"
    MISSING = "missing"  # not in the cluster: import would create it
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ObjectDiff:
    id: ObjectId
    kind: str
    state: DiffState
    #: The unified diff (live first, archive second); empty when the same.
    text: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"group": self.id.group, "resource": self.id.resource, "kind": self.kind,
                               "namespace": self.id.namespace, "name": self.id.name, "state": str(self.state)}
        if self.text:
            out["diff"] = self.text
        if self.error:
            out["error"] = self.error
        return out


def diff_plan(kube: KubeClient, discovery: Discovery, plan: Plan, *, include_status: bool = False,
              concurrency: int = 8) -> list[ObjectDiff]:
    """One ObjectDiff per planned object, in plan order."""
    target = Target(kube, discovery, dry_run=True)
    crd_types = {(str((o.obj.get("spec") or {}).get("group")),
                  str(((o.obj.get("spec") or {}).get("names") or {}).get("plural")))
                 for o in plan.objects() if (o.id.group, o.id.resource) == _CRDS}

    def one(obj: PlannedObject) -> ObjectDiff:
        try:
            return _diff_one(target, obj, include_status=include_status, crd_types=crd_types)
        except KubectlStateError as exc:
            return ObjectDiff(obj.id, obj.kind, DiffState.ERROR, error=exc.message)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="diff") as pool:
        return list(pool.map(one, plan.objects()))


def _diff_one(target: Target, obj: PlannedObject, *, include_status: bool,
              crd_types: set[tuple[str, str]]) -> ObjectDiff:
    desired = _relinked(target, obj)
    if not include_status:
        desired.pop("status", None)
    wanted = comparable(desired, obj.resource, include_status=include_status)
    label = _label(obj)
    if target.served(obj.resource) is None:
        if (obj.resource.group, obj.resource.resource) in crd_types:
            return ObjectDiff(obj.id, obj.kind, DiffState.MISSING, _shown(obj, None, wanted, label))
        return ObjectDiff(obj.id, obj.kind, DiffState.ERROR,
                          error=f"the server does not serve {obj.kind} in {obj.resource.api_version}")
    try:
        live = target.get(obj.resource, obj.id.namespace, obj.id.name, Tries())
    except ApiError as exc:
        return ObjectDiff(obj.id, obj.kind, DiffState.ERROR, error=exc.message)
    if live is None:
        return ObjectDiff(obj.id, obj.kind, DiffState.MISSING, _shown(obj, None, wanted, label))
    current = comparable(live, obj.resource, include_status=include_status)
    # As import judges it: server defaults on an object only kubectl-state wrote are no change.
    if current == wanted or (current.get("status") == wanted.get("status") and target.stored_as_is(
            obj.resource, obj.id.namespace, obj.id.name, desired, live)):
        return ObjectDiff(obj.id, obj.kind, DiffState.SAME)
    return ObjectDiff(obj.id, obj.kind, DiffState.CHANGED, _shown(obj, current, wanted, label))


def _relinked(target: Target, obj: PlannedObject) -> dict[str, Any]:
    """The object with owner uids as they are in the cluster (owners looked up by kind and
    name); references whose owner is not there keep their archived uid, and so show up."""
    refs = (obj.obj.get("metadata") or {}).get("ownerReferences") or []
    uid_map: dict[str, str] = {}
    for ref in refs:
        if isinstance(ref, Mapping) and isinstance(ref.get("uid"), str):
            found = target.owner_uid(str(ref.get("apiVersion")), str(ref.get("kind")), obj.id.namespace,
                                     str(ref.get("name")))
            if found is not None:
                uid_map[ref["uid"]] = found
    body, _ = relink_owner_references(obj.obj, uid_map, drop_missing=False)
    return body


def _masked(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]
            ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Copies of a Secret's two sides for display, every value replaced as `kubectl diff` does:
    `***` where both sides agree (or one side lacks the key), `*** (before)` / `*** (after)`
    where they differ. Whether they differ is still decided on the real values, by the caller."""
    before = dict(live) if live is not None else None
    after = dict(wanted)
    for field in ("data", "stringData"):
        old = (live or {}).get(field)
        new = wanted.get(field)
        old = old if isinstance(old, Mapping) else {}
        new = new if isinstance(new, Mapping) else {}
        if before is not None and field in before:
            before[field] = {k: "***" if k not in new or new[k] == v else "*** (before)" for k, v in old.items()}
        if field in after:
            after[field] = {k: "***" if k not in old or old[k] == v else "*** (after)" for k, v in new.items()}
    return before, after


def _label(obj: PlannedObject) -> str:
    group = f".{obj.id.group}" if obj.id.group else ""
    where = f"{obj.id.namespace}/" if obj.id.namespace else ""
    return f"{obj.id.resource}{group}/{where}{obj.id.name}"


def _shown(obj: PlannedObject, live: Mapping[str, Any] | None, wanted: Mapping[str, Any], label: str) -> str:
    """The unified diff a person sees: a Secret's values never appear in it."""
    if (obj.id.group, obj.id.resource) == _SECRETS:
        live, wanted = _masked(live, wanted)
    return _unified(live, wanted, label)


def _unified(live: Mapping[str, Any] | None, wanted: Mapping[str, Any], label: str) -> str:
    before = dump_object(live).decode().splitlines(keepends=True) if live is not None else []
    after = dump_object(wanted).decode().splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, fromfile=f"live/{label}" if live is not None else "/dev/null",
                                 tofile=f"archive/{label}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
