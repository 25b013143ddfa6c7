"""The archive manifest's JSON Schema: shipped as package data, valid draft 2020-12, and
in agreement with what the writer produces and the reader accepts."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_state.core.archive import open_archive
from kubectl_state.core.archive import schema as schema_module
from kubectl_state.core.errors import ArchiveError
from tests.unit.test_archive_support import edit_manifest, write_sample

ENTRY_KEYS = ["path", "sha256", "size", "uid", "group", "resource", "namespace", "name"]


def shipped_schema() -> dict[str, Any]:
    text = resources.files("kubectl_state.schemas").joinpath("manifest.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.fixture(scope="module")
def manifest_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("schema") / "a"
    write_sample(path)
    doc: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return doc


def test_schema_is_valid_draft_2020_12() -> None:
    schema = shipped_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_written_manifest_validates_against_the_shipped_schema(manifest_doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(shipped_schema()).validate(manifest_doc)


def test_written_manifest_has_the_documented_shape(manifest_doc: dict[str, Any]) -> None:
    assert manifest_doc["formatVersion"] == 1
    assert manifest_doc["tool"]["name"] == "kubectl-state"
    assert set(manifest_doc["source"]) == {"server", "kubernetesVersion", "clusterId", "context"}
    assert manifest_doc["createdAt"].endswith("Z")
    assert manifest_doc["secretsEncryption"] is None
    entry = next(o for o in manifest_doc["objects"] if o["resource"] == "customresourcedefinitions")
    assert "namespace" not in entry
    assert set(entry) == {"path", "sha256", "size", "uid", "group", "resource", "name"}


def test_each_object_entry_is_one_line_of_manifest_json(tmp_path: Path) -> None:
    write_sample(tmp_path / "a")
    lines = (tmp_path / "a/manifest.json").read_text().splitlines()
    assert sum('"path": "resources/' in line for line in lines) == 5


def _break(doc: dict[str, Any], where: str) -> None:
    if where == "sha256":
        doc["objects"][0]["sha256"] = "not-a-digest"
    elif where == "extra-field":
        doc["surprise"] = True
    elif where == "missing-source":
        del doc["source"]
    elif where == "negative-size":
        doc["objects"][0]["size"] = -1
    elif where == "created-at":
        doc["createdAt"] = "yesterday"
    elif where == "recipient":
        doc["secretsEncryption"] = {"scheme": "age", "recipients": ["not-a-key"]}
    elif where == "name":
        doc["objects"][0]["name"] = ".."


@pytest.mark.parametrize(
    "where", ["sha256", "extra-field", "missing-source", "negative-size", "created-at", "recipient", "name"]
)
def test_schema_rejects_malformed_manifests(manifest_doc: dict[str, Any], where: str) -> None:
    doc = copy.deepcopy(manifest_doc)
    _break(doc, where)
    assert not jsonschema.Draft202012Validator(shipped_schema()).is_valid(doc)


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.just(".."),
    st.just("a" * 300),
    st.just("0" * 64),
    st.just("resources/x.yaml"),
    st.just("a/b"),
    st.just("a\\b"),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    replacements=st.dictionaries(st.sampled_from([*ENTRY_KEYS, "extra"]), _junk, max_size=4),
    removed=st.sets(st.sampled_from(ENTRY_KEYS), max_size=2),
)
def test_the_fast_entry_check_never_accepts_what_jsonschema_rejects(
    manifest_doc: dict[str, Any], replacements: dict[str, Any], removed: set[str]
) -> None:
    fast = schema_module._object_entries()
    assert fast is not None, "the object entry schema no longer compiles to the fast check"
    check, _ = fast
    entry = {**manifest_doc["objects"][0], **replacements}
    for key in removed:
        entry.pop(key, None)
    entry_schema = shipped_schema()["$defs"]["objectFile"]
    full = jsonschema.Draft202012Validator({**entry_schema, "$defs": shipped_schema()["$defs"]})
    if check(entry):
        assert full.is_valid(entry), entry


def test_the_fast_entry_check_accepts_what_the_writer_writes(manifest_doc: dict[str, Any]) -> None:
    fast = schema_module._object_entries()
    assert fast is not None
    assert all(fast[0](entry) for entry in manifest_doc["objects"])


def test_errors_in_many_entries_are_reported_by_index(manifest_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(manifest_doc)
    doc["objects"][1]["size"] = "big"
    doc["objects"][3]["sha256"] = "x"
    errors = list(schema_module.schema_errors(doc))
    assert [e.split(":")[0] for e in errors] == ["objects[1].size", "objects[3].sha256"]


def test_reader_validates_the_manifest_against_the_schema(tmp_path: Path) -> None:
    write_sample(tmp_path / "a")
    edit_manifest(tmp_path / "a", lambda doc: _break(doc, "sha256"))
    with pytest.raises(ArchiveError, match=r"does not match its schema: objects\[0\]\.sha256"):
        open_archive(tmp_path / "a")


def test_reader_names_an_unknown_format_version(tmp_path: Path) -> None:
    write_sample(tmp_path / "a")
    edit_manifest(tmp_path / "a", lambda doc: doc.update(formatVersion=7))
    with pytest.raises(ArchiveError, match="unknown archive format version 7"):
        open_archive(tmp_path / "a")
