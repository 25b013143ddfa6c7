"""`PATH = -`: objects as a multi-document YAML stream, for piping into `kubectl apply -f -`
or another tool. The same interface as ArchiveWriter, without a manifest: there is nowhere
to put one, and a pipe cannot be made atomic, so nothing about it is promised beyond the
documents themselves."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TextIO

from kubectl_state.core.archive.secrets import SecretEncrypter, encrypt_secret, is_secret
from kubectl_state.core.archive.writer import object_identity
from kubectl_state.core.archive.yamlcodec import dump_object


class YamlStreamWriter:
    def __init__(self, stream: TextIO, *, encryption: SecretEncrypter | None = None) -> None:
        self._stream = stream
        self._encryption = encryption
        self._lock = threading.Lock()
        self.count = 0

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
        """Write one object as a YAML document (`uid` is accepted for interface parity and
        dropped: a stream has no manifest to keep it in)."""
        object_identity(group, version, resource, kind, namespaced, obj)
        if self._encryption is not None and group == "" and resource == "secrets" and is_secret(obj):
            obj = encrypt_secret(obj, self._encryption)
        document = "---\n" + dump_object(obj).decode("utf-8")
        with self._lock:  # one document per write, never interleaved between threads
            self._stream.write(document)
            self.count += 1

    def record_list(  # noqa: PLR0917 - same positional identity as add_object
        self, group: str, version: str, resource: str, kind: str, namespaced: bool, list_resource_version: str | None
    ) -> None:
        """Nothing to record without a manifest."""

    def count_skip(self, reason: str, resource: str, group: str = "", count: int = 1) -> None:
        """Nothing to record without a manifest."""

    def commit(self) -> None:
        with self._lock:
            self._stream.flush()

    def close(self) -> None:
        """Documents already written cannot be taken back from a pipe; nothing to do."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
