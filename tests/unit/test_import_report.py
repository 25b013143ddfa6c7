"""The import report's JSON Schema (kubectl_state/schemas/report.schema.json): shipped as
package data, valid draft 2020-12, met by the reports the import builds, and strict enough
to refuse a report that drops an object's reason or invents an outcome."""

from __future__ import annotations

import copy
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kubectl_state.cli.commands.import_ import print_report, write_report_file
from kubectl_state.core.plan import ImportReport, ObjectId, ObjectResult, Outcome


def report_schema() -> dict[str, Any]:
    text = resources.files("kubectl_state.schemas").joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(doc: Any) -> None:
    """Raise jsonschema.ValidationError unless `doc` is a valid import report."""
    jsonschema.Draft202012Validator(report_schema()).validate(doc)


def sample_report() -> ImportReport:
    """A report with every outcome and every optional field, built as the importer builds it."""
    report = ImportReport(archive="backup.tar.gz", server="https://127.0.0.1:6443", filtered=3,
                          journal="/tmp/report.json.journal", seconds=1.23456, warnings=["a warning"])
    cm = ObjectId("", "configmaps", "shop-copy", "web-config")
    report.add(ObjectResult(ObjectId("", "namespaces", None, "shop-copy"), "Namespace", Outcome.CREATED,
                            uid="11111111-1111-4111-8111-111111111111", source_namespace=None))
    report.add(ObjectResult(cm, "ConfigMap", Outcome.CREATED, "created by the interrupted run",
                            uid="22222222-2222-4222-8222-222222222222", source_namespace="shop", resumed=True))
    report.add(ObjectResult(ObjectId("apps", "deployments", "shop-copy", "web"), "Deployment", Outcome.UPDATED,
                            uid="33333333-3333-4333-8333-333333333333", source_namespace="shop", attempts=3))
    report.add(ObjectResult(ObjectId("", "secrets", "shop-copy", "opaque"), "Secret", Outcome.UNCHANGED,
                            uid="44444444-4444-4444-8444-444444444444", source_namespace="shop"))
    report.add(ObjectResult(ObjectId("", "persistentvolumes", None, "pv-1"), "PersistentVolume", Outcome.SKIPPED,
                            "exists (and differs; --existing=update applies the archive's version)",
                            uid="55555555-5555-4555-8555-555555555555"))
    report.add(ObjectResult(ObjectId("example.com", "widgets", "shop-copy", "w1"), "Widget", Outcome.FAILED,
                            'admission webhook "deny.example.com" denied the request', source_namespace="shop",
                            status_reason="Forbidden"))
    return report


def test_the_schema_is_shipped_and_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(report_schema())


def test_a_report_with_every_outcome_is_valid_in_json_and_yaml(tmp_path: Path) -> None:
    report = sample_report()
    doc = report.to_dict()
    validate_report(doc)
    assert doc["summary"] == {"created": 2, "updated": 1, "unchanged": 1, "skipped": 1, "failed": 1, "total": 6,
                              "filteredOut": 3}
    # --report FILE writes JSON, or YAML for .yaml; both read back to the same valid document.
    for name, load in (("report.json", json.loads), ("report.yaml", yaml.safe_load)):
        write_report_file(doc, str(tmp_path / name))
        again = load((tmp_path / name).read_text())
        validate_report(again)
        assert again == doc


def test_an_empty_report_and_a_dry_run_report_are_valid() -> None:
    validate_report(ImportReport(archive="standard input", server="https://k").to_dict())
    dry = sample_report()
    dry.dry_run, dry.journal = "server", None
    validate_report(dry.to_dict())


@pytest.mark.parametrize(("change", "why"), [
    (lambda d: d["objects"][5].pop("reason"), "a failed object without its reason"),
    (lambda d: d["objects"][4].pop("reason"), "a skipped object without its reason"),
    (lambda d: d["objects"][0].update(outcome="done"), "an outcome that does not exist"),
    (lambda d: d["objects"][0].pop("name"), "an object without a name"),
    (lambda d: d["summary"].pop("failed"), "a summary without the failed count"),
    (lambda d: d.update(dryRun="client"), "a client dry run (it prints a plan, not a report)"),
    (lambda d: d["objects"][1].update(resumed=False), "resumed is only ever true"),
    (lambda d: d["objects"][0].update(extra=1), "a field the schema does not name"),
])
def test_the_schema_refuses_what_a_report_must_not_be(change: Any, why: str) -> None:
    doc = copy.deepcopy(sample_report().to_dict())
    change(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate_report(doc)


def test_the_table_lists_every_object_with_its_outcome_and_reason() -> None:
    out = io.StringIO()
    print_report(sample_report(), out, quiet=False)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["OUTCOME", "KIND", "NAMESPACE", "NAME", "REASON"]
    assert len(lines) == 1 + 6 + 1
    assert lines[2].startswith("created (resumed)") and "interrupted run" in lines[2]
    assert lines[6].startswith("failed") and "denied the request" in lines[6]
    assert lines[-1].startswith("6 objects: 2 created, 1 updated, 1 unchanged, 1 skipped, 1 failed, 3 left out")
    quiet = io.StringIO()
    print_report(sample_report(), quiet, quiet=True)
    assert [line.split()[0] for line in quiet.getvalue().splitlines()[1:-1]] == ["failed"]
