"""The backup format: a directory or .tar.gz of YAML object files plus a manifest.json that
vouches for each of them (DESIGN.md, "The archive"). Writer, reader, verify and inspect.

Modules, one job each:
  layout     where files live; which paths are safe
  manifest   manifest.json's data types and checks (schema in kubectl_state/schemas/)
  yamlcodec  canonical YAML dump; a loader that refuses aliases, tags, depth, bad UTF-8
  yaml_fast  the dump's fast path: libyaml's block layout written as text directly
  objects    checking one object file against its manifest entry
  secrets    encrypting Secret values (age)
  stores     building a directory or .tar.gz under a temporary name, publishing it atomically
  writer     ArchiveWriter; stream: YamlStreamWriter for PATH "-"
  tarstream  reading a .tar.gz as a bounded stream of checked members
  sources    directory and .tar.gz behind one interface; reader: ArchiveReader
  verify     every problem, not just the first; summary: inspect
"""

from kubectl_state.core.archive.layout import MANIFEST_NAME, object_path, resource_key
from kubectl_state.core.archive.limits import DEFAULT_LIMITS, ReadLimits
from kubectl_state.core.archive.manifest import (
    FORMAT_VERSION,
    Manifest,
    ObjectEntry,
    ResourceEntry,
    SecretsEncryption,
    Source,
    ToolInfo,
)
from kubectl_state.core.archive.problems import ArchiveProblemError, Problem, ProblemKind
from kubectl_state.core.archive.reader import ArchiveReader, open_archive
from kubectl_state.core.archive.secrets import (
    ENCRYPTED_ANNOTATION,
    AgeDecrypter,
    AgeEncrypter,
    SecretDecrypter,
    SecretEncrypter,
)
from kubectl_state.core.archive.stores import ArchiveFormat, format_for_path
from kubectl_state.core.archive.stream import YamlStreamWriter
from kubectl_state.core.archive.summary import Summary, inspect
from kubectl_state.core.archive.verify import VerifyReport, verify
from kubectl_state.core.archive.writer import ArchiveWriter, ObjectSink, open_archive_writer

__all__ = [
    "DEFAULT_LIMITS",
    "ENCRYPTED_ANNOTATION",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "AgeDecrypter",
    "AgeEncrypter",
    "ArchiveFormat",
    "ArchiveProblemError",
    "ArchiveReader",
    "ArchiveWriter",
    "Manifest",
    "ObjectEntry",
    "ObjectSink",
    "Problem",
    "ProblemKind",
    "ReadLimits",
    "ResourceEntry",
    "SecretDecrypter",
    "SecretEncrypter",
    "SecretsEncryption",
    "Source",
    "Summary",
    "ToolInfo",
    "VerifyReport",
    "YamlStreamWriter",
    "format_for_path",
    "inspect",
    "object_path",
    "open_archive",
    "open_archive_writer",
    "resource_key",
    "verify",
]
