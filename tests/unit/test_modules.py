"""The collection's modules in-process: argument handling, the core adapter, and the shared options.

Each module's main() is run with arguments patched in (ansible.module_utils.testing), and
exit_json/fail_json caught as the SystemExit they end in, so no etcd or HAProxy is needed for
what is decided before the core is called.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubectl_state.control_plane.plugins.module_utils import core, snapshots
from kubectl_state.core.errors import UnsafeOperationError

PACKAGE = "ansible_collections.kubectl_state.control_plane.plugins.modules"
MODULES_DIR = Path(__file__).resolve().parents[2] / "ansible_collections/kubectl_state/control_plane/plugins/modules"
#: Every module of the collection, so a new one is checked without being listed here.
MODULES = sorted(p.stem for p in MODULES_DIR.glob("*.py") if not p.name.startswith("_"))


def run_module(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run module `name` with `args`; returns its JSON result (exit or fail)."""
    module = importlib.import_module(f"{PACKAGE}.{name}")
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main()
    return json.loads(out.getvalue())


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_match_the_argument_spec(name: str) -> None:
    module = importlib.import_module(f"{PACKAGE}.{name}")
    doc = yaml.safe_load(module.DOCUMENTATION)
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
    assert doc["module"] == name
    assert "kubectl_state.control_plane.connection" in doc["extends_documentation_fragment"]
    assert doc["attributes"]["check_mode"]["support"] == "full"
    # Every module takes every shared option, so one module_defaults group fits them all.
    fragment = yaml.safe_load(importlib.import_module(
        "ansible_collections.kubectl_state.control_plane.plugins.doc_fragments.connection").ModuleDocFragment.DOCUMENTATION)
    assert set(fragment["options"]) == set(core.connection_argument_spec())


def test_password_is_no_log_and_key_path_is_not() -> None:
    spec = core.connection_argument_spec()
    assert spec["password"]["no_log"] is True
    assert spec["client_key"]["no_log"] is False  # a path, not the key


@pytest.mark.parametrize(("name", "args", "message"), [
    ("etcd_member", {}, "missing required arguments: name"),
    ("etcd_member", {"name": "m1", "state": "gone"}, "value of state must be one of: present, promoted, absent"),
    ("etcd_member", {"name": "m1", "promote": "maybe"}, "value of promote must be one of: auto, never"),
    ("etcd_snapshot", {"path": "/x", "state": "restored"},
     "state is restored but all of the following are missing: name, data_dir, initial_cluster"),
    ("etcd_snapshot", {"path": "/x", "keep": 0}, "keep must be at least 1"),
    ("api_endpoint_member", {"backend": "b", "name": "s"}, "state is present but all of the following are missing"),
    ("api_endpoint_member", {"backend": "b", "name": "s", "state": "drained"}, "state is drained but"),
    ("state_export", {}, "missing required arguments: path"),
    ("state_export", {"path": "/x", "secrets": "sometimes"}, "value of secrets must be one of"),
])
def test_bad_arguments_fail_before_any_connection(name: str, args: dict[str, Any], message: str) -> None:
    result = run_module(name, args)
    assert result["failed"] is True
    assert message in result["msg"]


def test_include_cluster_resources_accepts_yaml_booleans(tmp_path: Path) -> None:
    # YAML reads `true` as a boolean; Ansible maps it back onto the 'true' choice.
    archive = tmp_path / "a"
    archive.mkdir()
    (archive / "junk").write_text("not an archive")
    result = run_module("state_export", {"path": str(archive), "include_cluster_resources": True})
    # It got past argument checking to the core, which refuses the non-archive directory.
    assert result["failed"] is True
    assert "manifest" in result["msg"] or "archive" in result["msg"]


def test_core_errors_become_fail_json_with_kind_and_exit_status() -> None:
    class Module:
        def fail_json(self, **kwargs: Any) -> None:
            raise SystemExit(kwargs)

    with pytest.raises(SystemExit) as stop, core.core_errors(Module()):
        raise UnsafeOperationError("refusing to remove etcd member m1: it would cost quorum")
    assert stop.value.args[0] == {"msg": "refusing to remove etcd member m1: it would cost quorum",
                                  "error": "UnsafeOperationError", "exit_status": 6}


def test_unexpected_errors_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError), core.core_errors(object()):
        _ = 1 / 0


def test_etcd_client_from_options_uses_the_default_endpoint_and_never_shows_the_password() -> None:
    class Module:
        params = {"etcd_endpoints": None, "ca_cert": None, "client_cert": None, "client_key": None,
                  "username": "root", "password": "s3cret", "validate_certs": True}

        def fail_json(self, **kwargs: Any) -> None:
            raise AssertionError(kwargs)

    with core.etcd_client(Module()) as client:
        assert client.endpoints == [core.DEFAULT_ETCD_ENDPOINT]
        assert "s3cret" not in repr(client)


def test_password_without_username_is_refused() -> None:
    result = run_module("etcd_info", {"password": "x"})
    assert result == {"failed": True, "msg": "password needs username", "invocation": result["invocation"]}
    assert result["invocation"]["module_args"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


# --- snapshot retention and restore bookkeeping ------------------------------------------------


def fake_snapshot(directory: Path, name: str, when: str) -> Path:
    path = directory / name
    path.write_bytes(b"db")
    (directory / f"{name}.meta.json").write_text(json.dumps({"format": "kubectl-state/etcd-snapshot", "time": when}))
    return path


def test_retention_keeps_the_newest_and_ignores_foreign_files(tmp_path: Path) -> None:
    old = fake_snapshot(tmp_path, "a.db", "2025-01-01T00:00:00Z")
    mid = fake_snapshot(tmp_path, "z.db", "2025-01-02T00:00:00Z")
    new = fake_snapshot(tmp_path, "m.db", "2025-01-03T00:00:00Z")
    (tmp_path / "foreign.db").write_bytes(b"x")
    (tmp_path / "other.db.meta.json").write_text("{}")  # no snapshot beside it, wrong format
    assert snapshots.snapshots_in(tmp_path) == [str(old), str(mid), str(new)]
    assert snapshots.to_prune(tmp_path, 2) == [str(old)]
    assert snapshots.to_prune(tmp_path, 3, extra=str(tmp_path / "next.db")) == [str(old)]
    assert snapshots.to_prune(tmp_path, 5) == []
    snapshots.prune([str(old)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "foreign.db", "m.db", "m.db.meta.json", "other.db.meta.json", "z.db", "z.db.meta.json"]


def test_restore_marker_round_trip_and_moving_aside(tmp_path: Path) -> None:
    snap = fake_snapshot(tmp_path, "s.db", "2025-01-01T00:00:00Z")
    params = {"name": "m1", "initial_cluster": "m1=http://a:2380", "initial_advertise_peer_urls": ["http://a:2380"],
              "initial_cluster_token": None}
    record = snapshots.restore_record("abc", str(snap), params)
    data_dir = tmp_path / "data"
    (data_dir / "member").mkdir(parents=True)
    assert not snapshots.is_empty_dir(str(data_dir))
    marker = snapshots.write_marker(str(data_dir), record, {"revision": 5})
    assert marker == f"{data_dir}.restore.json"
    read = snapshots.read_marker(str(data_dir))
    assert {k: read[k] for k in record} == record
    assert read["result"] == {"revision": 5}
    moved = snapshots.move_aside(str(data_dir))
    assert Path(moved, "member").is_dir() and not data_dir.exists()
    assert snapshots.is_empty_dir(str(data_dir))


@pytest.fixture
def no_kubectl_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(core, "HAS_KUBECTL_STATE", False)
    monkeypatch.setattr(core, "KUBECTL_STATE_IMPORT_ERROR", "Traceback: No module named 'kubectl_state'")
    yield


def test_missing_package_is_reported_the_ansible_way(no_kubectl_state: None) -> None:
    result = run_module("etcd_info", {})
    assert result["failed"] is True
    assert "Failed to import the required Python library (kubectl-state)" in result["msg"]
