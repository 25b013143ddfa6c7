"""`inspect`: what an archive holds, from its validated manifest (no object is read, so it
is fast; `verify` is what reads and checks every file). It still refuses an archive whose
shape the reader would refuse (links, devices, paths out, sizes that are not the declared
ones): a summary must not make such an archive look usable."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubectl_state.core.archive.layout import resource_key
from kubectl_state.core.archive.limits import DEFAULT_LIMITS, ReadLimits
from kubectl_state.core.archive.manifest import SecretsEncryption, Source, ToolInfo, format_time
from kubectl_state.core.archive.reader import open_archive


@dataclass(frozen=True, slots=True)
class Summary:
    path: str
    format: str
    format_version: int
    tool: ToolInfo
    source: Source
    created_at: datetime
    #: Time since created_at when inspected (negative if the archive claims a future time).
    age: timedelta
    filters: Mapping[str, Any]
    objects: int
    #: Sum of the object files' sizes, as the manifest declares them.
    object_bytes: int
    #: Size of the .tar.gz file; for a directory, the object files plus manifest.json.
    archive_bytes: int
    #: `<resource>[.<group>]` -> objects, for every listed resource (0 if listed but empty).
    by_resource: Mapping[str, int]
    #: namespace -> objects; cluster-scoped objects are counted in `cluster_scoped`.
    by_namespace: Mapping[str, int]
    cluster_scoped: int
    skipped: Mapping[str, Mapping[str, int]]
    secrets_encryption: SecretsEncryption | None

    def to_dict(self) -> dict[str, Any]:
        source: dict[str, Any] = {"server": self.source.server, "kubernetesVersion": self.source.kubernetes_version}
        if self.source.cluster_id is not None:
            source["clusterId"] = self.source.cluster_id
        if self.source.context is not None:
            source["context"] = self.source.context
        return {
            "path": self.path,
            "format": self.format,
            "formatVersion": self.format_version,
            "tool": {"name": self.tool.name, "version": self.tool.version},
            "source": source,
            "createdAt": format_time(self.created_at),
            "ageSeconds": int(self.age.total_seconds()),
            "filters": dict(self.filters),
            "objects": self.objects,
            "objectBytes": self.object_bytes,
            "archiveBytes": self.archive_bytes,
            "byResource": dict(self.by_resource),
            "byNamespace": dict(self.by_namespace),
            "clusterScoped": self.cluster_scoped,
            "skipped": {reason: dict(counts) for reason, counts in self.skipped.items()},
            "secretsEncryption": (
                None
                if self.secrets_encryption is None
                else {"scheme": self.secrets_encryption.scheme, "recipients": list(self.secrets_encryption.recipients)}
            ),
        }


def inspect(
    path: str | os.PathLike[str], *, limits: ReadLimits = DEFAULT_LIMITS, now: datetime | None = None
) -> Summary:
    """Summarise the archive at `path`. Raises ArchiveError if its manifest cannot be trusted."""
    with open_archive(path, limits=limits) as archive:
        archive.check_structure()
        manifest = archive.manifest
        on_disk = archive.size_on_disk
    object_bytes = sum(entry.size for entry in manifest.objects)
    by_resource = {res.key: 0 for res in manifest.resources}
    by_resource.update(Counter(resource_key(e.resource, e.group) for e in manifest.objects))
    by_namespace = Counter(e.namespace for e in manifest.objects if e.namespace is not None)
    return Summary(
        path=str(archive.path),
        format=archive.format,
        format_version=manifest.format_version,
        tool=manifest.tool,
        source=manifest.source,
        created_at=manifest.created_at,
        age=(now or datetime.now(UTC)) - manifest.created_at,
        filters=manifest.filters,
        objects=len(manifest.objects),
        object_bytes=object_bytes,
        archive_bytes=on_disk if on_disk is not None else object_bytes + archive.manifest_bytes,
        by_resource=dict(sorted(by_resource.items())),
        by_namespace=dict(sorted(by_namespace.items())),
        cluster_scoped=sum(1 for e in manifest.objects if e.namespace is None),
        skipped=manifest.skipped,
        secrets_encryption=manifest.secrets_encryption,
    )
