"""The import report: one result per planned object, and the totals.

Every object of the plan ends here exactly once, as created, updated, unchanged, skipped
(with the reason) or failed (with the reason, the API Status message when the server gave
one). Objects the user's filters left out are counted, not listed.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any

from kubectl_state.core.plan.model import ObjectId


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(slots=True)
class ObjectResult:
    id: ObjectId
    kind: str
    outcome: Outcome
    reason: str = ""
    #: The object's uid in the target cluster, when it exists there (or would, in a dry run).
    uid: str | None = None
    source_namespace: str | None = None
    #: The API Status reason of a failure (AlreadyExists, Forbidden, Invalid, ...).
    status_reason: str = ""
    attempts: int = 1
    #: Taken from the journal of an earlier, interrupted run, not written by this one.
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.id.group,
            "resource": self.id.resource,
            "kind": self.kind,
            "namespace": self.id.namespace,
            "name": self.id.name,
            "outcome": str(self.outcome),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.status_reason:
            out["statusReason"] = self.status_reason
        if self.uid:
            out["uid"] = self.uid
        if self.source_namespace != self.id.namespace:
            out["sourceNamespace"] = self.source_namespace
        if self.attempts > 1:
            out["attempts"] = self.attempts
        if self.resumed:
            out["resumed"] = True
        return out


@dataclass
class ImportReport:
    archive: str
    server: str
    dry_run: str = "none"
    results: list[ObjectResult] = field(default_factory=list)
    filtered: int = 0
    journal: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: ObjectResult) -> None:
        with self._lock:
            self.results.append(result)

    def counts(self) -> dict[str, int]:
        counts = {str(outcome): 0 for outcome in Outcome}
        for result in self.results:
            counts[str(result.outcome)] += 1
        return counts

    @property
    def failed(self) -> list[ObjectResult]:
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "ImportReport",
            "archive": self.archive,
            "server": self.server,
            "dryRun": self.dry_run,
            "summary": {**self.counts(), "total": len(self.results), "filteredOut": self.filtered},
            "seconds": round(self.seconds, 3),
            "journal": self.journal,
            "warnings": list(self.warnings),
            "objects": [result.to_dict() for result in self.results],
        }
