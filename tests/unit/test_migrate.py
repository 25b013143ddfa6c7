"""Pure parts of `migrate`: pause rules, the merge patches they make, the in-memory source,
and the journal a killed run leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_state.core.errors import InvalidInputError, UsageError
from kubectl_state.core.kube.discovery import ApiResource
from kubectl_state.core.plan.model import ObjectId
from kubectl_state.core.workflows.migrate import (
    DEFAULT_PAUSE_RULES,
    MigrateReport,
    Paused,
    PauseRule,
    _Journal,
    _lookup,
    _merge_patch,
    parse_path,
    parse_pause_rules,
)
from kubectl_state.core.workflows.restore.memory import MemorySink
from tests.helpers import run_cli


def test_paths_are_json_pointers_or_dotted() -> None:
    assert parse_path("/spec/paused") == ("spec", "paused")
    assert parse_path("spec.paused") == ("spec", "paused")
    assert parse_path("/metadata/annotations/a~1b~0c") == ("metadata", "annotations", "a/b~c")


@pytest.mark.parametrize("bad", ["", "/", "spec..paused", "/metadata/name", "kind"])
def test_paths_that_are_empty_or_change_identity_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_path(bad)


def test_rules_file_replaces_the_defaults() -> None:
    rules = parse_pause_rules([{"group": "", "kind": "ConfigMap", "path": "data.paused", "value": "yes"}])
    assert rules == (PauseRule("", "ConfigMap", ("data", "paused"), "yes"),)
    assert parse_pause_rules([]) == ()
    assert DEFAULT_PAUSE_RULES[0].describe() == "Cluster.cluster.x-k8s.io spec.paused=true"


@pytest.mark.parametrize("doc", [{"group": "x"}, [{"group": "x", "kind": "K", "path": "a"}],
                                 [{"group": "x", "kind": "K", "path": "a", "value": None}],
                                 [{"group": "x", "kind": "K", "path": "a", "value": 1, "extra": 2}]])
def test_malformed_rules_are_refused(doc: object) -> None:
    with pytest.raises(InvalidInputError):
        parse_pause_rules(doc)


def test_pause_and_unpause_are_merge_patches_restoring_the_original() -> None:
    assert _merge_patch(("spec", "paused"), True) == {"spec": {"paused": True}}
    assert _merge_patch(("spec", "paused"), None) == {"spec": {"paused": None}}  # null removes the field
    assert _lookup({"spec": {"paused": False}}, ("spec", "paused")) == (True, False)
    assert _lookup({"spec": {}}, ("spec", "paused")) == (False, None)


def test_memory_sink_gives_an_import_source_with_uids_in_a_stable_order() -> None:
    sink = MemorySink()
    for name in ("b", "a"):
        sink.add_object("", "v1", "configmaps", "ConfigMap", True,
                        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "n"}},
                        uid=f"uid-{name}")
    sink.count_skip("derived", "events", "", 3)
    source = sink.source("cluster A")
    assert [(i.source.name, i.old_uid) for i in source.inputs] == [("a", "uid-a"), ("b", "uid-b")]
    assert sink.skipped == {("derived", "", "events"): 3}
    assert source.digest == sink.source("cluster A").digest


def test_journal_round_trips_and_refuses_another_migration(tmp_path: Path) -> None:
    resource = ApiResource("cluster.x-k8s.io", "v1beta1", "clusters", "Cluster", True)
    item = Paused(DEFAULT_PAUSE_RULES[0], resource, ObjectId("cluster.x-k8s.io", "clusters", "a", "prod"),
                  ObjectId("cluster.x-k8s.io", "clusters", "b", "prod"), present=True, original=False)
    journal = _Journal(tmp_path / "j.json", "https://a", "https://b")
    journal.write([item])
    (back,) = journal.read()
    assert (back.source, back.target, back.present, back.original) == (item.source, item.target, True, False)
    with pytest.raises(UsageError):
        _Journal(tmp_path / "j.json", "https://a", "https://c").read()
    journal.remove()
    assert journal.read() == []


def test_a_report_without_an_import_fails_only_on_an_error() -> None:
    report = MigrateReport("a", "b", move=False, dry_run=True)
    assert not report.failed
    report.error = "boom"
    assert report.failed
    assert report.to_dict()["result"] == "failed"


def test_migrate_refuses_context_and_keep_with_dry_run() -> None:
    code, _, err = run_cli("migrate", "--context", "x")
    assert code == 2 and "--from-context" in err
    code, _, err = run_cli("migrate", "--keep", "x", "--dry-run")
    assert code == 2 and "--keep" in err
