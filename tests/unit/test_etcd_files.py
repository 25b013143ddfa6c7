"""Pure file logic of the etcd level: atomic private files, snapshot integrity checks, CLI credentials."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from kubectl_state.cli.commands.etcd import credentials
from kubectl_state.cli.env import Environment
from kubectl_state.core.errors import InvalidInputError, UsageError
from kubectl_state.core.etcd.files import AtomicFile
from kubectl_state.core.etcd.keys_archive import parse_rewrite
from kubectl_state.core.etcd.snapshot import SnapshotIntegrityError, check_integrity, default_token


def fake_snapshot(path: Path, pages: int = 3) -> bytes:
    db = os.urandom(4096 * pages)
    path.write_bytes(db + hashlib.sha256(db).digest())
    return db


def test_atomic_file_appears_only_on_commit_with_mode_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with AtomicFile(tmp_path / "f") as f:
            f.write(b"data")
            assert not (tmp_path / "f").exists()
            f.commit()
    finally:
        os.umask(old)
    assert (tmp_path / "f").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_file_left_by_an_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), AtomicFile(tmp_path / "f") as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_snapshot_with_intact_trailer_passes(tmp_path: Path) -> None:
    db = fake_snapshot(tmp_path / "s.db")
    assert check_integrity(tmp_path / "s.db") == ("trailer", hashlib.sha256(db).hexdigest(), None)


@pytest.mark.parametrize("cut", [1, 32, 4096, 5000])
def test_snapshot_cut_short_is_refused_when_metadata_is_there(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "s.db"
    db = fake_snapshot(path)
    meta = {"format": "kubectl-state/etcd-snapshot", "fileSize": len(db) + 32,
            "sha256": hashlib.sha256(db).hexdigest()}
    Path(f"{path}.meta.json").write_text(json.dumps(meta))
    assert check_integrity(path)[0] == "trailer+metadata"
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(SnapshotIntegrityError, match="truncated"):
        check_integrity(path)


def test_snapshot_with_flipped_byte_is_refused_by_its_trailer(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    fake_snapshot(path)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotIntegrityError, match="fails its sha256 check"):
        check_integrity(path)


def test_db_without_trailer_or_metadata_is_left_to_etcdutl(tmp_path: Path) -> None:
    (tmp_path / "db").write_bytes(os.urandom(8192))
    assert check_integrity(tmp_path / "db") == ("etcdutl", None, None)


def test_missing_snapshot_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_integrity(tmp_path / "nope")


def test_restore_token_is_shared_by_members_and_new_per_membership() -> None:
    a = default_token("ab", "m1=http://a:2380,m2=http://b:2380")
    assert a == default_token("ab", "m1=http://a:2380,m2=http://b:2380")
    assert a != default_token("ab", "m1=http://a:2380,m2=http://c:2380")
    assert a != default_token("cd", "m1=http://a:2380,m2=http://b:2380")


def test_prefix_rewrite_parsing() -> None:
    assert parse_rewrite("/registry:/kubernetes.io") == (b"/registry", b"/kubernetes.io")
    for bad in ("/registry", ":/x", "/x:"):
        with pytest.raises(InvalidInputError):
            parse_rewrite(bad)


def args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"user": None, "password_file": None, **kw})


def test_credentials_come_from_file_env_or_user_colon_password(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from-file\nignored\n")
    env = Environment(environ={"ETCDCTL_PASSWORD": "from-env"})
    assert credentials(args(user="root", password_file=str(pw)), env) == ("root", "from-file")
    assert credentials(args(user="root"), env) == ("root", "from-env")
    assert credentials(args(user="root:inline"), Environment(environ={})) == ("root", "inline")
    assert credentials(args(), Environment(environ={"ETCDCTL_USER": "u", "ETCDCTL_PASSWORD": "p"})) == ("u", "p")
    assert credentials(args(), Environment(environ={})) == (None, None)


def test_user_without_any_password_source_is_a_usage_error_naming_the_options() -> None:
    with pytest.raises(UsageError, match="--password-file FILE or set ETCDCTL_PASSWORD"):
        credentials(args(user="root"), Environment(environ={}))


FAKE_ETCDUTL = """#!/bin/sh
# A stand-in for etcdutl 3.5.10+: says it supports --bump-revision and records how it was called.
case "$*" in
  *"restore --help"*) echo "      --bump-revision uint64   How much to increase the latest revision after restore";
                      echo "      --mark-compacted   Mark the latest revision after restore as compacted"; exit 0;;
  "snapshot status"*) echo '{"hash":1,"revision":42,"totalKey":7,"totalSize":12288}'; exit 0;;
  "snapshot restore"*) echo "$@" > "$ARGS_FILE"; for a in "$@"; do case "$a" in --data-dir=*)
                        mkdir -p "${a#--data-dir=}/member";; esac; done; exit 0;;
esac
exit 1
"""


def test_restore_bumps_and_marks_compacted_where_the_tool_supports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubectl_state.core.etcd.snapshot import DEFAULT_BUMP_REVISION, restore_snapshot

    tool = tmp_path / "etcdutl"
    tool.write_text(FAKE_ETCDUTL)
    tool.chmod(0o755)
    monkeypatch.setenv("ARGS_FILE", str(tmp_path / "args"))
    fake_snapshot(tmp_path / "s.db")
    result = restore_snapshot(tmp_path / "s.db", name="m1", data_dir=tmp_path / "data",
                              initial_cluster="m1=http://10.0.0.1:2380",
                              initial_advertise_peer_urls="http://10.0.0.1:2380", tool=str(tool))
    called = (tmp_path / "args").read_text().split()
    assert f"--bump-revision={DEFAULT_BUMP_REVISION}" in called and "--mark-compacted" in called
    assert (result.revision, result.bumped_by, result.compaction_needed) == (42, DEFAULT_BUMP_REVISION, False)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
