"""Import: an archive's objects written into a cluster, in plan order, each one reported.

The steps: read and verify the whole archive (source.py; nothing is written if any part
fails), build the plan (core.plan), then run it step by step, the objects of one step in
parallel. For each object:
- owner references are relinked to the owners' uids in the target: owners this import
  wrote or found (the old->new uid map, fed as results come in and from the journal), or
  owners outside the archive already in the cluster, looked up by kind/namespace/name. A
  reference to an owner found nowhere fails the object, unless --orphan-missing-owners,
  which restores it without that reference (a stale uid would get it garbage-collected);
- it is created (POST, field manager kubectl-state). If it exists: read back, compared
  cleaned with the archive's version (or, when only kubectl-state wrote it, with what a
  dry-run server-side apply of that version gives, so server defaults do not count as a
  difference), and then unchanged, skipped (exists), updated by server-side apply, or
  failed, as --existing says;
- its status goes through the status subresource when asked (--include-status);
- the outcome and the new uid are journaled as soon as the server answered.
After the CRD tier the import waits for every CRD to be Established (and its resource to be
served) and refreshes discovery; custom resources of a CRD that did not get there fail with
that reason. Nothing stops at the first failure, and every planned object is reported.

Resume: objects the journal records as done are not written again (their journaled outcome
is reported, marked resumed); their uids seed the uid map. An object written by a killed run
but not journaled answers AlreadyExists; it counts as created by this import (not as
"unchanged") only if its content matches (as above) and its managedFields and
creationTimestamp show kubectl-state created it after the journal began. Either way the
cluster ends as after an uninterrupted import: creates are by name, so nothing is created
twice. Each object is journaled by its worker as soon as the server answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from kubectl_state.core.errors import ApiError, ConnectionFailed, Interrupted, KubectlStateError, UsageError
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import ApiResource, Discovery
from kubectl_state.core.plan import (
    ImportReport,
    ObjectId,
    ObjectResult,
    Outcome,
    Plan,
    PlannedObject,
    Selection,
    Step,
    TierTable,
    build_plan,
    select,
)
from kubectl_state.core.plan.tiers import qualified
from kubectl_state.core.transform.namespaces import check_mapping_targets
from kubectl_state.core.transform.owners import relink_owner_references
from kubectl_state.core.transform.selectors import parse_label_selector
from kubectl_state.core.workflows.restore.journal import Journal
from kubectl_state.core.workflows.restore.source import ImportSource
from kubectl_state.core.workflows.restore.target import FIELD_MANAGER, Target, Tries, comparable

DryRun = Literal["none", "client", "server"]
Existing = Literal["skip", "update", "fail"]
_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


@dataclass(frozen=True)
class ImportOptions:
    dry_run: DryRun = "none"
    existing: Existing = "skip"
    force_conflicts: bool = False
    namespace_mapping: Mapping[str, str] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()
    label_selector: str | None = None
    include_resources: tuple[str, ...] = ()
    exclude_resources: tuple[str, ...] = ()
    include_status: bool = False
    concurrency: int = 8
    resume: bool = False
    #: Seconds to wait for CRDs to become Established.
    timeout: float = 300.0
    orphan_missing_owners: bool = False
    tiers: TierTable | None = None
    retries: int = 6

    def __post_init__(self) -> None:
        # Checked here, so the CLI, the Ansible module and migrate all refuse it alike.
        if self.force_conflicts and self.existing != "update":
            raise UsageError("force-conflicts only applies when existing objects are updated (existing=update)")


@dataclass
class ImportListener:
    """Callbacks on the import's progress; `done` is called from the worker threads."""

    planned: Callable[[Plan], None] = lambda plan: None
    step: Callable[[Step], None] = lambda step: None
    done: Callable[[ObjectResult], None] = lambda result: None


def plan_import(source: ImportSource, options: ImportOptions, discovery: Discovery | None = None) -> Plan:
    """The plan for `source` under `options` (filters, mapping, tiers); no request is made."""
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    check_mapping_targets(options.namespace_mapping, source.namespaces())
    selection = Selection(
        namespaces=frozenset(options.namespaces),
        selector=parse_label_selector(options.label_selector) if options.label_selector else None,
        include=resolve_resources(source, options.include_resources, discovery) if options.include_resources
        else None,
        exclude=resolve_resources(source, options.exclude_resources, discovery),
    )
    kept, filtered = select(source.inputs, selection)
    return build_plan(kept, tiers=options.tiers, namespace_mapping=options.namespace_mapping, filtered=filtered)


def resolve_resources(source: ImportSource, names: Iterable[str], discovery: Discovery | None) -> frozenset[
        tuple[str, str]]:
    """(group, resource) for names as kubectl takes them (plural, singular, kind, short name,
    `.group`-qualified), against the archive's resources first, then the target's discovery."""
    archived = {(i.resource.group, i.resource.resource): i.resource for i in source.inputs}
    found: set[tuple[str, str]] = set()
    for raw in names:
        for name in (part.strip().lower() for part in raw.split(",")):
            if not name:
                continue
            matches = {key for key, res in archived.items()
                       if name in (res.resource, res.kind.lower(), qualified(res.resource, res.group),
                                   res.singular)}
            if not matches and discovery is not None:
                matches = {(r.group, r.resource) for r in discovery.match(name)[:1]}
            if not matches:
                raise UsageError(f'neither the archive nor the server has a resource type "{name}"')
            found.update(matches)
    return frozenset(found)


class _Import:
    """One run's shared state; worker threads touch it through `register` only."""

    def __init__(self, target: Target, plan: Plan, options: ImportOptions, report: ImportReport, *,
                 journal: Journal | None, listener: ImportListener) -> None:
        self.target = target
        self.plan = plan
        self.options = options
        self.report = report
        self.journal = journal
        self.listener = listener
        self.dry = options.dry_run == "server"
        self.lock = threading.Lock()
        self.uid_map: dict[str, str] = {}
        self.results: dict[ObjectId, ObjectResult] = {}
        self.by_old_uid = {obj.old_uid: obj for obj in plan.objects() if obj.old_uid}
        #: (group, plural) of CRDs in the plan -> why their objects cannot be written.
        self.crd_problems: dict[tuple[str, str], tuple[Outcome, str]] = {}
        #: Objects written before this instant (minus clock skew) cannot be this import's.
        self.not_before = (journal.first_started if journal else time.time()) - 2.0

    # --- the run -------------------------------------------------------------------------

    def run(self) -> None:
        crd_wait_done = False
        with ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="import") as pool:
            for step in self.plan.steps:
                if step.tier > 0 and not crd_wait_done:
                    self.settle_crds()
                    crd_wait_done = True
                self.listener.step(step)
                todo: list[PlannedObject] = []
                for obj in step.objects:
                    entry = self.journal.entry(obj.id) if self.journal and self.options.resume else None
                    if entry is not None and entry.outcome is not Outcome.FAILED:
                        self.register(obj, ObjectResult(obj.id, obj.kind, entry.outcome, entry.reason, entry.uid,
                                                        obj.source.namespace, resumed=True), journal=False)
                    else:
                        todo.append(obj)
                # Each worker journals its object as soon as the server answered, not in plan
                # order: a kill then leaves as few written-but-unjournaled objects as possible.
                try:
                    for _ in pool.map(lambda obj: self.register(obj, self.restore(obj)), todo):
                        pass
                except (ConnectionFailed, KeyboardInterrupt):
                    # Objects not started yet are dropped; those in flight finish their tries.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise

    def register(self, obj: PlannedObject, result: ObjectResult, *, journal: bool = True) -> None:
        if journal and self.journal is not None:
            self.journal.record(result)
        with self.lock:
            self.results[obj.id] = result
            if obj.old_uid and result.uid:
                self.uid_map[obj.old_uid] = result.uid
        self.report.add(result)
        self.listener.done(result)

    def settle_crds(self) -> None:
        """After the CRD tier: wait for the CRDs, then note why a custom resource cannot be
        written when its CRD is not there."""
        crds = [obj for obj in self.plan.objects() if (obj.id.group, obj.id.resource) == _CRDS]
        waiting: list[str] = []
        for crd in crds:
            spec = crd.obj.get("spec") or {}
            key = (str(spec.get("group")), str((spec.get("names") or {}).get("plural")))
            result = self.results.get(crd.id)
            if result is None or result.outcome is Outcome.FAILED:
                why = result.reason if result else "not restored"
                self.crd_problems[key] = (Outcome.FAILED, f"its CustomResourceDefinition {crd.id.name} was not "
                                                          f"restored: {why}")
            elif self.dry and result.outcome is Outcome.CREATED:
                self.crd_problems[key] = (Outcome.SKIPPED, f"dry run: its CustomResourceDefinition {crd.id.name} "
                                                           "is created by this import, so the server cannot "
                                                           "check it yet")
            else:
                waiting.append(crd.id.name)
        problems = self.target.wait_for_crds(waiting, self.options.timeout)
        for crd in crds:
            if crd.id.name in problems:
                spec = crd.obj.get("spec") or {}
                key = (str(spec.get("group")), str((spec.get("names") or {}).get("plural")))
                self.crd_problems[key] = (Outcome.FAILED, f"its CustomResourceDefinition {crd.id.name} is "
                                                          f"{problems[crd.id.name]}")
        if crds and not waiting:
            self.target.refresh()

    # --- one object ----------------------------------------------------------------------

    def restore(self, obj: PlannedObject) -> ObjectResult:
        tries = Tries()
        try:
            return self._restore(obj, tries)
        except ApiError as exc:
            return self.result(obj, Outcome.FAILED, exc.message, status_reason=exc.reason, tries=tries)
        except ConnectionFailed:
            # Retries are spent and the server is gone: every object left would wait out the
            # same retries, one after another. Stop; the journal has what was done, and
            # --resume continues from there (this object included: it is not journaled).
            raise
        except KubectlStateError as exc:
            return self.result(obj, Outcome.FAILED, exc.message, tries=tries)

    def result(self, obj: PlannedObject, outcome: Outcome, reason: str = "", *, uid: str | None = None,
               status_reason: str = "", tries: Tries | None = None) -> ObjectResult:
        return ObjectResult(obj.id, obj.kind, outcome, reason, uid, obj.source.namespace, status_reason,
                            max(1, tries.attempts if tries else 1))

    def _restore(self, obj: PlannedObject, tries: Tries) -> ObjectResult:
        problem = self.crd_problems.get((obj.resource.group, obj.resource.resource))
        if problem is not None:
            return self.result(obj, problem[0], problem[1])
        served = self.target.served(obj.resource)
        if not obj.resolved or served is None:
            return self.result(obj, Outcome.FAILED, f"the server does not serve {obj.kind} in "
                                                    f"{obj.resource.api_version}")
        body, notes, failure = self.relink(obj)
        if failure:
            return self.result(obj, Outcome.FAILED, failure)
        status = body.get("status") if self.options.include_status else None
        status_subresource = "status" in served.subresources
        if status_subresource or not self.options.include_status:
            body.pop("status", None)
        try:
            created = self.target.create(obj.resource, obj.id.namespace, body, tries)
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return self.existing(obj, body, status if status_subresource else None, notes, tries)
            if self.dry and exc.code == 404 and self.namespace_created_here(obj, exc):
                return self.result(obj, Outcome.CREATED, _join(notes, "dry run: its namespace is created by "
                                                                      "this import, so the server cannot check it "
                                                                      "yet"), tries=tries)
            raise
        uid = _uid(created)
        if status is not None and status_subresource:
            notes = _join(notes, self.write_status(obj, created, status))
        return self.result(obj, Outcome.CREATED, notes, uid=uid, tries=tries)

    def namespace_created_here(self, obj: PlannedObject, exc: ApiError) -> bool:
        details = exc.status.get("details") or {}
        if details.get("kind") != "namespaces" or obj.id.namespace is None:
            return False
        result = self.results.get(ObjectId("", "namespaces", None, obj.id.namespace))
        return result is not None and result.outcome is Outcome.CREATED

    def relink(self, obj: PlannedObject) -> tuple[dict[str, Any], str, str]:
        """(body with owner uids of the target, notes, failure reason or "")."""
        refs = (obj.obj.get("metadata") or {}).get("ownerReferences") or []
        if not refs:
            return dict(obj.obj), "", ""
        uid_map: dict[str, str] = {}
        for ref in refs:
            if not isinstance(ref, Mapping) or not isinstance(ref.get("uid"), str):
                continue
            old = ref["uid"]
            with self.lock:
                known = self.uid_map.get(old)
            if known is not None:
                uid_map[old] = known
                continue
            owner = self.by_old_uid.get(old)
            if owner is not None:
                result = self.results.get(owner.id)
                if self.dry and result is not None and result.outcome is not Outcome.FAILED:
                    # A dry run that could not even dry-run the owner (its namespace does not
                    # exist yet) has no uid for it; the server checks nothing about the uid.
                    uid_map[old] = old
                    continue
                why = f"{result.outcome}: {result.reason}" if result else "not restored"
                return {}, "", f"its owner {owner.id} was not restored ({why})"
            namespace = obj.id.namespace
            found = self.target.owner_uid(str(ref.get("apiVersion")), str(ref.get("kind")), namespace,
                                          str(ref.get("name")))
            if found is not None:
                uid_map[old] = found
        body, missing = relink_owner_references(obj.obj, uid_map, drop_missing=True)
        if not missing:
            return body, "", ""
        names = ", ".join(f"{m.kind} {m.name}" for m in missing)
        if not self.options.orphan_missing_owners:
            return {}, "", (f"its owner {names} is neither in the import nor in the cluster "
                            "(--orphan-missing-owners restores it without that owner reference)")
        return body, f"restored without its owner reference to {names} (not found)", ""

    def existing(self, obj: PlannedObject, body: dict[str, Any], status: Any, notes: str,
                 tries: Tries) -> ObjectResult:
        live = self.target.get(obj.resource, obj.id.namespace, obj.id.name, tries)
        if live is None:
            return self.result(obj, Outcome.FAILED, "it exists, and was deleted while it was being read back",
                               status_reason="AlreadyExists", tries=tries)
        uid = _uid(live)
        include_status = self.options.include_status
        wanted = comparable(body if status is None else {**body, "status": status}, obj.resource,
                            include_status=include_status)
        current = comparable(live, obj.resource, include_status=include_status)
        same = current == wanted or (current.get("status") == wanted.get("status") and self.target.stored_as_is(
            obj.resource, obj.id.namespace, obj.id.name, body, live))
        if same and (tries.ambiguous or self.options.resume) and self.created_by_us(live):
            why = "an earlier attempt's create reached the server" if tries.ambiguous else \
                "created by the interrupted run"
            return self.result(obj, Outcome.CREATED, _join(notes, why), uid=uid, tries=tries)
        if same:
            return self.result(obj, Outcome.UNCHANGED, notes, uid=uid, tries=tries)
        if self.options.existing == "skip":
            return self.result(obj, Outcome.SKIPPED, _join(notes, "exists (and differs; --existing=update "
                                                                  "applies the archive's version)"),
                               uid=uid, tries=tries)
        if self.options.existing == "fail":
            return self.result(obj, Outcome.FAILED, _join(notes, "already exists (--existing=fail)"),
                               uid=uid, status_reason="AlreadyExists", tries=tries)
        return self.update(obj, body, status, notes=notes, tries=tries, live=live)

    def update(self, obj: PlannedObject, body: dict[str, Any], status: Any, *, notes: str, tries: Tries,
               live: Mapping[str, Any]) -> ObjectResult:
        """--existing=update: server-side apply of the archive's version over the live object."""
        uid = _uid(live)
        include_status = self.options.include_status
        try:
            applied = self.target.apply(obj.resource, obj.id.namespace, obj.id.name, body, tries,
                                        force=self.options.force_conflicts)
        except ApiError as exc:
            hint = " (--force-conflicts takes the fields over)" if exc.code == 409 and exc.reason == "Conflict" else ""
            # The object exists all the same: its uid still serves its dependents.
            return self.result(obj, Outcome.FAILED, _join(notes, exc.message + hint), uid=uid,
                               status_reason=exc.reason, tries=tries)
        if status is not None:
            notes = _join(notes, self.write_status(obj, applied, status))
        changed = comparable(applied, obj.resource, include_status=include_status) != comparable(
            live, obj.resource, include_status=include_status)
        return self.result(obj, Outcome.UPDATED if changed else Outcome.UNCHANGED, notes, uid=uid, tries=tries)

    def created_by_us(self, live: Mapping[str, Any]) -> bool:
        metadata = live.get("metadata") or {}
        created = metadata.get("creationTimestamp")
        try:
            when = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        managers = metadata.get("managedFields") or []
        return when >= self.not_before and any(
            isinstance(m, Mapping) and m.get("manager") == FIELD_MANAGER for m in managers)

    def write_status(self, obj: PlannedObject, written: Mapping[str, Any], status: Any) -> str:
        """Status through its subresource; a note when it could not be written."""
        if self.dry:
            return "dry run: status would be written through the status subresource"
        metadata: dict[str, Any] = {"name": obj.id.name}
        if obj.id.namespace is not None:
            metadata["namespace"] = obj.id.namespace
        patch = {"apiVersion": written.get("apiVersion") or obj.resource.api_version, "kind": obj.kind,
                 "metadata": metadata, "status": status}
        try:
            self.target.apply(obj.resource, obj.id.namespace, obj.id.name, patch, Tries(), force=True,
                              subresource="status")
        except KubectlStateError as exc:
            return f"status not written: {exc.message}"
        return ""


def _uid(obj: Mapping[str, Any]) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) else None


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _stopped_message(cause: str, report: ImportReport, planned: int) -> str:
    return f"{cause}; the import stopped after {len(report.results)} of {planned} objects (run it again with --resume)"


class ImportStopped(ConnectionFailed):
    """The server went away mid-import (retries spent). `report` holds every object finished
    before that, so callers can still say exactly what was written; --resume continues."""

    def __init__(self, cause: ConnectionFailed, report: ImportReport, planned: int) -> None:
        super().__init__(_stopped_message(cause.message, report, planned))
        self.report = report


class ImportInterrupted(Interrupted):
    """Ctrl-C or SIGTERM mid-import: the objects in flight finished, `report` holds every
    finished object (as ImportStopped's does), and --resume continues."""

    def __init__(self, report: ImportReport, planned: int) -> None:
        super().__init__(_stopped_message("interrupted", report, planned))
        self.report = report


def import_plan(
    kube: KubeClient,
    discovery: Discovery,
    plan: Plan,
    options: ImportOptions,
    *,
    source: ImportSource,
    journal_path: Path | None = None,
    journal_header: Mapping[str, Any] | None = None,
    listener: ImportListener | None = None,
) -> ImportReport:
    """Run `plan` against the cluster. The report lists every planned object; raising is kept
    for what stops the whole import (the journal cannot be written, the server is gone
    before the first write)."""
    if options.dry_run == "client":
        raise UsageError("a client-side dry run writes nothing: print the plan instead")
    started = time.monotonic()
    listener = listener or ImportListener()
    report = ImportReport(archive=source.description, server=kube.server, dry_run=options.dry_run,
                          filtered=plan.filtered)
    target = Target(kube, discovery, dry_run=options.dry_run == "server", retries=options.retries)
    journal: Journal | None = None
    if options.dry_run == "none" and journal_path is not None:
        journal = Journal.open(journal_path, journal_header or {}, resume=options.resume)
        report.journal = str(journal_path)
    listener.planned(plan)
    run = _Import(target, plan, options, report, journal=journal, listener=listener)
    stopped: ConnectionFailed | None = None
    interrupted = False
    try:
        run.run()
    except ConnectionFailed as exc:
        stopped = exc
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if journal is not None:
            journal.close()
    order = {obj.id: index for index, obj in enumerate(plan.objects())}
    report.results = sorted(run.results.values(), key=lambda r: order[r.id])
    report.seconds = time.monotonic() - started
    if stopped is not None:
        raise ImportStopped(stopped, report, len(plan)) from stopped
    if interrupted:
        raise ImportInterrupted(report, len(plan))
    return report


def journal_header(source: ImportSource, server: str, options: ImportOptions) -> dict[str, Any]:
    return {"archive": source.digest, "server": server,
            "namespaceMapping": dict(sorted(options.namespace_mapping.items()))}


def resource_of(discovery: Discovery, group: str, resource: str) -> ApiResource | None:
    return next((r for r in discovery.resources if (r.group, r.resource) == (group, resource)), None)
