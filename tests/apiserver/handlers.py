"""The API semantics: get, list, create, update, patch, delete, deletecollection.

Nothing here knows about HTTP; the server parses a request into a `ResourceInfo`, a
namespace, a name and parameters, and calls one method. Every refusal is an
`ApiStatusError`. Writes go through `_commit`, a revision-conditioned etcd transaction;
writes that were not given a resourceVersion by the client retry on a lost race, the way
kube-apiserver's GuaranteedUpdate does, and writes that were answer 409 Conflict.
"""

from __future__ import annotations

import base64
import builtins
import copy
import datetime
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubectl_state.core.errors import EtcdError

from . import crd as crdlib
from . import defaults, managed, patch, selectors
from .discovery import Discovery
from .registry import ResourceInfo, ResourceTable
from .status import (
    ApiStatusError,
    already_exists,
    bad_request,
    conflict,
    expired,
    forbidden,
    invalid,
    method_not_supported,
    not_found,
    unsupported_media_type,
)
from .storage import Obj, Store, decode, is_compacted

#: How often a write without a client precondition retries after losing a race.
MAX_RETRIES = 50

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: Kinds whose names are DNS labels (no dots); RBAC names are path segments (colons allowed).
_LABEL_NAMED = frozenset({"Namespace", "Service"})
_PATH_SEGMENT_NAMED = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "IPAddress"})


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ServerConfig:
    prefix: str = "/registry"
    service_cidr: str = "10.96.0.0/12"
    ca_pem: str = ""
    advertise_host: str = "127.0.0.1"
    advertise_port: int = 6443


@dataclass
class RequestContext:
    """Who asks and how: the parts of a request that are not the object."""

    user: str = "system:admin"
    user_agent: str = ""
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Strict"
    warnings: list[str] = field(default_factory=list)

    def manager(self) -> str:
        if self.field_manager:
            return self.field_manager
        # kube-apiserver's default: the user agent up to its first "/".
        return (self.user_agent.split("/", 1)[0] or "unknown")[:128]


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def _spec_part(obj: Obj) -> Obj:
    """Everything generation tracks: the object without metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _unchanged(new: Obj, current: Obj) -> bool:
    """Whether an update changes nothing but managedFields timestamps (then it is not written)."""

    def comparable(obj: Obj) -> Obj:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("managedFields", "resourceVersion")}
        entries = [
            {k: v for k, v in e.items() if k != "time"} for e in (obj.get("metadata") or {}).get("managedFields") or []
        ]
        return {**obj, "metadata": meta, "managedFields": entries}

    return comparable(new) == comparable(current)


def encode_continue(revision: int, start: str) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from None


class Api:
    """One replica's view of the API, backed by etcd alone."""

    def __init__(self, store: Store, table: ResourceTable, discovery: Discovery, config: ServerConfig) -> None:
        self.store = store
        self.table = table
        self.discovery = discovery
        self.config = config
        self.prefix = config.prefix.rstrip("/")
        self.allocator = defaults.ClusterIPAllocator(self, config.service_cidr)
        self._crd_lock = threading.Lock()

    # --- resources ---------------------------------------------------------------------------

    def builtin(self, group: str, version: str, resource: str) -> ResourceInfo:
        info = self.table.lookup(group, version, resource)
        if info is None:
            raise KeyError(f"{group}/{version}/{resource}")
        return info

    def system_context(self, manager: str) -> RequestContext:
        return RequestContext(user="system:apiserver", user_agent=manager, field_manager=manager)

    def crd_info(self) -> ResourceInfo:
        return self.builtin(crdlib.CRD_GROUP, "v1", "customresourcedefinitions")

    def refresh_crds(self) -> list[Obj]:
        """Re-read every CRD from etcd and rebuild the custom part of the table."""
        info = self.crd_info()
        crds = [decode(kv) for kv in self.store.iter_prefix(info.collection_prefix(self.prefix, None))]
        infos: list[ResourceInfo] = []
        for crd in crds:
            infos.extend(crdlib.resource_infos(crd))
        with self._crd_lock:
            self.table.set_custom(infos)
        return crds

    def resolve(self, group: str, version: str, resource: str) -> ResourceInfo | None:
        info = self.table.lookup(group, version, resource)
        if info is None or info.crd_name:
            # Custom resources: ask etcd, as another replica may have added or removed the CRD.
            self.refresh_crds()
            info = self.table.lookup(group, version, resource)
        return info

    def custom_resources(self) -> list[ResourceInfo]:
        self.refresh_crds()
        return self.table.custom()

    def _crd_of(self, info: ResourceInfo) -> Obj | None:
        if not info.crd_name:
            return None
        found = self.store.get(self.crd_info().key(self.prefix, None, info.crd_name))
        return found[0] if found else None

    # --- helpers -------------------------------------------------------------------------------

    def _key(self, info: ResourceInfo, namespace: str | None, name: str) -> bytes:
        return info.key(self.prefix, namespace if info.namespaced else None, name)

    def served(self, info: ResourceInfo, obj: Obj) -> Obj:
        """An object as served through `info`'s version (versions share storage, unconverted)."""
        obj["apiVersion"] = info.api_version
        obj.setdefault("kind", info.kind)
        return obj

    def _require_verb(self, info: ResourceInfo, verb: str) -> None:
        if verb not in info.verbs:
            raise method_not_supported(verb, info.resource, info.group)

    def _check_namespace_open(self, namespace: str) -> None:
        found = self.store.get(self.builtin("", "v1", "namespaces").key(self.prefix, None, namespace))
        if found is None:
            raise not_found("namespaces", "", namespace)
        if _meta(found[0]).get("deletionTimestamp"):
            raise forbidden(
                f"{namespace!s} is forbidden: unable to create new content in namespace {namespace} "
                "because it is being terminated",
                "namespaces",
                "",
                namespace,
            )

    def _check_kind(self, info: ResourceInfo, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON or YAML object")
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if kind and kind != info.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        if api_version and (api_version.rpartition("/")[0] != info.group):
            raise bad_request(
                f"the API version in the data ({api_version}) "
                f"does not match the expected API version ({info.api_version})"
            )
        body["apiVersion"] = info.api_version
        body["kind"] = info.kind
        _meta(body)
        return body

    def _check_name(self, info: ResourceInfo, name: str) -> None:
        if info.kind in _PATH_SEGMENT_NAMED:
            ok = name not in (".", "..") and "/" not in name and "%" not in name
            why = 'may not contain "/" or "%"'
        elif info.kind in _LABEL_NAMED:
            ok = len(name) <= 63 and bool(_DNS_LABEL.fullmatch(name))
            why = (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                "start and end with an alphanumeric character"
            )
        else:
            ok = len(name) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(name))
            why = (
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character"
            )
        if not ok:
            raise invalid(
                info.kind,
                info.group,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.name",
                        "message": f'Invalid value: "{name}": {why}',
                    }
                ],
            )

    def new_object_fields(self, info: ResourceInfo, obj: Obj, *, manager: str) -> Obj:
        """Server fields of a new object (for objects the server creates behind the API)."""
        obj = copy.deepcopy(obj)
        meta = _meta(obj)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if info.kind in defaults.GENERATION_KINDS or info.crd_name:
            meta["generation"] = 1
        managed.record_update(None, obj, manager, info.api_version, meta["creationTimestamp"])
        return obj

    def _validate_custom(self, ctx: RequestContext, info: ResourceInfo, obj: Obj) -> Obj:
        crd = self._crd_of(info)
        if crd is None:
            raise not_found(info.resource, info.group, _meta(obj).get("name", ""))
        schema = crdlib.version_schema(crd, info.version)
        obj, warnings = crdlib.prune_custom_resource(obj, schema, ctx.field_validation)
        ctx.warnings.extend(warnings)
        causes = crdlib.validate(obj, schema)
        if causes:
            raise invalid(info.kind, info.group, _meta(obj).get("name", ""), causes)
        return obj

    def _admit(self, ctx: RequestContext, info: ResourceInfo, obj: Obj, old: Obj | None) -> Obj:
        """Kind-specific defaulting and validation, for creates and updates alike."""
        defaults.apply_defaults(obj)
        if info.kind == "Service" and not info.crd_name:
            defaults.prepare_service(self, ctx, obj, old)
        if info.kind == "Namespace" and not info.crd_name:
            spec = obj.setdefault("spec", {})
            spec.setdefault("finalizers", ["kubernetes"])
            status = obj.setdefault("status", {})
            status["phase"] = "Terminating" if _meta(obj).get("deletionTimestamp") else "Active"
            _meta(obj).setdefault("labels", {})["kubernetes.io/metadata.name"] = _meta(obj)["name"]
        if info.group == crdlib.CRD_GROUP and info.resource == "customresourcedefinitions":
            causes = crdlib.validate_crd(obj)
            if causes:
                raise invalid("CustomResourceDefinition", crdlib.CRD_GROUP, _meta(obj).get("name", ""), causes)
            crdlib.require_structural(obj)
            obj.update(crdlib.with_status(obj, now()))
        if info.crd_name:
            obj = self._validate_custom(ctx, info, obj)
        return obj

    # --- reads -------------------------------------------------------------------------------

    def get(self, ctx: RequestContext, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        self._require_verb(info, "get")
        if not info.stored:
            raise not_found(info.resource, info.group, name)
        found = self.store.get(self._key(info, namespace, name))
        if found is None:
            raise not_found(info.resource, info.group, name)
        return self.served(info, found[0])

    def filter_for(self, info: ResourceInfo, params: dict[str, str]) -> Callable[[Obj], bool] | None:
        extra: tuple[str, ...] = ()
        if info.crd_name:
            crd = self._crd_of(info)
            extra = crdlib.selectable_fields(crd, info.version) if crd else ()
        return selectors.make_filter(params.get("labelSelector"), params.get("fieldSelector"), info.kind, extra)

    def list(self, ctx: RequestContext, info: ResourceInfo, namespace: str | None, params: dict[str, str]) -> Obj:
        self._require_verb(info, "list")
        predicate = self.filter_for(info, params)
        result: Obj = {"kind": f"{info.kind}List", "apiVersion": info.api_version, "metadata": {}, "items": []}
        if not info.stored:
            # Aggregated (metrics) and computed APIs: live data this server does not have.
            result["metadata"]["resourceVersion"] = str(self.store.current_revision())
            return result
        prefix = info.collection_prefix(self.prefix, namespace)
        try:
            limit = int(params.get("limit") or 0)
        except ValueError:
            raise bad_request(f"invalid limit {params.get('limit')!r}") from None
        revision = 0
        start = prefix
        token = params.get("continue")
        if token:
            revision, rest = decode_continue(token)
            start = prefix + rest.encode()
        elif params.get("resourceVersion") not in (None, "", "0") and params.get("resourceVersionMatch") == "Exact":
            revision = int(params["resourceVersion"])
        items: list[Obj] = []
        more = False
        next_start = b""
        try:
            while True:
                page_limit = max(limit - len(items), 0) if limit else 0
                if predicate is not None and limit:
                    page_limit = max(limit, 100)  # filtered pages: read ahead, cut below
                kvs, page_more, rev = self.store.page(prefix, start, page_limit, revision)
                if revision == 0:
                    revision = rev  # every further page reads this same revision
                for i, kv in enumerate(kvs):
                    obj = decode(kv)
                    if predicate is None or predicate(obj):
                        items.append(self.served(info, obj))
                    if limit and len(items) >= limit:
                        more = page_more or i < len(kvs) - 1
                        next_start = kv.key + b"\0"
                        break
                else:
                    if page_more and kvs:
                        start = kvs[-1].key + b"\0"
                        continue
                break
            remaining = None
            if more and predicate is None:
                remaining = self.store.count(prefix, next_start, revision)
                more = remaining > 0
        except EtcdError as exc:
            if is_compacted(exc):
                raise expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the "
                    "provided token results in an inconsistent list - objects that were created, modified, "
                    "or deleted between the time the first chunk was returned and now may show up in the "
                    "list."
                ) from None
            raise
        result["metadata"]["resourceVersion"] = str(revision)
        if more:
            result["metadata"]["continue"] = encode_continue(revision, next_start[len(prefix) :].decode())
            if remaining is not None:
                result["metadata"]["remainingItemCount"] = remaining
        result["items"] = items
        return result

    # --- writes ------------------------------------------------------------------------------

    def create(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        managed_fields: builtins.list[Obj] | None = None,
    ) -> Obj:
        self._require_verb(info, "create")
        obj = self._check_kind(info, copy.deepcopy(body))
        meta = _meta(obj)
        if info.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise bad_request("a namespaced resource needs a namespace")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not info.stored:
            return self._virtual_create(ctx, info, obj)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = defaults.generate_name(meta["generateName"])
            else:
                raise invalid(
                    info.kind,
                    info.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                )
        name = meta["name"]
        self._check_name(info, name)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if info.namespaced:
            self._check_namespace_open(namespace or "")
        for server_field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ):
            meta.pop(server_field, None)
        if info.has_status() and info.kind != "Namespace":
            obj.pop("status", None)  # status is written through its subresource only
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if info.kind in defaults.GENERATION_KINDS or info.crd_name:
            meta["generation"] = 1
        obj = self._admit(ctx, info, obj, None)
        if managed_fields is not None:
            _meta(obj)["managedFields"] = managed_fields  # an apply that creates owns as Apply
        else:
            managed.record_update(
                None,
                obj,
                ctx.manager(),
                info.api_version,
                meta["creationTimestamp"],
                include_status=not info.has_status(),
            )
        return self._store_new(ctx, info, namespace, obj)

    def _store_new(self, ctx: RequestContext, info: ResourceInfo, namespace: str | None, obj: Obj) -> Obj:
        name = _meta(obj)["name"]
        key = self._key(info, namespace, name)
        if ctx.dry_run:
            if self.store.get(key) is not None:
                raise already_exists(info.resource, info.group, name)
            return obj
        revision = self.store.create(key, obj)
        if revision is None:
            if info.kind == "Service" and not info.crd_name:
                defaults.release_service(self, obj)
            raise already_exists(info.resource, info.group, name)
        _meta(obj)["resourceVersion"] = str(revision)
        self._after_create(info, obj)
        return obj

    def _after_create(self, info: ResourceInfo, obj: Obj) -> None:
        if info.kind == "Namespace" and not info.group:
            defaults.populate_namespace(self, _meta(obj)["name"])
        if info.resource == "customresourcedefinitions" and info.group == crdlib.CRD_GROUP:
            self.refresh_crds()

    def _virtual_create(self, ctx: RequestContext, info: ResourceInfo, obj: Obj) -> Obj:
        """Create-only review APIs: answer as an authorizer that allows everything would."""
        if info.resource in ("selfsubjectaccessreviews", "subjectaccessreviews", "localsubjectaccessreviews"):
            obj["status"] = {"allowed": True, "reason": "the kubectl-state test server authorizes every request"}
        elif info.resource == "selfsubjectreviews":
            obj["status"] = {"userInfo": {"username": ctx.user, "groups": ["system:masters", "system:authenticated"]}}
        elif info.resource == "tokenreviews":
            obj["status"] = {"authenticated": False}
        else:
            raise method_not_supported("create", info.resource, info.group)
        return obj

    def _build_update(
        self, ctx: RequestContext, info: ResourceInfo, current: Obj, candidate: Obj, subresource: str
    ) -> Obj:
        """The object an update stores: server fields kept, status or spec kept as the
        subresource rules say, generation bumped on a spec change."""
        new = copy.deepcopy(candidate)
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in candidate:
                new["status"] = copy.deepcopy(candidate["status"])
            else:
                new.pop("status", None)
        elif info.has_status():
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            else:
                new.pop("status", None)
        cur_meta, meta = _meta(current), _meta(new)
        for server_field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "name",
            "namespace",
            "generateName",
        ):
            if server_field in cur_meta:
                meta[server_field] = copy.deepcopy(cur_meta[server_field])
            else:
                meta.pop(server_field, None)
        meta.pop("resourceVersion", None)
        if "generation" in cur_meta and _spec_part(new) != _spec_part(current):
            meta["generation"] = int(cur_meta["generation"]) + 1
        if cur_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(cur_meta.get("finalizers") or [])
            if added:
                raise invalid(
                    info.kind,
                    info.group,
                    meta["name"],
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "field": "metadata.finalizers",
                            "message": "Forbidden: no new finalizers can be added if the object is being deleted",
                        }
                    ],
                )
        return new

    def _commit_update(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        make: Callable[[Obj], Obj],
        client_rv: Callable[[Obj], str | None],
        subresource: str = "",
        keep_managed: bool = False,
    ) -> Obj:
        """Read, build, write conditioned on the read revision; retry lost races unless the
        client gave a resourceVersion precondition (then 409)."""
        key = self._key(info, namespace, name)
        for _ in range(MAX_RETRIES):
            found = self.store.get(key)
            if found is None:
                raise not_found(info.resource, info.group, name)
            current, kv = found
            candidate = make(copy.deepcopy(current))
            precondition = client_rv(candidate)
            if precondition and precondition != str(kv.mod_revision):
                raise conflict(info.resource, info.group, name)
            new = self._build_update(ctx, info, current, candidate, subresource)
            if subresource != "status":
                new = self._admit(ctx, info, new, current)
            if keep_managed:
                if "managedFields" in _meta(candidate):
                    _meta(new)["managedFields"] = _meta(candidate)["managedFields"]
                else:
                    _meta(new).pop("managedFields", None)
            else:
                managed.record_update(
                    current,
                    new,
                    ctx.manager(),
                    info.api_version,
                    now(),
                    subresource=subresource,
                    include_status=subresource == "status" or not info.has_status(),
                )
            if _unchanged(new, current):
                return self.served(info, current)  # no-op: no write, same resourceVersion
            if _meta(new).get("deletionTimestamp") and not _meta(new).get("finalizers"):
                done = self._finish_delete(
                    ctx, info, namespace, name, new, mod_revision=kv.mod_revision, precondition=precondition
                )
                if done is not None:
                    return done
                continue
            if ctx.dry_run:
                _meta(new)["resourceVersion"] = str(kv.mod_revision)
                return self.served(info, new)
            revision = self.store.replace(key, new, kv.mod_revision)
            if revision is None:
                if precondition:
                    raise conflict(info.resource, info.group, name)
                continue
            _meta(new)["resourceVersion"] = str(revision)
            if info.resource == "customresourcedefinitions" and info.group == crdlib.CRD_GROUP:
                self.refresh_crds()
            return self.served(info, new)
        raise conflict(info.resource, info.group, name, "too many concurrent writers, try again")

    def update(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
    ) -> Obj:
        self._require_verb(info, "update")
        obj = self._check_kind(info, copy.deepcopy(body))
        meta = _meta(obj)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if info.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        return self._commit_update(
            ctx,
            info,
            namespace,
            name,
            make=lambda _current: copy.deepcopy(obj),
            client_rv=lambda candidate: _meta(candidate).get("resourceVersion") or None,
            subresource=subresource,
        )

    def patch(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        raw: bytes,
        *,
        content_type: str,
        params: dict[str, str],
        subresource: str = "",
    ) -> tuple[int, Obj]:
        self._require_verb(info, "patch")
        media = content_type.split(";", maxsplit=1)[0].strip().lower()
        try:
            if media == "application/apply-patch+yaml":
                body = yaml.safe_load(raw.decode() or "{}")
            else:
                body = json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        if media == "application/apply-patch+yaml":
            return self._apply(ctx, info, namespace, name, body, params=params, subresource=subresource)
        if media == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise bad_request("a merge patch must be a JSON object")
            apply_patch: Callable[[Obj], Obj] = lambda current: patch.json_merge_patch(current, body)  # noqa: E731
        elif media == "application/json-patch+json":
            apply_patch = lambda current: patch.json_patch(current, body)  # noqa: E731
        elif media == "application/strategic-merge-patch+json":
            if info.crd_name:
                raise unsupported_media_type(content_type)  # as kube-apiserver: no SMP for custom resources
            if not isinstance(body, dict):
                raise bad_request("a strategic merge patch must be a JSON object")
            apply_patch = lambda current: patch.strategic_merge_patch(current, body)  # noqa: E731
        else:
            raise unsupported_media_type(content_type)
        rv_in_patch = self._patch_resource_version(media, body)

        def make(current: Obj) -> Obj:
            result = apply_patch(current)
            if not isinstance(result, dict):
                raise bad_request("the patch produced something that is not an object")
            return result

        return 200, self._commit_update(
            ctx, info, namespace, name, make=make, client_rv=lambda _c: rv_in_patch, subresource=subresource
        )

    @staticmethod
    def _patch_resource_version(media: str, body: Any) -> str | None:
        """A resourceVersion the patch itself sets is a precondition (409 when stale)."""
        if isinstance(body, dict):
            rv = (body.get("metadata") or {}).get("resourceVersion")
            return str(rv) if rv else None
        if isinstance(body, list):
            for op in body:
                if (
                    isinstance(op, dict)
                    and op.get("path") == "/metadata/resourceVersion"
                    and op.get("op") in ("add", "replace", "test")
                ):
                    return str(op.get("value"))
        return None

    def _apply(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        params: dict[str, str],
        subresource: str,
    ) -> tuple[int, Obj]:
        if not ctx.field_manager:
            raise bad_request(
                "PATCH requests with apply content type (application/apply-patch+yaml) require a fieldManager"
            )
        config = self._check_kind(info, body)
        meta = _meta(config)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        meta["name"] = name
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        force = params.get("force", "").lower() == "true"
        include_status = subresource == "status" or not info.has_status()
        key = self._key(info, namespace, name)
        if self.store.get(key) is None:
            if subresource:
                raise not_found(info.resource, info.group, name)
            obj = managed.server_side_apply(
                None, config, ctx.manager(), info.api_version, now(), force=force, include_status=include_status
            )
            entries = _meta(obj).pop("managedFields", None)
            obj["apiVersion"], obj["kind"] = info.api_version, info.kind
            try:
                return 201, self.create(ctx, info, namespace, obj, managed_fields=entries or [])
            except ApiStatusError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                # Created by someone else meanwhile: apply to that object instead.

        def make(current: Obj) -> Obj:
            merged = managed.server_side_apply(
                current,
                config,
                ctx.manager(),
                info.api_version,
                now(),
                force=force,
                subresource=subresource,
                include_status=include_status,
            )
            return merged

        rv = meta.get("resourceVersion")
        result = self._commit_update(
            ctx,
            info,
            namespace,
            name,
            make=make,
            client_rv=lambda _c: str(rv) if rv else None,
            subresource=subresource,
            keep_managed=True,
        )
        return 200, result

    # --- deletes -----------------------------------------------------------------------------

    def _finish_delete(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        mod_revision: int,
        precondition: str | None,
    ) -> Obj | None:
        """Remove the key (conditioned on `mod_revision`); None when the race was lost."""
        if ctx.dry_run:
            return self.served(info, obj)
        key = self._key(info, namespace, name)
        revision = self.store.delete(key, mod_revision)
        if revision is None:
            if precondition:
                raise conflict(info.resource, info.group, name)
            return None
        _meta(obj)["resourceVersion"] = str(revision)
        self._after_delete(info, obj)
        return self.served(info, obj)

    def _after_delete(self, info: ResourceInfo, obj: Obj) -> None:
        meta = _meta(obj)
        if info.kind == "Service" and not info.crd_name:
            defaults.release_service(self, obj)
        if info.resource == "customresourcedefinitions" and info.group == crdlib.CRD_GROUP:
            # The CRD's cleanup finalizer in kube-apiserver removes every instance.
            for custom in crdlib.resource_infos(
                {**obj, "metadata": {k: v for k, v in meta.items() if k != "deletionTimestamp"}}
            ):
                self.store.delete_prefix(custom.collection_prefix(self.prefix, None))
                break
            self.refresh_crds()
        namespace = meta.get("namespace")
        if namespace and info.namespaced:
            ns_found = self.store.get(self.builtin("", "v1", "namespaces").key(self.prefix, None, namespace))
            if ns_found is not None and _meta(ns_found[0]).get("deletionTimestamp"):
                self._finalize_namespace(namespace)

    def delete(
        self, ctx: RequestContext, info: ResourceInfo, namespace: str | None, name: str, options: Obj | None = None
    ) -> Obj:
        self._require_verb(info, "delete")
        if not info.stored:
            raise method_not_supported("delete", info.resource, info.group)
        options = options or {}
        preconditions = options.get("preconditions") or {}
        key = self._key(info, namespace, name)
        for _ in range(MAX_RETRIES):
            found = self.store.get(key)
            if found is None:
                raise not_found(info.resource, info.group, name)
            current, kv = found
            meta = _meta(current)
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise conflict(
                    info.resource,
                    info.group,
                    name,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != str(kv.mod_revision):
                raise conflict(
                    info.resource,
                    info.group,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                    f"ResourceVersion in object meta: {kv.mod_revision}",
                )
            precondition = preconditions.get("resourceVersion")
            if info.kind == "Namespace" and not info.group:
                return self._delete_namespace(ctx, info, name, current, kv.mod_revision)
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return self.served(info, current)
                marked = copy.deepcopy(current)
                _meta(marked)["deletionTimestamp"] = now()
                _meta(marked)["deletionGracePeriodSeconds"] = 0
                _meta(marked).pop("resourceVersion", None)
                if ctx.dry_run:
                    return self.served(info, marked)
                revision = self.store.replace(key, marked, kv.mod_revision)
                if revision is None:
                    continue
                _meta(marked)["resourceVersion"] = str(revision)
                return self.served(info, marked)
            done = self._finish_delete(
                ctx, info, namespace, name, current, mod_revision=kv.mod_revision, precondition=precondition
            )
            if done is not None:
                return done
        raise conflict(info.resource, info.group, name, "too many concurrent writers, try again")

    def _delete_namespace(
        self, ctx: RequestContext, info: ResourceInfo, name: str, current: Obj, mod_revision: int
    ) -> Obj:
        """Namespaces go Terminating first; their contents are removed, then the namespace."""
        if name in ("default", "kube-system", "kube-public"):
            raise forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted', "namespaces", "", name
            )
        if _meta(current).get("deletionTimestamp"):
            self._finalize_namespace(name)
            return self.served(info, current)
        marked = copy.deepcopy(current)
        _meta(marked)["deletionTimestamp"] = now()
        _meta(marked).pop("resourceVersion", None)
        marked.setdefault("status", {})["phase"] = "Terminating"
        if ctx.dry_run:
            return self.served(info, marked)
        revision = self.store.replace(info.key(self.prefix, None, name), marked, mod_revision)
        if revision is None:
            return self.delete(ctx, info, None, name)
        _meta(marked)["resourceVersion"] = str(revision)
        self._finalize_namespace(name)
        return self.served(info, marked)

    def _finalize_namespace(self, namespace: str) -> None:
        """Delete what a terminating namespace holds; once nothing is left, the namespace.

        Objects with finalizers are only marked; when their last finalizer goes, the update
        that removes it deletes them and calls this again (see `_after_delete`).
        """
        self.refresh_crds()
        ctx = self.system_context("namespace-controller")
        remaining = 0
        for info in self.table.namespaced_storage():
            prefix = info.collection_prefix(self.prefix, namespace)
            for kv in list(self.store.iter_prefix(prefix)):
                name = kv.key[len(prefix) :].decode()
                try:
                    result = self.delete(ctx, info, namespace, name)
                except ApiStatusError as exc:
                    if exc.code == 404:
                        continue
                    raise
                if _meta(result).get("deletionTimestamp") and _meta(result).get("finalizers"):
                    remaining += 1
        if remaining:
            return
        ns_info = self.builtin("", "v1", "namespaces")
        found = self.store.get(ns_info.key(self.prefix, None, namespace))
        if found is not None and _meta(found[0]).get("deletionTimestamp"):
            self.store.delete(ns_info.key(self.prefix, None, namespace), found[1].mod_revision)

    def delete_collection(
        self, ctx: RequestContext, info: ResourceInfo, namespace: str | None, params: dict[str, str]
    ) -> Obj:
        self._require_verb(info, "deletecollection")
        listing = self.list(
            ctx, info, namespace, {k: v for k, v in params.items() if k in ("labelSelector", "fieldSelector")}
        )
        deleted = []
        for item in listing["items"]:
            meta = _meta(item)
            try:
                deleted.append(self.delete(ctx, info, meta.get("namespace"), meta["name"]))
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        listing["items"] = deleted
        return listing

    # --- subresources ------------------------------------------------------------------------

    def get_scale(self, ctx: RequestContext, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        obj = self.get(ctx, info, namespace, name)
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: v
                for k, v in _meta(obj).items()
                if k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
            },
        }

    def set_scale(
        self,
        ctx: RequestContext,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        scale: Any,
        *,
        media: str | None = None,
    ) -> Obj:
        if media is not None:
            current = self.get_scale(ctx, info, namespace, name)
            raw = json.loads(scale or b"{}")
            scale = (
                patch.json_patch(current, raw)
                if media.startswith("application/json-patch")
                else patch.json_merge_patch(current, raw)
            )
        if not isinstance(scale, dict):
            raise bad_request("a Scale object is required")
        replicas = (scale.get("spec") or {}).get("replicas")
        rv = (scale.get("metadata") or {}).get("resourceVersion")

        def make(current: Obj) -> Obj:
            current.setdefault("spec", {})["replicas"] = replicas
            return current

        self._commit_update(ctx, info, namespace, name, make=make, client_rv=lambda _c: str(rv) if rv else None)
        return self.get_scale(ctx, info, namespace, name)
