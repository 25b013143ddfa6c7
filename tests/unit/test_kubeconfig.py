"""Our kubeconfig reader behaves as kubectl's for what users' kubeconfigs hold."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_state.core.errors import ConfigError
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.kubeconfig import load_kubeconfig

SECRET_TOKEN = "s3cr3t-token-never-printed"


def kubeconfig(path: Path, *, clusters: dict[str, Any] | None = None, users: dict[str, Any] | None = None,
               contexts: dict[str, Any] | None = None, current: str | None = None) -> Path:
    document: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [{"name": n, "context": c} for n, c in (contexts or {}).items()],
    }
    if current:
        document["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def simple(path: Path, user: dict[str, Any], *, server: str = "https://10.0.0.1:6443") -> Path:
    return kubeconfig(path, clusters={"c": {"server": server}}, users={"u": user},
                      contexts={"ctx": {"cluster": "c", "user": "u", "namespace": "team"}}, current="ctx")


@pytest.fixture(autouse=True)
def _no_ambient_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_kubeconfig_list_is_merged_first_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = kubeconfig(tmp_path / "a", clusters={"c": {"server": "https://first:6443"}},
                       contexts={"ctx": {"cluster": "c"}})
    second = kubeconfig(tmp_path / "b", clusters={"c": {"server": "https://second:6443"},
                                                  "d": {"server": "https://d:6443"}},
                        users={"u": {"token": "t"}},
                        contexts={"ctx": {"cluster": "d"}, "other": {"cluster": "d", "user": "u"}},
                        current="ctx")
    third = kubeconfig(tmp_path / "c", contexts={"ctx": {"cluster": "d"}}, current="other")
    missing = tmp_path / "does-not-exist"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(missing), str(second), str(third)]))

    current = load_kubeconfig()  # current-context from the first file that sets it: b's "ctx"
    assert current.context == "ctx"
    assert current.server == "https://first:6443"  # a's "ctx" and a's "c" win over b's
    other = load_kubeconfig(context="other")
    assert other.server == "https://d:6443"
    assert other.credentials.authorization() == "Bearer t"


def test_default_file_is_home_kube_config(tmp_path: Path) -> None:
    simple(tmp_path / "home" / ".kube" / "config", {"token": "abc"})
    configuration = load_kubeconfig()
    assert configuration.credentials.authorization() == "Bearer abc"
    assert configuration.namespace == "team"


def test_explicit_path_beats_kubeconfig_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(simple(tmp_path / "env", {}, server="https://env:1")))
    explicit = simple(tmp_path / "explicit", {}, server="https://explicit:1")
    assert load_kubeconfig(str(explicit)).server == "https://explicit:1"


def test_relative_paths_resolve_against_the_defining_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "conf"
    (directory / "pki").mkdir(parents=True)
    for name in ("ca.crt", "client.crt", "client.key"):
        (directory / "pki" / name).write_text("pem")
    (directory / "token").write_text("from-file\n")
    path = kubeconfig(directory / "config",
                      clusters={"c": {"server": "https://x:6443", "certificate-authority": "pki/ca.crt"}},
                      users={"u": {"tokenFile": "token", "client-certificate": "pki/client.crt",
                                   "client-key": "pki/client.key"}},
                      contexts={"ctx": {"cluster": "c", "user": "u"}}, current="ctx")
    monkeypatch.chdir(tmp_path)
    configuration = load_kubeconfig(str(path.relative_to(tmp_path)))
    assert configuration.verify == str(directory.resolve() / "pki" / "ca.crt")
    assert configuration.credentials.client_cert() == (str(directory.resolve() / "pki" / "client.crt"),
                                                       str(directory.resolve() / "pki" / "client.key"))
    assert configuration.credentials.authorization() == "Bearer from-file"


def test_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one")
    configuration = load_kubeconfig(str(simple(tmp_path / "config", {"tokenFile": str(token)})))
    assert configuration.credentials.authorization() == "Bearer one"
    token.write_text("second")
    assert configuration.credentials.authorization() == "Bearer second"


def test_basic_auth_and_insecure_cluster(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config",
                      clusters={"c": {"server": "https://x:6443", "insecure-skip-tls-verify": True,
                                      "tls-server-name": "api.internal"}},
                      users={"u": {"username": "admin", "password": "pw"}},
                      contexts={"ctx": {"cluster": "c", "user": "u"}}, current="ctx")
    configuration = load_kubeconfig(str(path))
    assert configuration.verify is False
    assert configuration.tls_server_name == "api.internal"
    assert configuration.credentials.authorization() == "Basic " + base64.b64encode(b"admin:pw").decode()


def test_inline_data_goes_to_private_files_removed_on_close(tmp_path: Path) -> None:
    ca, cert, key = b"CA PEM", b"CERT PEM", b"KEY PEM"
    path = kubeconfig(tmp_path / "config",
                      clusters={"c": {"server": "https://x:6443",
                                      "certificate-authority-data": base64.b64encode(ca).decode()}},
                      users={"u": {"client-certificate-data": base64.b64encode(cert).decode(),
                                   "client-key-data": base64.b64encode(key).decode()}},
                      contexts={"ctx": {"cluster": "c", "user": "u"}}, current="ctx")
    client = KubeClient.from_kubeconfig(str(path))
    ca_path = client.configuration.verify
    pair = client.configuration.credentials.client_cert()
    assert isinstance(ca_path, str) and pair is not None
    for written, data in ((ca_path, ca), (pair[0], cert), (pair[1], key)):
        assert Path(written).read_bytes() == data
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
    client.close()
    assert not any(Path(p).exists() for p in (ca_path, *pair))


@pytest.mark.parametrize(("setup", "expected"), [
    ({"current": None}, "has no current-context"),
    ({"context": "nope"}, "context 'nope' is not in kubeconfig"),
    ({"cluster": "gone"}, "cluster 'gone' of context 'ctx' is not in kubeconfig"),
    ({"user": "gone"}, "user 'gone' of context 'ctx' is not in kubeconfig"),
])
def test_missing_pieces_are_named(tmp_path: Path, setup: dict[str, Any], expected: str) -> None:
    path = kubeconfig(tmp_path / "config", clusters={"c": {"server": "https://x:6443"}}, users={"u": {}},
                      contexts={"ctx": {"cluster": setup.get("cluster", "c"), "user": setup.get("user", "u")}},
                      current=setup.get("current", "ctx"))
    with pytest.raises(ConfigError, match=expected) as caught:
        load_kubeconfig(str(path), setup.get("context"))
    assert str(path) in caught.value.message


@pytest.mark.parametrize(("text", "expected"), [
    ("clusters: [\n  - name: a\n", "is not valid YAML"),
    ("- just\n- a list\n", "is not a mapping"),
    ("clusters: 3\n", "'clusters' is not a list"),
])
def test_invalid_files_are_refused_with_their_name(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_kubeconfig(str(path))
    assert str(path) in caught.value.message


def test_absent_files_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_kubeconfig(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"\.kube/config"):
        load_kubeconfig()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="none of the files in \\$KUBECONFIG exist"):
        load_kubeconfig()


def test_auth_provider_is_refused_clearly(tmp_path: Path) -> None:
    path = simple(tmp_path / "config", {"auth-provider": {"name": "gcp", "config": {}}})
    with pytest.raises(ConfigError, match=r"auth-provider 'gcp'.*not supported"):
        load_kubeconfig(str(path))


def plugin(tmp_path: Path, *, status: dict[str, Any] | None = None, fail: bool = False,
           api_version: str = "client.authentication.k8s.io/v1") -> Path:
    """A real exec plugin: records each run (its args, env and KUBERNETES_EXEC_INFO), prints an ExecCredential."""
    script = tmp_path / "bin" / "plugin"
    script.parent.mkdir(exist_ok=True)
    answer = {"apiVersion": api_version, "kind": "ExecCredential",
              "status": status if status is not None else {"token": SECRET_TOKEN}}
    script.write_text(f"""#!{sys.executable}
import json, os, sys
with open({str(tmp_path / "runs")!r}, "a") as log:
    log.write(json.dumps({{"args": sys.argv[1:], "extra": os.environ.get("EXTRA"),
                           "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"])}}) + "\\n")
if {fail!r}:
    print({SECRET_TOKEN!r})
    sys.stderr.write("some detail\\nerror: the identity provider refused the login\\n")
    sys.exit(3)
print(json.dumps({answer!r}))
""")
    script.chmod(0o755)
    return script


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "runs"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def exec_kubeconfig(tmp_path: Path, api_version: str = "client.authentication.k8s.io/v1") -> Path:
    # "./bin/plugin" is relative to the kubeconfig's directory, as kubectl resolves it.
    return simple(tmp_path / "config", {"exec": {
        "apiVersion": api_version, "command": "./bin/plugin", "args": ["get-token", "--cluster=x"],
        "env": [{"name": "EXTRA", "value": "yes"}], "provideClusterInfo": True}})


@pytest.mark.parametrize("api_version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
def test_exec_plugin_token_is_cached_until_it_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      api_version: str) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plugin(tmp_path, status={"token": SECRET_TOKEN, "expirationTimestamp": later}, api_version=api_version)
    monkeypatch.chdir("/")
    credentials = load_kubeconfig(str(exec_kubeconfig(tmp_path, api_version))).credentials
    assert runs(tmp_path) == []  # run on first use, not while reading the file
    threads = [threading.Thread(target=credentials.authorization) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert credentials.authorization() == f"Bearer {SECRET_TOKEN}"
    [run] = runs(tmp_path)  # one run served every thread
    assert run["args"] == ["get-token", "--cluster=x"]
    assert run["extra"] == "yes"
    assert run["info"] == {"apiVersion": api_version, "kind": "ExecCredential",
                           "spec": {"interactive": False, "cluster": {"server": "https://10.0.0.1:6443"}}}


def test_exec_plugin_is_run_again_when_expired(tmp_path: Path) -> None:
    earlier = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    plugin(tmp_path, status={"token": SECRET_TOKEN, "expirationTimestamp": earlier})
    credentials = load_kubeconfig(str(exec_kubeconfig(tmp_path))).credentials
    credentials.authorization()
    credentials.authorization()
    assert len(runs(tmp_path)) == 2


def test_exec_plugin_client_certificate_goes_to_private_files(tmp_path: Path) -> None:
    plugin(tmp_path, status={"clientCertificateData": "CERT PEM", "clientKeyData": "KEY PEM"})
    configuration = load_kubeconfig(str(exec_kubeconfig(tmp_path)))
    assert configuration.credentials.authorization() is None
    pair = configuration.credentials.client_cert()
    assert pair is not None
    assert [Path(p).read_text() for p in pair] == ["CERT PEM", "KEY PEM"]
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in pair)
    configuration.close()
    assert not any(Path(p).exists() for p in pair)


def test_failing_exec_plugin_says_why_without_the_token(tmp_path: Path) -> None:
    plugin(tmp_path, fail=True)
    credentials = load_kubeconfig(str(exec_kubeconfig(tmp_path))).credentials
    with pytest.raises(ConfigError, match=r"exit status 3.*the identity provider refused the login") as caught:
        credentials.authorization()
    assert SECRET_TOKEN not in caught.value.message
    assert "some detail" not in caught.value.message  # only the last line


def test_exec_plugin_with_a_bad_answer_does_not_echo_it(tmp_path: Path) -> None:
    plugin(tmp_path, status={"token": SECRET_TOKEN}, api_version="client.authentication.k8s.io/v1beta1")
    credentials = load_kubeconfig(str(exec_kubeconfig(tmp_path))).credentials  # asks for v1
    with pytest.raises(ConfigError, match="did not print a valid ExecCredential") as caught:
        credentials.authorization()
    assert SECRET_TOKEN not in caught.value.message


def test_missing_exec_plugin_shows_the_install_hint(tmp_path: Path) -> None:
    path = simple(tmp_path / "config", {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                 "command": "kubectl-state-no-such-plugin",
                                                 "installHint": "install it from example.org"}})
    with pytest.raises(ConfigError, match=r"cannot run exec plugin.*install it from example.org"):
        load_kubeconfig(str(path)).credentials.authorization()
