"""Clean an object read from the API into what an export keeps.

The rule: keep what a person or a controller chose, drop what the source cluster's API server,
admission plugins and controllers filled in for *that* cluster (identity, bookkeeping,
allocations, bindings to its nodes). A cleaned object can be created in another cluster, or
in the same one after it was wiped, and comes out as the original did.

Two things are deliberately kept:
- `metadata.ownerReferences`, with the old uids: import relinks them to the new owners'
  uids (see `owners.py`), which is the only way to keep the owner/dependent graph.
- `metadata.finalizers`: they belong to controllers (the cluster's own, which re-add theirs
  anyway, and operators, whose cleanup must still run when the restored object is deleted).

Unlike the rest of this module, the export must read `metadata.uid` *before* cleaning and
record it beside the object: import needs it to build the old-uid -> new-uid map.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubectl_state.core.errors import InvalidInputError
from kubectl_state.core.transform._json import (
    JsonObject,
    child,
    child_list,
    copy_json,
    drop_if_empty,
    pop_keys,
)

#: The annotation `kubectl apply` (client-side) writes; a copy of the object as last applied.
LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"

#: metadata fields the API server sets on every object: its identity and bookkeeping in the
#: source cluster. The target cluster assigns its own; sending them would be refused or ignored.
SERVER_SET_METADATA: Final[tuple[str, ...]] = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)

#: Annotations the PV controller and the scheduler put on a claim while binding it to a
#: volume on a node of the source cluster. Left in place, the target's PV controller would
#: take the claim for already bound (or provisioned on a node that does not exist).
PVC_BIND_ANNOTATIONS: Final[frozenset[str]] = frozenset(
    {
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
        "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/selected-node",
    }
)

#: Pod template labels the API server derives from a Job's own uid. A Job created with the
#: old uid in its selector is refused ("`selector` not auto-generated").
JOB_CONTROLLER_UID_LABELS: Final[tuple[str, ...]] = (
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
)

# Before Kubernetes 1.24 the token controller mounted a secret named
# "<service account>-token-<5 random characters>" into every pod. The random part comes from
# apimachinery's name generator, whose alphabet has no vowels and no 0/1/3 (to avoid words
# and look-alikes); matching it exactly avoids dropping a volume a person named similarly.
_LEGACY_TOKEN_SUFFIX: Final = "-token-[bcdfghjklmnpqrstvwxz2456789]{5}"  # noqa: S105 (a name pattern)

_CONTAINER_LISTS: Final[tuple[str, ...]] = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True)
class _Options:
    keep_node_ports: bool


def clean_object(
    obj: Mapping[str, Any],
    *,
    resource: str,
    group: str,
    include_status: bool = False,
    keep_last_applied: bool = False,
    keep_node_ports: bool = True,
) -> JsonObject:
    """Return a cleaned copy of `obj` (an object of `resource` in API `group`, "" for core).

    The input is never modified and shares nothing with the result. Cleaning is idempotent.

    `include_status` keeps `status` (most types ignore it on create; it is kept for people
    who want the record). `keep_last_applied` keeps the client-side apply annotation, for
    people who go on using `kubectl apply` against the restored objects.

    `keep_node_ports` (default True) keeps Service `ports[].nodePort`. The API does not say
    whether a node port was chosen by a person or allocated at random, and clients outside
    the cluster (load balancers, firewall rules, bookmarks) point at it: silently getting a
    new port on restore breaks them, while a port already taken in the target fails loudly
    with the object named in the report. Pass False when moving into a cluster whose node
    ports are in use (Velero's behaviour for ports it cannot prove were set on purpose).
    """
    if not isinstance(obj, Mapping):
        raise InvalidInputError(f"Expected a Kubernetes object (a JSON map), got {type(obj).__name__}.")
    out = _copy_without_server_fields(obj, include_status=include_status)
    _clean_copy(out, resource=resource, group=group, keep_last_applied=keep_last_applied,
                keep_node_ports=keep_node_ports)
    return out


def clean_object_in_place(
    obj: JsonObject,
    *,
    resource: str,
    group: str,
    include_status: bool = False,
    keep_last_applied: bool = False,
    keep_node_ports: bool = True,
) -> JsonObject:
    """`clean_object` for a caller that owns `obj` and has no further use for it: `obj` itself
    is cleaned (and returned), with the same result as `clean_object(obj)`.

    The one exception to "never modify the input": export decodes each object from a list
    page only to clean and write it, and copying every object first costs as much as the
    rest of the cleaning many times over. Read what is still needed (metadata.uid) before.
    """
    if not isinstance(obj, dict):
        raise InvalidInputError(f"Expected a Kubernetes object (a JSON map), got {type(obj).__name__}.")
    if not include_status:
        obj.pop("status", None)
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        if not isinstance(metadata, dict):  # only dicts can be edited; API JSON never gets here
            metadata = obj["metadata"] = copy_json(metadata)
        pop_keys(metadata, SERVER_SET_METADATA)
    _clean_copy(obj, resource=resource, group=group, keep_last_applied=keep_last_applied,
                keep_node_ports=keep_node_ports)
    return obj


def _clean_copy(out: JsonObject, *, resource: str, group: str, keep_last_applied: bool,
                keep_node_ports: bool) -> None:
    """The rules after the server-set fields are gone, on an object the caller may edit."""
    metadata = child(out, "metadata")
    if metadata is not None:
        _clean_metadata(metadata, keep_last_applied=keep_last_applied)
    cleaner = _KIND_CLEANERS.get((group, resource))
    if cleaner is not None:
        cleaner(out, _Options(keep_node_ports=keep_node_ports))


def _copy_without_server_fields(obj: Mapping[str, Any], *, include_status: bool) -> JsonObject:
    """Copy `obj` leaving out what is dropped anyway, in the original key order.

    managedFields and status are often most of an object; not copying them first keeps
    exports of large clusters cheaper.
    """
    out: JsonObject = {}
    for key, value in obj.items():
        if key == "status" and not include_status:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            out[key] = {name: copy_json(item) for name, item in value.items() if name not in SERVER_SET_METADATA}
        else:
            out[key] = copy_json(value)
    return out


def _clean_metadata(metadata: JsonObject, *, keep_last_applied: bool) -> None:
    # generateName only matters to create an object without a name; with a name present it
    # would just record how the source object was once named.
    if metadata.get("name"):
        metadata.pop("generateName", None)
    if not keep_last_applied:
        _drop_annotations(metadata, frozenset({LAST_APPLIED_ANNOTATION}))


def _drop_annotations(metadata: JsonObject, names: frozenset[str]) -> None:
    annotations = child(metadata, "annotations")
    # Only remove the map when we emptied it: an empty map someone sent stays as it was.
    if annotations is not None and pop_keys(annotations, names):
        drop_if_empty(metadata, "annotations")


def _clean_service(obj: JsonObject, options: _Options) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    # "None" is the headless choice a person made and must survive; any address is an
    # allocation from the source cluster's service CIDR, likely taken or out of range in the
    # target. clusterIPs mirrors clusterIP (plus the second family) and goes with it.
    headless = spec.get("clusterIP") == "None" or spec.get("clusterIPs") == ["None"]
    if not headless:
        pop_keys(spec, ("clusterIP", "clusterIPs"))
    # Allocated for externalTrafficPolicy=Local load balancers; the cloud controller
    # re-wires its health checks to whatever port the target allocates.
    spec.pop("healthCheckNodePort", None)
    if not options.keep_node_ports:
        for port in child_list(spec, "ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)


def _clean_pod(obj: JsonObject, options: _Options) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    # A pod created with nodeName bypasses the scheduler and is pinned to a node that may not
    # exist in the target. priority and preemptionPolicy are re-derived by the Priority
    # admission plugin from priorityClassName, which refuses a pod whose copied values differ
    # from the target's class.
    pop_keys(spec, ("nodeName", "priority", "preemptionPolicy"))
    _drop_legacy_token_volumes(spec)


def _drop_legacy_token_volumes(spec: JsonObject) -> None:
    # The token secret is skipped at export (skip.py) and its token was signed by the source
    # cluster's key; a pod still mounting it would never start. The target's admission
    # plugin mounts a fresh projected token instead.
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if not isinstance(account, str):
        return
    pattern = re.compile(re.escape(account) + _LEGACY_TOKEN_SUFFIX)
    volumes = child_list(spec, "volumes") or []
    stale = {
        volume.get("name")
        for volume in volumes
        if isinstance(volume, dict)
        and isinstance(secret := volume.get("secret"), dict)
        and isinstance(secret_name := secret.get("secretName"), str)
        and pattern.fullmatch(secret_name)
    }
    if not stale:
        return
    spec["volumes"] = [v for v in volumes if not (isinstance(v, dict) and v.get("name") in stale)]
    drop_if_empty(spec, "volumes")
    for key in _CONTAINER_LISTS:
        for container in child_list(spec, key) or []:
            mounts = child_list(container, "volumeMounts")
            if mounts is None:
                continue
            container["volumeMounts"] = [m for m in mounts if not (isinstance(m, dict) and m.get("name") in stale)]
            drop_if_empty(container, "volumeMounts")


def _clean_persistent_volume(obj: JsonObject, options: _Options) -> None:
    # The claimRef names the claim (namespace/name), which is what rebinding needs; its uid
    # and resourceVersion are the old claim's, and the PV controller would refuse to bind a
    # new claim with another uid, leaving both Pending/Released forever.
    claim_ref = child(child(obj, "spec"), "claimRef")
    if claim_ref is not None:
        pop_keys(claim_ref, ("uid", "resourceVersion"))


def _clean_persistent_volume_claim(obj: JsonObject, options: _Options) -> None:
    metadata = child(obj, "metadata")
    if metadata is not None:
        _drop_annotations(metadata, PVC_BIND_ANNOTATIONS)


def _clean_namespace(obj: JsonObject, options: _Options) -> None:
    # spec.finalizers is written by the API server ("kubernetes", added on every create) and
    # by cluster components through the finalize subresource. Carried over, a finalizer whose
    # component does not run in the target leaves the namespace Terminating forever.
    spec = child(obj, "spec")
    if spec is not None:
        spec.pop("finalizers", None)
        drop_if_empty(obj, "spec")


def _clean_job(obj: JsonObject, options: _Options) -> None:
    spec = child(obj, "spec")
    if spec is None or spec.get("manualSelector") is True:
        # A manual selector was written by a person and is valid as it stands.
        return
    # The generated selector and template labels carry the source Job's uid; the API server
    # generates them again from the new uid when they are absent, and refuses the old ones.
    spec.pop("selector", None)
    template_metadata = child(child(spec, "template"), "metadata")
    labels = child(template_metadata, "labels")
    if template_metadata is not None and labels is not None and pop_keys(labels, JOB_CONTROLLER_UID_LABELS):
        drop_if_empty(template_metadata, "labels")


_KIND_CLEANERS: Final[Mapping[tuple[str, str], Callable[[JsonObject, _Options], None]]] = {
    ("", "services"): _clean_service,
    ("", "pods"): _clean_pod,
    ("", "persistentvolumes"): _clean_persistent_volume,
    ("", "persistentvolumeclaims"): _clean_persistent_volume_claim,
    ("", "namespaces"): _clean_namespace,
    ("batch", "jobs"): _clean_job,
}
