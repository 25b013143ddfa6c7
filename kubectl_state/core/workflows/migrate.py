"""Migrate: copy (or move) a cluster's selected objects into another cluster, pausing first
what would fight the copy. The core of `kubectl state migrate` and, later, the Ansible
`state_migrate` module.

The steps, as `clusterctl move` takes them, with its known gaps closed:
1. Export the source (A) into memory and build the import plan against the target (B):
   filters, namespace mapping and cycles are refused here, before anything is touched.
   `dry_run` stops here and reports the plan, what would be paused and waited for.
2. Pause: every planned object matching a pause rule (default: Cluster API `Cluster`,
   `spec.paused: true`) is patched in A. Each pause is written to the journal *before* the
   patch, so a run killed at any point can be undone by the next one.
3. Wait until no planned object carries the `clusterctl.cluster.x-k8s.io/block-move`
   annotation (its controller removes it once it has seen the pause), up to `timeout`.
4. Export A again, now paused and unblocked, so the copies are what the paused controllers
   left (and arrive paused in B); with `keep` the export goes into an archive first and the
   import reads it back from there. Import into B with `import_plan`: plan order, owner
   references relinked to B's uids, every object reported.
5. With `move`, and only when every planned object was moved: delete the moved objects from
   A, dependents before owners (reverse plan order), emptying the finalizers of each moved
   object first, since no controller in A may run them any more. Shared objects stay: a
   Namespace that still holds objects not moved, a CRD with instances not moved, and (with
   -n) cluster-scoped objects other than Namespaces and CRDs, which other namespaces may use.
6. Unpause, always (finally, Ctrl-C included): objects still in A are unpaused in A; the
   copies of objects moved out of A are unpaused in B. Without `move`, B's copies stay
   paused: two clusters reconciling the same infrastructure is what pausing prevents.
   Unpausing restores the value the path had before (or removes the field), and leaves
   alone an object that was already paused before the migration.

A run killed with SIGKILL cannot unpause. Its journal stays behind, and the next run (the
same command again) first undoes every pause it records, then migrates as usual: objects
the killed run already created in B compare equal and count as unchanged.

Failures after the first pause do not raise: they end in the report (`error`), with every
object's outcome in B, so the caller always learns what exists where. Errors before that
(bad filters, unreachable clusters) raise as usual, with nothing touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kubectl_state.core.archive.manifest import Source
from kubectl_state.core.archive.writer import open_archive_writer
from kubectl_state.core.errors import (
    ApiError,
    ExitStatus,
    InvalidInputError,
    KubectlStateError,
    OperationTimeout,
    UsageError,
)
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import ApiResource, Discovery, discover
from kubectl_state.core.plan import ImportReport, ObjectId, Outcome, Plan, PlannedObject
from kubectl_state.core.workflows.export import ExportOptions, export_cluster
from kubectl_state.core.workflows.restore.importer import (
    ImportInterrupted,
    ImportListener,
    ImportOptions,
    ImportStopped,
    import_plan,
    plan_import,
)
from kubectl_state.core.workflows.restore.memory import MemorySink
from kubectl_state.core.workflows.restore.source import ImportSource, read_archive

Existing = Literal["skip", "update", "fail"]

#: Objects carrying this annotation are not moved until it is gone (Cluster API's contract).
BLOCK_MOVE_ANNOTATION = "clusterctl.cluster.x-k8s.io/block-move"
_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACES = ("", "namespaces")
#: Outcomes that leave B with the object as A has it.
_MOVED = frozenset({Outcome.CREATED, Outcome.UNCHANGED, Outcome.UPDATED})
_MERGE_PATCH = "application/merge-patch+json"
JOURNAL_KIND = "MigrateJournal"


# --- pause rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseRule:
    """Objects of `kind` in API `group` are paused by setting `path` to `value`; unpaused by
    putting back what was there before (removing the field if it was absent)."""

    group: str
    kind: str
    path: tuple[str, ...]
    value: Any

    def describe(self) -> str:
        return f"{self.kind}.{self.group or 'core'} {'.'.join(self.path)}={json.dumps(self.value)}"

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "kind": self.kind, "path": "/" + "/".join(self.path), "value": self.value}


#: Cluster API: a paused Cluster stops every provider controller from reconciling it and its machines.
DEFAULT_PAUSE_RULES: tuple[PauseRule, ...] = (PauseRule("cluster.x-k8s.io", "Cluster", ("spec", "paused"), True),)


def parse_path(text: str) -> tuple[str, ...]:
    """A JSON pointer (`/spec/paused`, with ~1 and ~0 escapes) or a dotted path (`spec.paused`).
    Only maps are walked: a pause is a merge patch, which cannot address list items."""
    if text.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]
    else:
        parts = text.split(".")
    if not text or any(not part for part in parts):
        raise InvalidInputError(f"pause rule path {text!r} is empty or has an empty segment")
    if parts[0] in ("apiVersion", "kind") or parts[:2] in (["metadata", "name"], ["metadata", "namespace"]):
        raise InvalidInputError(f"pause rule path {text!r} would change the object's identity")
    return tuple(parts)


def parse_pause_rules(document: Any) -> tuple[PauseRule, ...]:
    """Rules from a YAML/JSON document: a list of {group, kind, path, value}. `group` is ""
    for the core group. The list replaces the defaults; `[]` pauses nothing."""
    if not isinstance(document, list):
        raise InvalidInputError("pause rules must be a list of {group, kind, path, value}")
    rules = []
    for number, item in enumerate(document, start=1):
        if not isinstance(item, Mapping) or set(item) != {"group", "kind", "path", "value"}:
            raise InvalidInputError(f"pause rule {number} must have exactly group, kind, path and value")
        group, kind, path = item["group"], item["kind"], item["path"]
        if not isinstance(group, str) or not isinstance(kind, str) or not kind or not isinstance(path, str):
            raise InvalidInputError(f"pause rule {number}: group, kind and path must be strings")
        if item["value"] is None:
            raise InvalidInputError(f"pause rule {number}: value must not be null (null removes a field)")
        rules.append(PauseRule(group, kind, parse_path(path), item["value"]))
    return tuple(rules)


def _lookup(obj: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """(present, value) at `path`."""
    current: Any = obj
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _merge_patch(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A merge patch setting `path` to `value` (None removes it)."""
    patch: Any = value
    for part in reversed(path):
        patch = {part: patch}
    return dict(patch)


# --- options, report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrateOptions:
    #: Scope of the export: these namespaces (and what their objects need), or everything.
    namespaces: tuple[str, ...] = ()
    label_selector: str | None = None
    include_resources: tuple[str, ...] = ()
    exclude_resources: tuple[str, ...] = ()
    namespace_mapping: Mapping[str, str] = field(default_factory=dict)
    move: bool = False
    dry_run: bool = False
    pause_rules: tuple[PauseRule, ...] = DEFAULT_PAUSE_RULES
    #: Also write the export to this archive (then import from it).
    keep: str | None = None
    existing: Existing = "fail"
    concurrency: int = 8
    #: Seconds to wait for block-move annotations to go, and for CRDs to become Established.
    timeout: float = 300.0
    #: Where pauses are recorded until undone; None: not journaled (a killed run leaves A paused).
    journal: Path | None = None
    poll_interval: float = 0.25

    def import_options(self) -> ImportOptions:
        # The export is already scoped to the namespaces; the plan applies the rest of the
        # filters, so objects they leave out are known one by one (and reported).
        return ImportOptions(existing=self.existing, namespace_mapping=dict(self.namespace_mapping),
                             label_selector=self.label_selector, include_resources=self.include_resources,
                             exclude_resources=self.exclude_resources, concurrency=self.concurrency,
                             timeout=self.timeout)


@dataclass
class MigrateListener:
    """Progress callbacks (the CLI logs them; the Ansible module ignores them)."""

    phase: Callable[[str], None] = lambda message: None
    imported: ImportListener = field(default_factory=ImportListener)


@dataclass
class Paused:
    """One object a rule pauses: where it is in A, where its copy lands in B, what to restore."""

    rule: PauseRule
    resource: ApiResource
    source: ObjectId
    target: ObjectId
    #: Whether the path held a value before the migration, and which.
    present: bool = False
    original: Any = None
    #: False when it already had the paused value: then it is not unpaused either.
    by_us: bool = True
    #: Where it was unpaused in the end ("source", "target"), or "" when it was not.
    unpaused_in: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.source.group, "version": self.resource.version, "resource": self.source.resource,
                "kind": self.resource.kind, "namespaced": self.resource.namespaced,
                "namespace": self.source.namespace, "name": self.source.name,
                "targetNamespace": self.target.namespace, "targetName": self.target.name,
                "path": "/" + "/".join(self.rule.path), "value": self.rule.value,
                "present": self.present, "original": self.original, "byUs": self.by_us,
                "unpausedIn": self.unpaused_in or None}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Paused:
        resource = ApiResource(group=str(doc["group"]), version=str(doc["version"]), resource=str(doc["resource"]),
                               kind=str(doc["kind"]), namespaced=bool(doc["namespaced"]))
        rule = PauseRule(resource.group, resource.kind, parse_path(str(doc["path"])), doc["value"])
        return cls(rule, resource, ObjectId(resource.group, resource.resource, doc["namespace"], str(doc["name"])),
                   ObjectId(resource.group, resource.resource, doc["targetNamespace"], str(doc["targetName"])),
                   bool(doc["present"]), doc["original"], bool(doc.get("byUs", True)))


@dataclass
class LeftBehind:
    """An object that stays in A, and why."""

    id: ObjectId
    kind: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.id.group, "resource": self.id.resource, "kind": self.kind,
                "namespace": self.id.namespace, "name": self.id.name, "reason": self.reason}


@dataclass
class MigrateReport:
    source: str
    target: str
    move: bool
    dry_run: bool
    plan: Plan | None = None
    imported: ImportReport | None = None
    paused: list[Paused] = field(default_factory=list)
    #: Objects that carried the block-move annotation and were waited for.
    waited: list[ObjectId] = field(default_factory=list)
    deleted: list[ObjectId] = field(default_factory=list)
    left_behind: list[LeftBehind] = field(default_factory=list)
    #: (reason, group, resource) -> objects of A export never copies (derived by the cluster).
    skipped: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: Pauses of an earlier, killed run that this run undid first.
    recovered: list[Paused] = field(default_factory=list)
    #: What stopped the migration (after the first pause), if anything did.
    error: str = ""
    #: Stopped by Ctrl-C or SIGTERM (then `error` says so too).
    interrupted: bool = False
    #: Problems that did not stop it: a delete or an unpause that failed.
    problems: list[str] = field(default_factory=list)
    kept: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """True unless every selected object was moved (or, in a dry run, nothing is wrong)."""
        if self.error or self.problems:
            return True
        if self.imported is None:
            return False
        return any(r.outcome not in _MOVED for r in self.imported.results)

    def in_target(self) -> list[dict[str, Any]]:
        """Every planned object with its outcome and whether it exists in B now."""
        if self.imported is None:
            return []
        out = []
        for result in self.imported.results:
            item = result.to_dict()
            item["existsInTarget"] = result.outcome in _MOVED or result.uid is not None
            out.append(item)
        return out

    def to_dict(self) -> dict[str, Any]:
        moved = [r for r in (self.imported.results if self.imported else []) if r.outcome in _MOVED]
        not_moved = [r for r in (self.imported.results if self.imported else []) if r.outcome not in _MOVED]
        return {
            "kind": "MigrateReport",
            "source": self.source,
            "target": self.target,
            "move": self.move,
            "dryRun": self.dry_run,
            "result": "dry-run" if self.dry_run and not self.error else ("failed" if self.failed else "succeeded"),
            "error": self.error or None,
            "interrupted": self.interrupted,
            "problems": list(self.problems),
            "summary": {"planned": len(self.plan) if self.plan else 0, "moved": len(moved),
                        "notMoved": len(not_moved), "deletedFromSource": len(self.deleted),
                        "leftBehind": len(self.left_behind), "paused": len(self.paused),
                        "filteredOut": self.plan.filtered if self.plan else 0},
            "paused": [p.to_dict() for p in self.paused],
            "recoveredPauses": [p.to_dict() for p in self.recovered],
            "waitedForBlockMove": [str(i) for i in self.waited],
            "plan": self.plan.to_dict() if self.plan and self.dry_run else None,
            "objects": self.in_target(),
            "deletedFromSource": [str(i) for i in self.deleted],
            "leftBehind": [item.to_dict() for item in self.left_behind],
            "skippedByExport": [{"reason": reason, "group": group, "resource": resource, "count": count}
                                for (reason, group, resource), count in sorted(self.skipped.items())],
            "archive": self.kept,
            "seconds": round(self.seconds, 3),
        }


# --- the journal of pauses ---------------------------------------------------------------------


def default_journal_path(source_server: str, target_server: str, environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/kubectl-state/migrations/<key>.json, keyed by both clusters, so that
    rerunning the same migration finds what a killed run paused."""
    base = environ.get("XDG_STATE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"),
                                                         ".local", "state")
    key = hashlib.sha256(f"{source_server}\n{target_server}".encode()).hexdigest()[:32]
    return Path(base) / "kubectl-state" / "migrations" / f"{key}.json"


class _Journal:
    """The pauses not yet undone, rewritten whole (temp file, fsync, rename) on each change:
    a handful of objects, and a kill must never leave a half-written file."""

    def __init__(self, path: Path, source: str, target: str) -> None:
        self.path = path
        self.source = source
        self.target = target

    def read(self) -> list[Paused]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot read the migration journal {self.path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("kind") != JOURNAL_KIND:
            raise InvalidInputError(f"{self.path} is not a migration journal")
        if (doc.get("source"), doc.get("target")) != (self.source, self.target):
            raise UsageError(f"the migration journal {self.path} belongs to a migration from {doc.get('source')} "
                             f"to {doc.get('target')}; use another --journal for this one")
        try:
            return [Paused.from_dict(item) for item in doc.get("paused") or ()]
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise InvalidInputError(f"the migration journal {self.path} is damaged: {exc}") from None

    def write(self, paused: Iterable[Paused]) -> None:
        doc = {"kind": JOURNAL_KIND, "source": self.source, "target": self.target,
               "paused": [p.to_dict() for p in paused if p.by_us and not p.unpaused_in]}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".migrate-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(doc, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# --- the run -----------------------------------------------------------------------------------


class _Migration:
    def __init__(self, source: KubeClient, target: KubeClient, options: MigrateOptions,
                 listener: MigrateListener) -> None:
        self.a = source
        self.b = target
        self.options = options
        self.listener = listener
        self.report = MigrateReport(source.server, target.server, options.move, options.dry_run)
        self.journal = _Journal(options.journal, source.server, target.server) if options.journal else None
        self.deadline = 0.0

    # --- reading A ---------------------------------------------------------------------------

    def export(self, discovery: Discovery) -> tuple[ImportSource, MemorySink]:
        export_options = ExportOptions(namespaces=self.options.namespaces, concurrency=self.options.concurrency)
        sink = MemorySink()
        with sink:
            export_cluster(self.a, sink, export_options, discovery=discovery)
        return sink.source(f"cluster {self.a.server}"), sink

    def export_kept(self, discovery: Discovery, path: str) -> tuple[ImportSource, MemorySink]:
        """--keep: the export goes into an archive, and the import reads it back (verified)."""
        export_options = ExportOptions(namespaces=self.options.namespaces, concurrency=self.options.concurrency)
        version = self.a.server_version().get("gitVersion", "")
        writer = open_archive_writer(path, source=Source(server=self.a.server, kubernetes_version=version),
                                     filters=export_options.filters())
        with writer:
            export_cluster(self.a, writer, export_options, discovery=discovery)
        self.report.kept = path
        # Skip counts live in the archive's manifest; the memory sink only serves the report.
        return read_archive(path), MemorySink()

    # --- pausing -----------------------------------------------------------------------------

    def pause_targets(self, plan: Plan) -> list[Paused]:
        found = []
        for obj in plan.objects():
            for rule in self.options.pause_rules:
                if (obj.resource.group, obj.kind) == (rule.group, rule.kind):
                    present, value = _lookup(obj.obj, rule.path)
                    found.append(Paused(rule, obj.resource, obj.source, obj.id, present, value,
                                        by_us=not (present and value == rule.value)))
        return found

    def pause(self, targets: list[Paused]) -> None:
        for item in targets:
            live = self.get(self.a, item.resource, item.source)
            if live is None:
                continue  # gone since the export: nothing to pause, and not in the next export
            present, value = _lookup(live, item.rule.path)
            item.present, item.original = present, value
            item.by_us = not (present and value == item.rule.value)
            self.report.paused.append(item)
            if not item.by_us:
                continue
            if self.journal is not None:
                self.journal.write(self.report.paused)  # before the patch: a kill after it must find it
            self.listener.phase(f"pausing {item.resource.kind} {_where(item.source)}")
            self.patch(self.a, item.resource, item.source, _merge_patch(item.rule.path, item.rule.value))

    def unpause_all(self) -> None:
        """Every pause of this run undone, where the object now lives. Never raises: an
        unpause that fails is a problem in the report (and stays in the journal)."""
        deleted = set(self.report.deleted)
        for item in self.report.paused:
            if not item.by_us or item.unpaused_in:
                continue
            moved_out = item.source in deleted
            self.unpause(item, in_target=moved_out)
        self.finish_journal()

    def unpause(self, item: Paused, *, in_target: bool) -> None:
        kube, where = (self.b, item.target) if in_target else (self.a, item.source)
        patch = _merge_patch(item.rule.path, item.original if item.present else None)
        try:
            self.patch(kube, item.resource, where, patch)
        except ApiError as exc:
            if exc.code != 404:
                self.report.problems.append(f"cannot unpause {item.resource.kind} {_where(where)} in "
                                            f"{kube.server}: {exc.message}")
                return
        except KubectlStateError as exc:
            self.report.problems.append(f"cannot unpause {item.resource.kind} {_where(where)} in "
                                        f"{kube.server}: {exc.message}")
            return
        item.unpaused_in = "target" if in_target else "source"
        self.listener.phase(f"unpaused {item.resource.kind} {_where(where)} in the "
                            f"{'target' if in_target else 'source'}")

    def finish_journal(self) -> None:
        if self.journal is None:
            return
        left = [p for p in [*self.report.recovered, *self.report.paused] if p.by_us and not p.unpaused_in]
        if left:
            self.journal.write(left)
        else:
            self.journal.remove()

    def recover(self) -> None:
        """Undo the pauses a killed run left: in A when the object is still there, else on
        its copy in B (a move that got as far as deleting it)."""
        if self.journal is None:
            return
        for item in self.journal.read():
            in_source = self.get(self.a, item.resource, item.source) is not None
            self.listener.phase(f"undoing the pause of {item.resource.kind} {_where(item.source)} left by an "
                                "interrupted migration")
            self.unpause(item, in_target=not in_source)
            self.report.recovered.append(item)
        self.finish_journal()

    # --- waiting for block-move ------------------------------------------------------------------

    def wait_unblocked(self, plan: Plan) -> None:
        blocked = [obj for obj in plan.objects() if BLOCK_MOVE_ANNOTATION in _annotations(obj.obj)]
        for obj in blocked:
            if obj.source not in self.report.waited:
                self.report.waited.append(obj.source)
        delay = self.options.poll_interval
        while blocked:
            self.listener.phase("waiting for the block-move annotation to go from "
                                + ", ".join(f"{o.kind} {_where(o.source)}" for o in blocked))
            blocked = [obj for obj in blocked if BLOCK_MOVE_ANNOTATION in _annotations(
                self.get(self.a, obj.resource, obj.source) or {})]
            if not blocked:
                return
            if time.monotonic() > self.deadline:
                names = ", ".join(f"{o.kind} {_where(o.source)}" for o in blocked)
                raise OperationTimeout(f"{names} still carries the {BLOCK_MOVE_ANNOTATION} annotation after "
                                       f"{self.options.timeout:g}s; nothing was copied")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    # --- deleting from A -----------------------------------------------------------------------

    def delete_moved(self, plan: Plan, source: ImportSource, imported: ImportReport, discovery: Discovery) -> None:
        planned_ids = {obj.source for obj in plan.objects()}
        not_moved = [item for item in source.inputs if item.source not in planned_ids]
        # A Namespace is deleted only when it holds nothing the migration left in A.
        kept_namespaces = {item.source.namespace for item in not_moved if item.source.namespace is not None}
        # Owners of objects left in A are deleted without their dependents (the garbage
        # collector would otherwise delete what the filters kept).
        orphan_owners = {str(ref.get("uid")) for item in not_moved
                         for ref in (item.obj.get("metadata") or {}).get("ownerReferences") or ()
                         if isinstance(ref, Mapping)}
        results = {r.id: r for r in imported.results}
        for obj in reversed(plan.objects()):
            result = results.get(obj.id)
            if result is None or result.outcome not in _MOVED:
                continue
            why = self.keep_reason(obj, kept_namespaces, discovery)
            if why:
                self.report.left_behind.append(LeftBehind(obj.source, obj.kind, why))
                continue
            try:
                self.delete_one(obj, orphan=obj.old_uid in orphan_owners)
            except KubectlStateError as exc:
                self.report.problems.append(f"cannot delete {obj.kind} {_where(obj.source)} from the source: "
                                            f"{exc.message}")
                self.report.left_behind.append(LeftBehind(obj.source, obj.kind, f"delete failed: {exc.message}"))
                continue
            self.report.deleted.append(obj.source)

    def keep_reason(self, obj: PlannedObject, kept_namespaces: set[str], discovery: Discovery) -> str:
        key = (obj.source.group, obj.source.resource)
        if key == _NAMESPACES:
            if obj.source.name in kept_namespaces:
                return "copied; the namespace still holds objects that were not moved"
            return ""
        if key == _CRDS:
            left = self.instances_left(obj, discovery)
            return f"copied; {left} still has objects that were not moved" if left else ""
        if obj.source.namespace is None and self.options.namespaces:
            return "copied; cluster-scoped and possibly used by namespaces that were not moved"
        return ""

    def instances_left(self, crd: PlannedObject, discovery: Discovery) -> str:
        spec = crd.obj.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural")
        resource = next((r for r in discovery.resources if (r.group, r.resource) == (spec.get("group"), plural)),
                        None)
        if resource is None:
            return ""
        page = self.a.get(resource.collection_path(None), params={"limit": 1})
        return resource.qualified_name if page.get("items") else ""

    def delete_one(self, obj: PlannedObject, *, orphan: bool) -> None:
        live = self.get(self.a, obj.resource, obj.source)
        if live is None:
            return
        if (live.get("metadata") or {}).get("finalizers"):
            # Only objects being moved lose their finalizers: the controllers that would
            # finish them are paused or now run against B.
            self.patch(self.a, obj.resource, obj.source, {"metadata": {"finalizers": []}})
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if orphan:
            body["propagationPolicy"] = "Orphan"
        try:
            self.a.request("DELETE", obj.resource.object_path(obj.source.name, obj.source.namespace), body=body)
        except ApiError as exc:
            if exc.code != 404:
                raise
        self.listener.phase(f"deleted {obj.kind} {_where(obj.source)} from the source")

    # --- requests ------------------------------------------------------------------------------

    def get(self, kube: KubeClient, resource: ApiResource, where: ObjectId) -> dict[str, Any] | None:
        try:
            return kube.get(resource.object_path(where.name, where.namespace))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def patch(self, kube: KubeClient, resource: ApiResource, where: ObjectId, patch: Mapping[str, Any]) -> None:
        kube.request("PATCH", resource.object_path(where.name, where.namespace), body=dict(patch),
                     content_type=_MERGE_PATCH, params={"fieldManager": "kubectl-state"})

    # --- the whole run -------------------------------------------------------------------------

    def run(self) -> MigrateReport:
        started = time.monotonic()
        options = self.options
        report = self.report
        if not options.dry_run:
            self.recover()
        self.listener.phase(f"exporting from {self.a.server}")
        discovery_a = discover(self.a, concurrency=options.concurrency)
        discovery_b = discover(self.b, concurrency=options.concurrency)
        source, sink = self.export(discovery_a)
        plan = plan_import(source, options.import_options(), discovery_b)
        report.plan, report.skipped = plan, dict(sink.skipped)
        self.note_filtered(plan, source)
        if options.dry_run:
            report.paused = self.pause_targets(plan)
            report.waited = [o.source for o in plan.objects() if BLOCK_MOVE_ANNOTATION in _annotations(o.obj)]
            report.seconds = time.monotonic() - started
            return report
        self.deadline = time.monotonic() + options.timeout
        try:
            self.pause(self.pause_targets(plan))
            self.wait_unblocked(plan)
            self.copy(discovery_a, discovery_b)
        except KubectlStateError as exc:
            report.error = exc.message
            report.interrupted = exc.exit_status == ExitStatus.INTERRUPTED
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM (the CLI turns it into this) outside the import: the report
            # still says what exists in B, and the finally unpauses A.
            report.error = "interrupted"
            report.interrupted = True
        finally:
            self.unpause_all()
            report.seconds = time.monotonic() - started
        return report

    def copy(self, discovery_a: Discovery, discovery_b: Discovery) -> None:
        """Export A again (paused, unblocked), import into B, and with --move delete from A."""
        options, report = self.options, self.report
        # Copied once paused and unblocked: the copies are what the paused controllers left.
        while True:
            self.listener.phase("copying")
            source, sink = self.export_kept(discovery_a, options.keep) if options.keep else self.export(discovery_a)
            plan = plan_import(source, options.import_options(), discovery_b)
            blocked = any(BLOCK_MOVE_ANNOTATION in _annotations(o.obj) for o in plan.objects())
            if not blocked:
                break
            if options.keep:
                raise KubectlStateError(f"an object carried the {BLOCK_MOVE_ANNOTATION} annotation again when "
                                        "the archive was written; run it again")
            self.wait_unblocked(plan)  # annotated since the first look: wait, then read again
        paused = {q.source for q in report.paused}
        missed = [p for p in self.pause_targets(plan) if p.by_us and p.source not in paused]
        if missed:
            raise KubectlStateError("objects to pause appeared during the migration: "
                                    + ", ".join(f"{p.resource.kind} {_where(p.source)}" for p in missed)
                                    + "; run it again")
        report.plan, report.skipped = plan, dict(sink.skipped) or report.skipped
        report.left_behind.clear()
        self.note_filtered(plan, source)
        self.listener.phase(f"importing {len(plan)} objects into {self.b.server}")
        try:
            imported = import_plan(self.b, discovery_b, plan, options.import_options(), source=source,
                                   listener=self.listener.imported)
        except (ImportStopped, ImportInterrupted) as stopped:
            report.imported = stopped.report  # what exists in B so far, object by object
            raise
        report.imported = imported
        sources = {o.id: o.source for o in plan.objects()}
        failed = [r for r in imported.results if r.outcome not in _MOVED]
        for result in failed:
            why = f"not moved: {result.outcome}" + (f": {result.reason}" if result.reason else "")
            report.left_behind.append(LeftBehind(sources[result.id], result.kind, why))
        if not options.move:
            return
        if failed:
            report.error = f"{len(failed)} of {len(plan)} objects were not moved; nothing was deleted from the source"
            return
        self.listener.phase(f"deleting {len(plan)} moved objects from {self.a.server}")
        self.delete_moved(plan, source, imported, discovery_a)

    def note_filtered(self, plan: Plan, source: ImportSource) -> None:
        planned = {obj.source for obj in plan.objects()}
        for item in source.inputs:
            if item.source not in planned:
                self.report.left_behind.append(LeftBehind(item.source, item.resource.kind,
                                                          "filtered out (-l, --include-resources, "
                                                          "--exclude-resources)"))


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    found = (obj.get("metadata") or {}).get("annotations")
    return found if isinstance(found, Mapping) else {}


def _where(where: ObjectId) -> str:
    return f"{where.namespace}/{where.name}" if where.namespace else where.name


def migrate(source: KubeClient, target: KubeClient, options: MigrateOptions,
            listener: MigrateListener | None = None) -> MigrateReport:
    """Migrate from `source` into `target` as the module docstring describes. Raises for
    what is wrong before anything was touched (options, filters, an unreachable cluster, a
    damaged journal); afterwards every failure ends in the returned report, A unpaused."""
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if options.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if source.server == target.server:
        raise UsageError(f"the source and the target are the same API server ({source.server})")
    return _Migration(source, target, options, listener or MigrateListener()).run()


__all__ = [
    "BLOCK_MOVE_ANNOTATION",
    "DEFAULT_PAUSE_RULES",
    "LeftBehind",
    "MigrateListener",
    "MigrateOptions",
    "MigrateReport",
    "PauseRule",
    "Paused",
    "default_journal_path",
    "migrate",
    "parse_path",
    "parse_pause_rules",
]
