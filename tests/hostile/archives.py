"""Hostile archives, one builder per attack, in both physical forms (directory and .tar.gz).

Each archive starts as a valid one written by the real writer (tests/unit/test_archive_support's
sample), then one thing is changed the way an attacker who controls the whole archive would:
the manifest is re-signed where that gets the attack past the checksum, so that the check
under test (and not an earlier one) is what refuses it. Each case names the ProblemKind the
reader must report and a fragment of its message.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubectl_state.core.archive.problems import ProblemKind
from tests.unit.test_archive_support import (
    TarEntry,
    dir_to_tar,
    edit_manifest,
    member,
    object_files,
    resign,
    write_sample,
    write_tar,
)

CM = "resources/configmaps/namespaces/default/app.yaml"
#: Written next to the archive: a hostile archive must never make the reader touch it.
OUTSIDE = "outside.txt"

Form = str  # "directory" or "tar.gz"
FORMS: tuple[Form, ...] = ("directory", "tar.gz")


@dataclass(frozen=True)
class Case:
    name: str
    kind: ProblemKind
    #: A fragment of the reason the reader gives (a regular expression).
    reason: str
    build: Callable[[Path, Form], Path]
    forms: tuple[Form, ...] = FORMS
    #: False when the problem is inside an object file: `inspect` reads the manifest and
    #: the archive's structure only, never an object's bytes, so it has nothing to refuse.
    structural: bool = True


def valid_directory(work: Path) -> Path:
    archive = work / "archive"
    write_sample(archive)
    (work / OUTSIDE).write_text("a file outside the archive\n")
    return archive


def as_form(archive: Path, form: Form) -> Path:
    if form == "directory":
        return archive
    out = archive.parent / "archive.tar.gz"
    dir_to_tar(archive, out)
    return out


def tar_with(archive: Path, extra: list[TarEntry], *, first: bool = True) -> Path:
    """The directory archive packed as the writer packs it, plus hostile members."""
    entries = [member(rel, (archive / rel).read_bytes()) for rel in object_files(archive)]
    entries.append(member("manifest.json", (archive / "manifest.json").read_bytes()))
    out = archive.parent / "archive.tar.gz"
    write_tar(out, [*extra, *entries] if first else [*entries, *extra])
    return out


def _repath(archive: Path, new_path: str) -> None:
    def change(doc: dict[str, Any]) -> None:
        for entry in doc["objects"]:
            if entry["path"] == CM:
                entry["path"] = new_path

    edit_manifest(archive, change)


# --- the attacks -------------------------------------------------------------------------


def dotdot_path(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    if form == "tar.gz":
        return tar_with(archive, [member(f"resources/../../{OUTSIDE}", b"overwritten\n")])
    # Ends in .yaml so that it passes the schema's pattern and meets the path check itself.
    _repath(archive, "resources/configmaps/namespaces/default/../../../../../outside.yaml")
    return archive


def absolute_path(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    if form == "tar.gz":
        return tar_with(archive, [member(str(work / OUTSIDE), b"overwritten\n")])
    _repath(archive, str(work / OUTSIDE))
    return archive


def symlink(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    if form == "tar.gz":
        link = member("resources/configmaps/namespaces/default/evil.yaml", type=tarfile.SYMTYPE,
                      linkname=str(work / OUTSIDE))
        return tar_with(archive, [link])
    # A link to a copy of the genuine bytes: only the link itself can be what is refused.
    target = work / "copy.yaml"
    target.write_bytes((archive / CM).read_bytes())
    (archive / CM).unlink()
    (archive / CM).symlink_to(target)
    return archive


def symlinked_directory(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    real = work / "elsewhere"
    (archive / "resources/configmaps/namespaces/default").rename(real)
    (archive / "resources/configmaps/namespaces/default").symlink_to(real)
    return archive


def hardlink(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    if form == "tar.gz":
        return tar_with(archive, [member("resources/configmaps/namespaces/default/evil.yaml",
                                         type=tarfile.LNKTYPE, linkname=f"../../{OUTSIDE}")])
    # In a directory a hard link is a plain file (rsnapshot-style backup trees are made of
    # them), so it is read like one: bytes that are not the manifest's are refused.
    (archive / CM).unlink()
    os.link(work / OUTSIDE, archive / CM)
    return archive


def device(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    if form == "tar.gz":
        return tar_with(archive, [member("resources/configmaps/namespaces/default/evil.yaml",
                                         type=tarfile.CHRTYPE, devmajor=1, devminor=3)])
    (archive / CM).unlink()
    os.mknod(archive / CM, 0o600 | 0o020000, os.makedev(1, 3))  # S_IFCHR: /dev/null's numbers
    return archive


def fifo(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    if form == "tar.gz":
        return tar_with(archive, [member("resources/configmaps/namespaces/default/evil.yaml",
                                         type=tarfile.FIFOTYPE)], first=False)
    (archive / CM).unlink()
    os.mkfifo(archive / CM, 0o600)  # opening it for reading would block forever
    return archive


def larger_than_declared(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    with open(archive / CM, "ab") as handle:
        handle.write(b"#" * 1_000_000)
    return as_form(archive, form)


def gzip_bomb(work: Path, form: Form) -> Path:
    # 300 MiB of zeros across members each under the object limit, in well under 1 MiB:
    # gzip streams may follow each other, so one compressed chunk is simply repeated.
    chunk = 4 * 1024 * 1024
    zeros = gzip.compress(bytes(chunk), compresslevel=9)
    out = work / "archive.tar.gz"
    with open(out, "wb") as handle:
        for number in range(75):
            info = tarfile.TarInfo(f"resources/configmaps/namespaces/default/b{number}.yaml")
            info.size = chunk
            handle.write(gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT)))
            handle.write(zeros)
        handle.write(gzip.compress(bytes(1024)))
    return out


ALIAS_BOMB = b"""apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: default}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""


def _resigned(data: bytes) -> Callable[[Path, Form], Path]:
    def build(work: Path, form: Form) -> Path:
        archive = valid_directory(work)
        resign(archive, CM, data)
        return as_form(archive, form)

    return build


def duplicate_paths(work: Path, form: Form) -> Path:
    archive = valid_directory(work)

    def change(doc: dict[str, Any]) -> None:
        [entry] = [e for e in doc["objects"] if e["path"] == CM]
        doc["objects"].append(copy.deepcopy(entry))
        for res in doc["resources"]:
            if res["resource"] == "configmaps":
                res["count"] += 1  # so that only the duplicate is wrong

    edit_manifest(archive, change)
    return as_form(archive, form)


def duplicate_members(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    return tar_with(archive, [member(CM, b"apiVersion: v1\nkind: ConfigMap\n")])


def unknown_format_version(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    edit_manifest(archive, lambda doc: doc.update(formatVersion=99))
    return as_form(archive, form)


def invalid_utf8_manifest(work: Path, form: Form) -> Path:
    archive = valid_directory(work)
    text = (archive / "manifest.json").read_bytes()
    (archive / "manifest.json").write_bytes(text.replace(b'"kind"', b'"k\xff\xfend"', 1))
    return as_form(archive, form)


def manifest_of(path: Path) -> dict[str, Any]:
    if path.is_dir():
        return json.loads((path / "manifest.json").read_text())  # type: ignore[no-any-return]
    with tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        return json.loads(handle.read())  # type: ignore[no-any-return]


CASES: list[Case] = [
    Case("dotdot-path", ProblemKind.PATH_OUTSIDE_ARCHIVE, r"'\.\.'", dotdot_path),
    Case("absolute-path", ProblemKind.PATH_OUTSIDE_ARCHIVE, "absolute", absolute_path, forms=("tar.gz",)),
    # The manifest's schema only admits paths under resources/, so it is what refuses this.
    Case("absolute-path", ProblemKind.SCHEMA_INVALID, "does not match", absolute_path, forms=("directory",)),
    Case("symlink", ProblemKind.UNSAFE_MEMBER, "symbolic link", symlink),
    Case("symlinked-directory", ProblemKind.UNSAFE_MEMBER, "symbolic link", symlinked_directory,
         forms=("directory",)),
    Case("hardlink-tar", ProblemKind.UNSAFE_MEMBER, "hard link", hardlink, forms=("tar.gz",)),
    Case("hardlink-directory", ProblemKind.SIZE_MISMATCH, "manifest declares", hardlink, forms=("directory",)),
    Case("device", ProblemKind.UNSAFE_MEMBER, "device file", device),
    Case("fifo", ProblemKind.UNSAFE_MEMBER, "FIFO", fifo),
    Case("larger-than-declared", ProblemKind.SIZE_MISMATCH, "larger than the .* bytes the manifest declares",
         larger_than_declared),
    Case("gzip-bomb", ProblemKind.TOO_LARGE, "decompresses to more than", gzip_bomb, forms=("tar.gz",)),
    Case("yaml-alias-bomb", ProblemKind.INVALID_OBJECT, "anchors are not allowed", _resigned(ALIAS_BOMB),
         structural=False),
    Case("duplicate-object-paths", ProblemKind.DUPLICATE, "more than once", duplicate_paths),
    Case("duplicate-tar-members", ProblemKind.DUPLICATE, "more than once", duplicate_members, forms=("tar.gz",)),
    Case("unknown-format-version", ProblemKind.UNKNOWN_FORMAT_VERSION, "format version 99|formatVersion 99|99",
         unknown_format_version),
    Case("invalid-utf8-object", ProblemKind.INVALID_OBJECT, "not valid UTF-8",
         _resigned(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff\xfe, namespace: default}\n"),
         structural=False),
    Case("invalid-utf8-manifest", ProblemKind.MANIFEST_INVALID, "UTF-8|JSON", invalid_utf8_manifest),
    Case("kind-not-its-folder", ProblemKind.KIND_MISMATCH, "kind is 'Secret' but configmaps holds ConfigMap",
         _resigned(b"apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: default}\n"
                   b"stringData: {token: planted}\n"),
         structural=False),
]

CASE_PARAMS = [(case, form) for case in CASES for form in case.forms]
CASE_IDS = [f"{case.name}-{form}" for case, form in CASE_PARAMS]
