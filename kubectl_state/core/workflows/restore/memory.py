"""An export held in memory as an import source: what `migrate` streams from one cluster
into another without an archive in between.

`MemorySink` is an ObjectSink (the exporter writes to it as to an archive); `source()`
turns what it received into the same ImportSource an archive gives, with the uids export
recorded, so the plan orders owners first and the import relinks owner references exactly
as for an archive. Everything is held until the import ends, as `read_archive` does: the
plan needs every object's owners before the first write.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from kubectl_state.core.archive.writer import object_identity
from kubectl_state.core.kube.discovery import ApiResource
from kubectl_state.core.plan.model import ObjectId, PlanInput
from kubectl_state.core.workflows.restore.source import ImportSource


class MemorySink:
    """Collects exported objects. Thread-safe: export adds objects from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inputs: list[PlanInput] = []
        #: (reason, group, resource) -> objects export skipped for that reason.
        self.skipped: dict[tuple[str, str, str], int] = {}
        self.committed = False

    # Positional to match the exporter's call sites: (group, version, resource, kind, namespaced, obj).
    def add_object(  # noqa: PLR0917
        self,
        group: str,
        version: str,
        resource: str,
        kind: str,
        namespaced: bool,
        obj: Mapping[str, Any],
        *,
        uid: str | None = None,
    ) -> None:
        # The same identity check an archive makes, so a stream never holds what an archive would refuse.
        namespace, name = object_identity(group, version, resource, kind, namespaced, obj)
        res = ApiResource(group=group, version=version, resource=resource, kind=kind, namespaced=namespaced)
        item = PlanInput(ObjectId(group, resource, namespace, name), res, dict(obj), uid)
        with self._lock:
            self._inputs.append(item)

    def record_list(  # noqa: PLR0917 - same positional identity as add_object
        self, group: str, version: str, resource: str, kind: str, namespaced: bool, list_resource_version: str | None
    ) -> None:
        """List resourceVersions only matter to an archive's manifest."""

    def count_skip(self, reason: str, resource: str, group: str = "", count: int = 1) -> None:
        with self._lock:
            key = (reason, group, resource)
            self.skipped[key] = self.skipped.get(key, 0) + count

    def commit(self) -> None:
        self.committed = True

    def close(self) -> None:
        """Nothing to discard: an uncommitted sink is simply not used."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def source(self, description: str) -> ImportSource:
        """What was exported, as an import reads it. Objects are sorted by identity: export
        adds them in whatever order its threads finish, and a plan should not depend on that."""
        with self._lock:
            inputs = sorted(self._inputs, key=lambda item: item.source.key)
        digest = hashlib.sha256()
        for item in inputs:
            digest.update(json.dumps([item.source.key, item.old_uid, item.obj], sort_keys=True,
                                     separators=(",", ":"), default=str).encode())
        return ImportSource(description, digest.hexdigest(), inputs)
