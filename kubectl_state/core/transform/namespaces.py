"""Namespace mapping for import (`--namespace-mapping OLD:NEW`).

An object moves namespace by its `metadata.namespace`, but namespaces are also named inside
other objects; leaving those behind points the copy at the source namespace, which may not
exist in the target or, worse, belongs to someone else. Rewritten here:
- a Namespace's own name (and the `kubernetes.io/metadata.name` label that mirrors it);
- RoleBinding and ClusterRoleBinding subjects: `namespace` of ServiceAccount subjects, and
  the service-account user and group names ("system:serviceaccount:NS:NAME",
  "system:serviceaccounts:NS") that grant the same thing in string form;
- PersistentVolume `spec.claimRef.namespace`, so the volume rebinds to its moved claim;
- the in-cluster services that the API server calls, whose namespace moves with them:
  admission webhooks, APIService backends, CRD conversion webhooks. A webhook left pointing
  at a namespace that is gone fails every request it intercepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

from kubectl_state.core.errors import InvalidInputError, UsageError
from kubectl_state.core.transform._json import JsonObject, api_group, child, child_list, copy_json

# A namespace name is an RFC 1123 label.
_NAMESPACE_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAMESPACE_NAME_MAX: Final = 63
_NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
_SA_USER_PREFIX: Final = "system:serviceaccount:"
_SA_GROUP_PREFIX: Final = "system:serviceaccounts:"


def parse_namespace_mapping(items: Iterable[str]) -> dict[str, str]:
    """Parse `OLD:NEW` pairs (one per item, or comma-separated as Velero takes them).

    Raises UsageError on a malformed pair or name, on one namespace mapped to two, and on
    two namespaces mapped to one: merging namespaces silently overwrites objects that share
    a name, so it is refused rather than guessed at. "a:a" is accepted (a no-op).
    """
    mapping: dict[str, str] = {}
    for item in items:
        for pair in item.split(","):
            old, new = _parse_pair(pair.strip())
            previous = mapping.get(old)
            if previous is not None and previous != new:
                raise UsageError(f"Namespace {old!r} is mapped twice, to {previous!r} and to {new!r}.")
            mapping[old] = new
    targets: dict[str, str] = {}
    for old, new in mapping.items():
        if new in targets:
            raise UsageError(
                f"Namespaces {targets[new]!r} and {old!r} are both mapped to {new!r}; "
                "merging namespaces is refused (objects with the same name would overwrite each other)."
            )
        targets[new] = old
    return mapping


def _parse_pair(pair: str) -> tuple[str, str]:
    parts = pair.split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UsageError(f"Invalid namespace mapping {pair!r}: expected OLD:NEW, e.g. prod:staging.")
    old, new = parts
    for name in (old, new):
        if len(name) > _NAMESPACE_NAME_MAX or not _NAMESPACE_NAME.fullmatch(name):
            raise UsageError(
                f"Invalid namespace mapping {pair!r}: {name!r} is not a namespace name "
                f"(lower-case letters, digits and '-', at most {_NAMESPACE_NAME_MAX} characters)."
            )
    return old, new


def check_mapping_targets(mapping: Mapping[str, str], source_namespaces: Collection[str]) -> None:
    """Refuse a mapping that moves a namespace onto another one the archive also holds unmapped.

    `parse_namespace_mapping` cannot see this: "a:b" is fine alone, but merges `a` into `b`
    when the archive has a namespace `b` too that stays where it is.
    """
    for old, new in sorted(mapping.items()):
        if old != new and old in source_namespaces and new in source_namespaces and new not in mapping:
            raise UsageError(
                f"Namespace {old!r} is mapped to {new!r}, which the archive also holds and which is not "
                f"mapped elsewhere; map {new!r} too, or choose another target."
            )


def map_namespaces(obj: Mapping[str, Any], mapping: Mapping[str, str]) -> JsonObject:
    """Return a copy of `obj` with every namespace in `mapping` rewritten; the input is untouched.

    `obj` must carry `kind` and `apiVersion` (as archived objects do): which fields name a
    namespace depends on the kind. Raises InvalidInputError otherwise.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InvalidInputError("Cannot map namespaces of an object without a kind.")
    out: JsonObject = copy_json(obj)
    if not mapping:
        return out
    metadata = child(out, "metadata")
    if metadata is not None:
        _rewrite(metadata, "namespace", mapping)
    rewrite_kind = _KIND_REWRITES.get((api_group(out.get("apiVersion")), kind))
    if rewrite_kind is not None:
        rewrite_kind(out, mapping)
    return out


def _rewrite(target: JsonObject | None, key: str, mapping: Mapping[str, str]) -> None:
    if target is None:
        return
    value = target.get(key)
    if isinstance(value, str) and value in mapping:
        target[key] = mapping[value]


def _namespace(obj: JsonObject, mapping: Mapping[str, str]) -> None:
    metadata = child(obj, "metadata")
    _rewrite(metadata, "name", mapping)
    # The API server sets this label to the name on create; rewriting it keeps a dry-run
    # diff honest rather than showing a label the server will overwrite.
    _rewrite(child(metadata, "labels"), _NAMESPACE_NAME_LABEL, mapping)


def _binding(obj: JsonObject, mapping: Mapping[str, str]) -> None:
    for subject in child_list(obj, "subjects") or []:
        if not isinstance(subject, dict):
            continue
        _rewrite(subject, "namespace", mapping)
        name = subject.get("name")
        if not isinstance(name, str):
            continue
        if subject.get("kind") == "User" and name.startswith(_SA_USER_PREFIX):
            namespace, sep, account = name[len(_SA_USER_PREFIX) :].partition(":")
            if sep and namespace in mapping:
                subject["name"] = f"{_SA_USER_PREFIX}{mapping[namespace]}:{account}"
        elif subject.get("kind") == "Group" and name.startswith(_SA_GROUP_PREFIX):
            namespace = name[len(_SA_GROUP_PREFIX) :]
            if namespace in mapping:
                subject["name"] = f"{_SA_GROUP_PREFIX}{mapping[namespace]}"


def _persistent_volume(obj: JsonObject, mapping: Mapping[str, str]) -> None:
    _rewrite(child(child(obj, "spec"), "claimRef"), "namespace", mapping)


def _webhook_configuration(obj: JsonObject, mapping: Mapping[str, str]) -> None:
    for webhook in child_list(obj, "webhooks") or []:
        _rewrite(child(child(webhook, "clientConfig"), "service"), "namespace", mapping)


def _api_service(obj: JsonObject, mapping: Mapping[str, str]) -> None:
    _rewrite(child(child(obj, "spec"), "service"), "namespace", mapping)


def _custom_resource_definition(obj: JsonObject, mapping: Mapping[str, str]) -> None:
    webhook = child(child(child(obj, "spec"), "conversion"), "webhook")
    _rewrite(child(child(webhook, "clientConfig"), "service"), "namespace", mapping)


_RBAC: Final = "rbac.authorization.k8s.io"
_ADMISSION: Final = "admissionregistration.k8s.io"

_KIND_REWRITES: Final[Mapping[tuple[str, str], Callable[[JsonObject, Mapping[str, str]], None]]] = {
    ("", "Namespace"): _namespace,
    (_RBAC, "RoleBinding"): _binding,
    (_RBAC, "ClusterRoleBinding"): _binding,
    ("", "PersistentVolume"): _persistent_volume,
    (_ADMISSION, "MutatingWebhookConfiguration"): _webhook_configuration,
    (_ADMISSION, "ValidatingWebhookConfiguration"): _webhook_configuration,
    ("apiregistration.k8s.io", "APIService"): _api_service,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _custom_resource_definition,
}
