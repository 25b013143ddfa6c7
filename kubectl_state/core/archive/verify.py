"""`verify`: every problem with an archive, not just the first.

It applies the reader's checks but keeps going after a problem wherever the archive still
makes sense: a manifest that fails its schema is still used, entry by entry, to check the
files it does describe. Only problems that leave nothing to compare against (no manifest,
an unknown format version, a corrupt compressed stream) end the check early. Deciding what
a problem means for the exit status is the CLI's business.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_state.core.archive.layout import MANIFEST_NAME
from kubectl_state.core.archive.limits import DEFAULT_LIMITS, ReadLimits
from kubectl_state.core.archive.manifest import (
    Manifest,
    ObjectEntry,
    ResourceEntry,
    consistency_problems,
    decode_document,
    object_entry_from_json,
    path_problem,
)
from kubectl_state.core.archive.objects import parse_checked
from kubectl_state.core.archive.problems import ArchiveProblemError, Problem, ProblemKind
from kubectl_state.core.archive.reader import larger_than_declared, secret_as_read
from kubectl_state.core.archive.secrets import SecretDecrypter
from kubectl_state.core.archive.sources import DirectorySource, TarGzSource, open_source


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: str
    format: str | None
    problems: tuple[Problem, ...]
    #: Object files listed in the manifest, and how many of them passed every check.
    objects_listed: int
    objects_ok: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "ok": self.ok,
            "objectsListed": self.objects_listed,
            "objectsOk": self.objects_ok,
            "problems": [problem.to_dict() for problem in self.problems],
        }


class _Collector:
    def __init__(self) -> None:
        self._problems: dict[tuple[ProblemKind, str, str], Problem] = {}

    def add(self, problem: Problem) -> None:
        # One file can be reached twice (by its entry and by the directory walk).
        self._problems.setdefault((problem.kind, problem.path, problem.message), problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def result(self) -> tuple[Problem, ...]:
        return tuple(self._problems.values())


@dataclass(slots=True)
class _Known:
    """What the manifest says, as far as it could be understood."""

    entries: dict[str, ObjectEntry]
    resources: dict[tuple[str, str], ResourceEntry]
    manifest: Manifest | None


def _salvage(doc: Mapping[str, Any]) -> _Known:
    # The document failed its schema; keep every entry that is still well-formed enough
    # to check its file, so one bad field does not hide a tampered object elsewhere.
    def items(key: str) -> list[Any]:
        value = doc.get(key)
        return value if isinstance(value, list) else []

    entries: dict[str, ObjectEntry] = {}
    for item in items("objects"):
        try:
            entry = object_entry_from_json(item)
        except (KeyError, TypeError, AttributeError):
            continue
        well_formed = (
            all(isinstance(v, str) for v in (entry.path, entry.sha256, entry.group, entry.resource, entry.name))
            and isinstance(entry.size, int)
            and isinstance(entry.namespace, str | None)
        )
        if well_formed:
            entries.setdefault(entry.path, entry)
    resources: dict[tuple[str, str], ResourceEntry] = {}
    for item in items("resources"):
        try:
            res = ResourceEntry(
                item["group"], item["version"], item["resource"], item["kind"], item["namespaced"], None, 0
            )
        except (KeyError, TypeError):
            continue
        # Any JSON may stand where a name belongs (a list is not even hashable).
        if not all(isinstance(v, str) for v in (res.group, res.version, res.resource, res.kind)):
            continue
        resources[(res.group, res.resource)] = res
    return _Known(entries, resources, None)


def _understand(data: bytes, found: _Collector) -> _Known | None:
    doc, problems = decode_document(data)
    found.extend(problems)
    if doc is None:
        return None
    if problems:
        known = _salvage(doc)
        for entry in known.entries.values():
            problem = path_problem(entry)
            if problem is not None:
                found.add(problem)
        return known
    manifest = Manifest.from_json(doc)
    found.extend(consistency_problems(manifest))
    return _Known({e.path: e for e in manifest.objects}, manifest.resource_index(), manifest)


class _Checker:
    """The per-object checks of the reader, recording problems instead of raising them."""

    def __init__(self, known: _Known | None, decrypter: SecretDecrypter | None, limits: ReadLimits) -> None:
        self.known = known
        self.decrypter = decrypter
        self.limits = limits
        self.found = _Collector()
        self.ok = 0
        # Never open a path that failed its safety check.
        self.checkable = {} if known is None else {p: e for p, e in known.entries.items() if path_problem(e) is None}

    def is_stray(self, relpath: str) -> bool:
        return self.known is not None and relpath != MANIFEST_NAME and relpath not in self.known.entries

    def check(self, entry: ObjectEntry, read: Callable[[], bytes]) -> None:
        assert self.known is not None  # noqa: S101 - only entries of a known manifest get here
        try:
            if entry.size > self.limits.max_object_bytes:
                raise ArchiveProblemError(
                    ProblemKind.TOO_LARGE,
                    entry.path,
                    f"the manifest declares {entry.size} bytes, more than the limit of {self.limits.max_object_bytes}",
                )
            resource = self.known.resources.get((entry.group, entry.resource))
            obj = parse_checked(entry, read(), resource, self.limits)
            if self.known.manifest is not None:
                secret_as_read(self.known.manifest, entry, obj, self.decrypter)
        except ArchiveProblemError as exc:
            self.found.add(exc.problem)
            return
        self.ok += 1


def _verify_directory(source: DirectorySource, checker: _Checker) -> None:
    for entry in checker.checkable.values():

        def read(entry: ObjectEntry = entry) -> bytes:
            try:
                return source.read_file(entry.path, entry.size)
            except ArchiveProblemError as exc:
                if exc.problem.kind is ProblemKind.TOO_LARGE:
                    raise larger_than_declared(entry, None) from None
                raise

        checker.check(entry, read)
    for relpath, problem in source.walk():
        if problem is not None:
            checker.found.add(problem)
        elif checker.is_stray(relpath):
            checker.found.add(Problem(ProblemKind.STRAY_FILE, relpath, "the manifest does not list this file"))


def _verify_tar(source: TarGzSource, checker: _Checker) -> None:
    seen: set[str] = set()
    try:
        for member, read in source.scan():
            if member.problem is not None:
                checker.found.add(member.problem)
                continue
            if member.is_dir:
                continue
            entry = checker.checkable.get(member.name)
            if entry is None:
                if checker.is_stray(member.name):
                    checker.found.add(
                        Problem(ProblemKind.STRAY_FILE, member.name, "the manifest does not list this file")
                    )
                continue
            seen.add(entry.path)
            if member.size > entry.size:
                checker.found.add(larger_than_declared(entry, member.size).problem)
                continue
            checker.check(entry, lambda: read(entry.size))  # noqa: B023 - called before the loop moves on
    except ArchiveProblemError as exc:
        # The stream itself is broken: what follows cannot be checked, so the rest of the
        # manifest is not reported as missing.
        checker.found.add(exc.problem)
        return
    for path in checker.checkable:
        if path not in seen:
            checker.found.add(Problem(ProblemKind.MISSING_FILE, path, "the file is missing"))


def verify(
    path: str | os.PathLike[str],
    *,
    decrypter: SecretDecrypter | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> VerifyReport:
    """Check everything about the archive at `path` and report all problems found.

    With a `decrypter`, encrypted Secrets are also decrypted (proving the identity works);
    without one, their ciphertext is checked like any other file. Never raises for a bad
    archive: every problem is in the report.
    """
    try:
        source = open_source(path, limits)
    except ArchiveProblemError as exc:
        return VerifyReport(os.fspath(path), None, (exc.problem,), 0, 0)
    try:
        first = _Collector()
        known: _Known | None = None
        try:
            # A .tar.gz's members are reported by the second pass, not refused by the first.
            data = source.read_manifest() if isinstance(source, DirectorySource) else source.read_manifest(strict=False)
            known = _understand(data, first)
        except ArchiveProblemError as exc:
            first.add(exc.problem)
        checker = _Checker(known, decrypter, limits)
        checker.found.extend(first.result())
        # Even without a usable manifest, walking the archive still reports unsafe members.
        if isinstance(source, DirectorySource):
            _verify_directory(source, checker)
        else:
            _verify_tar(source, checker)
        listed = len(known.entries) if known is not None else 0
        return VerifyReport(str(source.path), source.format, checker.found.result(), listed, checker.ok)
    finally:
        source.close()
