"""The `kubectl state` front end: kubectl-like flags, usage errors, and the one error mapping."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml

from kubectl_state import __version__
from kubectl_state.cli.env import Environment
from kubectl_state.cli.main import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Environment(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_help_says_kubectl_state_and_lists_commands() -> None:
    code, out, err = run("--help")
    assert code == 0
    assert out.startswith("usage: kubectl state")
    assert "version" in out
    assert err == ""


def test_unknown_flag_is_one_error_line_plus_usage_hint_and_exit_2() -> None:
    code, out, err = run("version", "--no-such-flag")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines == [
        "error: unknown flag: --no-such-flag",
        "See 'kubectl state version --help' for usage.",
    ]


def test_unknown_command_exits_2() -> None:
    code, _, err = run("frobnicate")
    assert code == 2
    assert err.startswith("error: ")
    assert "frobnicate" in err.splitlines()[0]


def test_bad_flag_value_exits_2() -> None:
    code, _, err = run("version", "-o", "xml")
    assert code == 2
    assert "xml" in err.splitlines()[0]


def test_version_client_only_as_json() -> None:
    code, out, _ = run("version", "--client", "-o", "json")
    assert code == 0
    assert json.loads(out)["clientVersion"]["version"] == __version__


def test_connection_flags_are_accepted_before_and_after_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "missing-kubeconfig"
    for argv in (("--kubeconfig", str(missing), "version", "-o", "yaml"),
                 ("version", "--kubeconfig", str(missing), "-o", "yaml")):
        code, out, _ = run(*argv)
        assert code == 0
        doc = yaml.safe_load(out)
        assert doc["serverVersion"] is None
        assert str(missing) in doc["serverError"]


def test_version_marks_an_unreachable_server_clearly(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    # Port 9 on loopback: nothing listens there, the connection is refused at once.
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "very-secret-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    code, out, err = run("version", "--kubeconfig", str(kubeconfig))
    assert code == 0
    assert f"Client Version: v{__version__}" in out
    assert "Server Version: unavailable (cannot reach https://127.0.0.1:9" in out
    assert "very-secret-token" not in out + err


def test_expected_errors_have_no_traceback_unless_v5(tmp_path: Path) -> None:
    code, _, err = run("version", "--bad")
    assert code == 2 and "Traceback" not in err
    code, _, err = run("-v", "5", "version", "--bad")
    assert code == 2 and "Traceback" in err and "UsageError" in err


def test_user_yaml_files_fail_as_usage_errors_naming_the_file(tmp_path: Path) -> None:
    import pytest

    from kubectl_state.cli.files import load_yaml_file
    from kubectl_state.core.errors import UsageError

    good = tmp_path / "rules.yaml"
    good.write_text("- {group: g, kind: K}\n")
    assert load_yaml_file(str(good), "pause rules") == [{"group": "g", "kind": "K"}]
    with pytest.raises(UsageError, match=f"cannot read tier file {tmp_path}/missing.yaml"):
        load_yaml_file(str(tmp_path / "missing.yaml"), "tier file")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(UsageError, match=f"pause rules {bad} is not YAML"):
        load_yaml_file(str(bad), "pause rules")
