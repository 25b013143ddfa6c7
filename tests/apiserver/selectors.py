"""Label and field selectors, parsed as kube-apiserver parses them.

A selector that cannot be parsed is a 400 BadRequest, never a silent match-all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubectl_state.core.errors import UsageError
from kubectl_state.core.transform import selectors as core_selectors
from kubectl_state.core.transform.selectors import Selector

from .status import bad_request


def parse_label_selector(text: str | None) -> Selector | None:
    """The project's own parser (kubectl_state.core.transform.selectors), which follows the
    API server's grammar; its UsageError becomes the 400 a real server answers."""
    if not text:
        return None
    try:
        return core_selectors.parse_label_selector(text)
    except UsageError as exc:
        raise bad_request(f"unable to parse requirement: {exc.message}") from exc


def labels_match(selector: Selector | None, obj: dict[str, Any]) -> bool:
    return selector is None or selector.matches((obj.get("metadata") or {}).get("labels"))


#: Field selectors every resource supports; others are per kind (as kube-apiserver's
#: GetAttrs functions declare them) and anything else is refused.
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Secret": ("type",),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "ReplicationController": ("status.replicas",),
    "Job": ("status.successful",),
    "CertificateSigningRequest": ("spec.signerName",),
}


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if isinstance(current, bool):
            current = "true" if current else "false"
        text = "" if current is None else str(current)
        return (text == self.value) == self.equal


def parse_field_selector(text: str | None, kind: str, extra_fields: tuple[str, ...] = ()) -> list[FieldRequirement]:
    if not text:
        return []
    allowed = COMMON_FIELDS + KIND_FIELDS.get(kind, ()) + extra_fields
    result = []
    for raw in text.split(","):
        part = raw.strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if m.group(1) not in allowed:
            raise bad_request(f"field label not supported: {m.group(1)}")
        result.append(FieldRequirement(m.group(1), m.group(2) != "!=", m.group(3).strip()))
    return result


def fields_match(requirements: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all(r.matches(obj) for r in requirements)


def make_filter(
    label_selector: str | None, field_selector: str | None, kind: str, extra_fields: tuple[str, ...] = ()
) -> Callable[[dict[str, Any]], bool] | None:
    """A predicate for list and watch, or None when nothing is selected (the fast path)."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, kind, extra_fields)
    if labels is None and not fields:
        return None
    return lambda obj: labels_match(labels, obj) and fields_match(fields, obj)
