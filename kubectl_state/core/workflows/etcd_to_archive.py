"""etcd keys to an API-level archive: recover namespaces or resources from an etcd backup.

kube-apiserver keeps each object under `<prefix>/<resource path>/[<namespace>/]<name>`,
encoded as JSON (custom resources, and everything on a server with the JSON storage media
type) or as protobuf behind the magic bytes `k8s\\0` (built-ins on a default server).
A JSON value carries its own apiVersion, kind, namespace and name; the key adds the one
fact the object lacks, the plural resource name. So each JSON object becomes one archive
object, skipped and cleaned by the same rules as `kubectl state export` (transform.skip,
transform.clean), and the archive imports with `kubectl state import` like any other.

What cannot be converted is never dropped in silence: protobuf, encrypted-at-rest values
and keys that hold no API object are counted in the manifest's skip counts under a
`not-convertible:*` reason and named (up to NAMED_PER_REASON keys each) in the summary.

All keys are read at one revision (a consistent cut, as a list at one resourceVersion),
page by page, so memory holds one page whatever the size of the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kubectl_state.core.archive.writer import ArchiveWriter, ObjectSink
from kubectl_state.core.errors import UsageError
from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.etcd.grpc_snapshot import read_varint
from kubectl_state.core.transform.clean import clean_object
from kubectl_state.core.transform.skip import (
    is_included,
    resource_skip_reason,
    services_with_selector,
    skip_reason,
)

PROTOBUF_MAGIC: Final = b"k8s\x00"
#: Values written through a KMS or aescbc/aesgcm/secretbox encryption provider.
ENCRYPTED_MAGIC: Final = b"k8s:enc:"

NOT_PROTOBUF: Final = "not-convertible:protobuf"
NOT_ENCRYPTED: Final = "not-convertible:encrypted"
NOT_AN_OBJECT: Final = "not-convertible:not-an-object"
NOT_KEY_LAYOUT: Final = "not-convertible:key-mismatch"
NOT_ONE_VERSION: Final = "not-convertible:second-storage-version"
#: kube-apiserver's own bookkeeping (service IP and node port bitmaps, endpoint reconciler
#: leases, the compaction marker): not API objects; a new control plane writes its own.
APISERVER_INTERNAL: Final = "apiserver-internal"
INTERNAL_TOP_LEVEL: Final = frozenset({"ranges", "masterleases", "peerserverleases", "compact_rev_key"})

#: Built-ins kube-apiserver stores under another path than their plural (storage path -> plural).
SPECIAL_PATHS: Final[Mapping[str, str]] = {
    "services/specs": "services",
    "services/endpoints": "endpoints",
    "minions": "nodes",
    "controllers": "replicationcontrollers",
    "ingress": "ingresses",
}
NAMED_PER_REASON: Final = 20
PAGE_SIZE: Final = 500

Counter = Callable[[int], None]


@dataclass(frozen=True)
class EtcdArchiveOptions:
    """What to convert: every object under `prefix`, or only some namespaces or resources.

    `namespaces` keeps the namespaced objects of those namespaces, the Namespace objects
    themselves and the CustomResourceDefinitions of the custom resources kept (what an
    import needs first), as `kubectl state export -n` does. `resources` names resources as
    kubectl does (`configmaps`, `widgets.example.com`) and also brings back resources the
    export skips by default (events, leases...).
    """

    prefix: str = "/registry"
    namespaces: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    include_status: bool = False
    keep_last_applied: bool = False

    def filters(self, revision: int) -> dict[str, Any]:
        return {
            "source": "etcd",
            "etcdPrefix": self.prefix,
            "etcdRevision": revision,
            "namespaces": list(self.namespaces) or None,
            "includeResources": list(self.resources),
            "includeStatus": self.include_status,
            "keepLastApplied": self.keep_last_applied,
        }


@dataclass
class EtcdArchiveSummary:
    revision: int = 0
    keys: int = 0
    objects: int = 0
    resources: int = 0
    #: reason -> how many keys were left out for it (the manifest has them per resource).
    skipped: dict[str, int] = field(default_factory=dict)
    #: not-convertible reason -> the first NAMED_PER_REASON keys left out for it.
    not_convertible: dict[str, list[str]] = field(default_factory=dict)

    @property
    def not_convertible_count(self) -> int:
        return sum(n for reason, n in self.skipped.items() if reason.startswith("not-convertible:"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "keys": self.keys,
            "objects": self.objects,
            "resources": self.resources,
            "skipped": dict(sorted(self.skipped.items())),
            "notConvertible": {
                reason: {"count": self.skipped.get(reason, 0), "keys": names}
                for reason, names in sorted(self.not_convertible.items())
            },
        }


def check_options(options: EtcdArchiveOptions) -> None:
    if not options.prefix.startswith("/") or options.prefix.endswith("/"):
        raise UsageError(f"the etcd prefix must start with / and not end with one, not {options.prefix!r}")


@dataclass(frozen=True)
class _Located:
    """What the key says about an object: its resource and, for custom resources, group."""

    resource: str
    key_group: str | None  # the group named in the key, None for a built-in's key
    namespace: str | None
    name: str


def locate(path: str, namespaced: bool) -> _Located | None:
    """Split `<resource path>/[<namespace>/]<name>` (the key after the prefix), or None."""
    parts = path.split("/")
    need = 3 if namespaced else 2
    if len(parts) < need or not all(parts):
        return None
    name = parts[-1]
    namespace = parts[-2] if namespaced else None
    storage = "/".join(parts[: len(parts) - need + 1])
    special = SPECIAL_PATHS.get(storage)
    if special is not None:
        return _Located(special, None, namespace, name)
    pieces = storage.split("/")
    if len(pieces) == 1:
        return _Located(pieces[0], None, namespace, name)
    if len(pieces) == 2:
        return _Located(pieces[1], pieces[0], namespace, name)
    return None


def _guess_resource(path: str) -> tuple[str, str]:
    """(resource, group) from a key alone, for counting a value that cannot be read."""
    for storage, plural in SPECIAL_PATHS.items():
        if path.startswith(storage + "/"):
            return plural, ""
    parts = path.split("/")
    if len(parts) >= 3 and "." in parts[0]:
        return parts[1], parts[0]
    return (parts[0] or "unknown"), ""


class _Converter:
    def __init__(self, client: EtcdClient, sink: ObjectSink, options: EtcdArchiveOptions) -> None:
        self.client = client
        self.sink = sink
        self.options = options
        self.include = frozenset(r.strip() for raw in options.resources for r in raw.split(",") if r.strip())
        self.summary = EtcdArchiveSummary()
        self.base = options.prefix.encode() + b"/"
        #: (group, resource) -> (version, kind, namespaced) of what went into the archive.
        self.listed: dict[tuple[str, str], tuple[str, str, bool]] = {}
        #: With namespaces: the keys of CRDs, written at the end if their resources were kept.
        self.crd_keys: dict[tuple[str, str], bytes] = {}
        self.services: frozenset[tuple[str, str]] = frozenset()

    def skip(self, reason: str, resource: str, group: str, key: bytes | None = None) -> None:
        self.sink.count_skip(reason, resource, group, 1)
        self.summary.skipped[reason] = self.summary.skipped.get(reason, 0) + 1
        if key is not None and reason.startswith("not-convertible:"):
            named = self.summary.not_convertible.setdefault(reason, [])
            if len(named) < NAMED_PER_REASON:
                named.append(key.decode("utf-8", errors="backslashreplace"))

    def read_services(self, revision: int) -> None:
        """Services with a selector, for judging Endpoints: their keys sort after endpoints'."""
        found: set[tuple[str, str]] = set()
        for kv in self.client.iter_prefix(self.base + b"services/specs/", page_size=PAGE_SIZE, revision=revision):
            obj = _json_object(kv.value)
            if obj is not None:
                found |= services_with_selector([obj])
        self.services = frozenset(found)

    def convert(self, key: bytes, value: bytes) -> None:
        self.summary.keys += 1
        try:
            path = key[len(self.base):].decode("utf-8")
        except UnicodeDecodeError:
            self.skip(NOT_KEY_LAYOUT, "unknown", "", key)
            return
        if path.split("/", 1)[0] in INTERNAL_TOP_LEVEL:
            if not (self.options.namespaces or self.include):
                self.skip(APISERVER_INTERNAL, path.split("/", 1)[0], "")
            return
        if value.startswith(PROTOBUF_MAGIC) or value.startswith(ENCRYPTED_MAGIC):
            resource, group = _guess_resource(path)
            api_version = protobuf_api_version(value) if value.startswith(PROTOBUF_MAGIC) else None
            if api_version is not None:
                group = api_version.rpartition("/")[0]  # the envelope knows the group the key leaves out
            if self.wanted_by_key(resource, group, path):
                self.skip(NOT_PROTOBUF if value.startswith(PROTOBUF_MAGIC) else NOT_ENCRYPTED, resource, group, key)
            return
        obj = _json_object(value)
        if obj is None:
            resource, group = _guess_resource(path)
            if self.wanted_by_key(resource, group, path):
                self.skip(NOT_AN_OBJECT, resource, group, key)
            return
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        kind = str(obj["kind"])
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or None
        where = locate(path, namespace is not None)
        if (where is None or where.name != metadata.get("name") or where.namespace != namespace
                or where.key_group not in (None, group)):
            self.skip(NOT_KEY_LAYOUT, *_guess_resource(path), key)
            return
        self.add(key, obj, group, version, where.resource, kind, namespace)

    def wanted_by_key(self, resource: str, group: str, path: str) -> bool:
        """Whether the filters would keep an object at this key (for values that cannot be read)."""
        if self.include and not is_included(group, resource, self.include):
            return False
        if self.options.namespaces:
            parts = path.split("/")
            if resource == "namespaces":
                return parts[-1] in self.options.namespaces
            return len(parts) >= 3 and parts[-2] in self.options.namespaces
        return True

    def add(self, key: bytes, obj: dict[str, Any], group: str, version: str, resource: str, kind: str,  # noqa: PLR0917
            namespace: str | None, *, scoped: bool = True) -> None:
        """Filter, skip or clean and write one object; `scoped=False` bypasses the filters."""
        options = self.options
        if scoped and self.include and not is_included(group, resource, self.include):
            return  # the user's filter, recorded as such in the manifest's filters
        if scoped and options.namespaces:
            if (group, resource) == ("apiextensions.k8s.io", "customresourcedefinitions"):
                spec = obj.get("spec") or {}
                names = spec.get("names") or {}
                self.crd_keys[(str(spec.get("group")), str(names.get("plural")))] = key
                return
            in_scope = namespace in options.namespaces or (
                (group, resource) == ("", "namespaces") and obj["metadata"].get("name") in options.namespaces)
            if not in_scope:
                return
        reason = resource_skip_reason(group, version, resource, ("list",), include=self.include) or skip_reason(
            resource, group, obj, services=self.services, include=self.include)
        if reason is not None:
            self.skip(reason, resource, group)
            return
        identity = (version, kind, namespace is not None)
        first = self.listed.setdefault((group, resource), identity)
        if first != identity:
            # One archive holds one version of a resource; an object not yet migrated to the
            # storage version cannot be converted here (the API server would do it on read).
            self.skip(NOT_ONE_VERSION, resource, group, key)
            return
        cleaned = clean_object(obj, resource=resource, group=group, include_status=options.include_status,
                               keep_last_applied=options.keep_last_applied)
        uid = obj["metadata"].get("uid")
        self.sink.add_object(group, version, resource, kind, namespace is not None, cleaned,
                             uid=uid if isinstance(uid, str) else None)
        self.summary.objects += 1

    def add_crds(self, revision: int) -> None:
        """The CRDs of the custom resources kept (namespaces chosen): import creates them first."""
        for (group, plural), key in sorted(self.crd_keys.items()):
            if (group, plural) not in self.listed:
                continue
            kv = self.client.get(key, revision=revision)
            obj = _json_object(kv.value) if kv is not None else None
            if obj is None:
                continue
            crd_group, _, version = str(obj["apiVersion"]).rpartition("/")
            self.add(key, obj, crd_group, version, "customresourcedefinitions", str(obj["kind"]), None, scoped=False)


def protobuf_api_version(value: bytes) -> str | None:
    """The apiVersion in a protobuf value's envelope (runtime.Unknown: typeMeta = 1 {apiVersion = 1}),
    or None when it cannot be read. Only the envelope: the object itself stays opaque."""
    data, pos = value[len(PROTOBUF_MAGIC):], 0
    try:
        while pos < len(data):
            tag, pos = read_varint(data, pos)
            if tag & 7 != 2:
                return None  # Unknown has only length-delimited fields
            length, pos = read_varint(data, pos)
            if tag >> 3 == 1:
                meta, inner = data[pos:pos + length], 0
                while inner < len(meta):
                    meta_tag, inner = read_varint(meta, inner)
                    if meta_tag & 7 != 2:
                        return None
                    size, inner = read_varint(meta, inner)
                    if meta_tag >> 3 == 1:
                        return meta[inner:inner + size].decode("utf-8")
                    inner += size
                return None
            pos += length
    except (IndexError, ValueError):  # truncated, an overlong varint, or not UTF-8
        return None
    return None


def _json_object(value: bytes) -> dict[str, Any] | None:
    """The value as an API object (a JSON map with apiVersion, kind and metadata.name), or None."""
    if not value.startswith(b"{"):
        return None
    try:
        obj = json.loads(value)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    metadata = obj.get("metadata")
    if not (isinstance(obj.get("apiVersion"), str) and isinstance(obj.get("kind"), str)
            and isinstance(metadata, dict) and isinstance(metadata.get("name"), str) and metadata["name"]):
        return None
    return obj


def etcd_to_archive(
    client: EtcdClient,
    sink: ObjectSink,
    options: EtcdArchiveOptions,
    *,
    revision: int = 0,
    on_progress: Counter | None = None,
) -> EtcdArchiveSummary:
    """Convert every object under the prefix, as of `revision` (0: now), into `sink` and commit it.

    On any failure the sink is left uncommitted (the caller's `with` discards it).
    """
    check_options(options)
    converter = _Converter(client, sink, options)
    base = converter.base
    if revision == 0:
        revision = client.range(base, prefix=True, count_only=True).revision
    converter.summary.revision = revision
    converter.read_services(revision)
    pending = 0
    for kv in client.iter_prefix(base, page_size=PAGE_SIZE, revision=revision):
        converter.convert(kv.key, kv.value)
        pending += 1
        if on_progress is not None and pending >= PAGE_SIZE:
            on_progress(pending)
            pending = 0
    if on_progress is not None and pending:
        on_progress(pending)
    if options.namespaces:
        converter.add_crds(revision)
    for (group, resource), (version, kind, namespaced) in sorted(converter.listed.items()):
        # kube-apiserver's resourceVersion is the etcd revision: every list was "at" this one.
        sink.record_list(group, version, resource, kind, namespaced, str(revision))
    converter.summary.resources = len(converter.listed)
    if isinstance(sink, ArchiveWriter):
        sink.commit(entries=False)  # as export: the entries are in manifest.json, not needed in memory
    else:
        sink.commit()
    return converter.summary
