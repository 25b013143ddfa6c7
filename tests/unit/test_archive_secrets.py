"""Secrets encryption with age: values encrypted one by one, objects still valid Secrets,
no plaintext anywhere in the archive's bytes, and clear errors without the right identity."""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from kubectl_state.core.archive import (
    ENCRYPTED_ANNOTATION,
    AgeDecrypter,
    AgeEncrypter,
    ProblemKind,
    YamlStreamWriter,
    open_archive,
    open_archive_writer,
    verify,
)
from kubectl_state.core.errors import ArchiveError, InvalidInputError
from tests.unit.test_archive_support import SOURCE, configmap, read_all, resign

PASSWORD = "hunter2-correct-horse-battery"
TOKEN = "s3cr3t-t0ken-value-42"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def the_secret() -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"}}
    return {
        **body,
        "metadata": {
            "name": "db",
            "namespace": "default",
            "labels": {"app": "db"},
            # kubectl apply copies the whole Secret, values included, into this annotation.
            "annotations": {LAST_APPLIED: json.dumps({**body, "data": {"password": b64(PASSWORD)}})},
        },
        "type": "Opaque",
        "data": {"password": b64(PASSWORD), "empty": ""},
        "stringData": {"token": TOKEN},
    }


FORBIDDEN = [PASSWORD, b64(PASSWORD), TOKEN, b64(TOKEN)]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path_factory.mktemp("age") / "key.txt"
    key_file.write_text(f"# created: 2025-01-01\n# public key: {identity.to_public()}\n{identity}\n")
    return str(identity.to_public()), key_file


@pytest.fixture(params=["backup", "backup.tar.gz"], ids=["directory", "tar.gz"])
def encrypted(request: pytest.FixtureRequest, tmp_path: Path, keys: tuple[str, Path]) -> Path:
    path = tmp_path / str(request.param)
    with open_archive_writer(path, source=SOURCE, encryption=AgeEncrypter([keys[0]])) as writer:
        writer.add_object("", "v1", "secrets", "Secret", True, the_secret())
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("plain", key="visible"))
        writer.commit()
    return path


def raw_bytes(path: Path) -> bytes:
    if path.is_dir():
        return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
    return path.read_bytes() + gzip.decompress(path.read_bytes())


def test_encrypted_secrets_round_trip_with_the_identity(encrypted: Path, keys: tuple[str, Path]) -> None:
    objects = {obj["kind"]: obj for _, obj in read_all(encrypted, decrypter=AgeDecrypter.from_identity_file(keys[1]))}
    assert objects["Secret"] == the_secret()
    assert objects["ConfigMap"]["data"] == {"key": "visible"}


def test_no_plaintext_secret_value_appears_anywhere_in_the_archive(encrypted: Path) -> None:
    data = raw_bytes(encrypted)
    assert b"visible" in data  # the check can see plaintext when there is some
    for value in FORBIDDEN:
        assert value.encode() not in data


def test_encrypted_secret_is_still_a_valid_secret_with_a_marker(encrypted: Path) -> None:
    with open_archive(encrypted) as archive:
        [(_, stored)] = [(e, o) for e, o in archive.iter_objects(decrypt_secrets=False) if o["kind"] == "Secret"]
    assert stored["metadata"]["annotations"][ENCRYPTED_ANNOTATION] == "age"
    assert stored["metadata"]["labels"] == {"app": "db"}
    assert set(stored["data"]) == {"password", "empty"}
    for value in [*stored["data"].values(), *stored["stringData"].values()]:
        assert base64.b64decode(value, validate=True).startswith(b"age-encryption.org/v1")


def test_manifest_names_the_scheme_and_recipients(encrypted: Path, keys: tuple[str, Path]) -> None:
    with open_archive(encrypted) as archive:
        encryption = archive.manifest.secrets_encryption
    assert encryption is not None
    assert (encryption.scheme, encryption.recipients) == ("age", (keys[0],))


def test_reading_encrypted_secrets_without_an_identity_is_a_clear_error(encrypted: Path) -> None:
    with open_archive(encrypted) as archive:
        assert archive.needs_decrypter
        with pytest.raises(ArchiveError, match="encrypted with age; an age identity is needed"):
            list(archive.iter_objects())


def test_the_wrong_identity_cannot_decrypt(encrypted: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    with pytest.raises(ArchiveError, match="could not be decrypted"):
        read_all(encrypted, decrypter=AgeDecrypter.from_identity_file(other))


def test_verify_checks_encrypted_archives_without_an_identity_and_decrypts_with_one(
    encrypted: Path, keys: tuple[str, Path], tmp_path: Path
) -> None:
    assert verify(encrypted).ok
    assert verify(encrypted, decrypter=AgeDecrypter.from_identity_file(keys[1])).ok
    other = tmp_path / "other.txt"
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    report = verify(encrypted, decrypter=AgeDecrypter.from_identity_file(other))
    assert [p.kind for p in report.problems] == [ProblemKind.DECRYPTION_FAILED]


def test_a_plaintext_secret_in_an_encrypted_archive_is_refused(tmp_path: Path, keys: tuple[str, Path]) -> None:
    path = tmp_path / "d"
    with open_archive_writer(path, source=SOURCE, encryption=AgeEncrypter([keys[0]])) as writer:
        writer.add_object("", "v1", "secrets", "Secret", True, the_secret())
        writer.commit()
    resign(path, "resources/secrets/namespaces/default/db.yaml", yaml.safe_dump(the_secret()).encode())
    with pytest.raises(ArchiveError, match="encrypted with age but this one is not"):
        read_all(path, decrypter=AgeDecrypter.from_identity_file(keys[1]))
    assert [p.kind for p in verify(path).problems] == [ProblemKind.ENCRYPTION_MISMATCH]


def test_each_value_is_encrypted_separately(keys: tuple[str, Path]) -> None:
    encrypter = AgeEncrypter([keys[0]])
    assert encrypter.encrypt(b"same") != encrypter.encrypt(b"same")  # fresh file key each time


def test_a_stream_can_be_encrypted_too(keys: tuple[str, Path]) -> None:
    out = io.StringIO()
    with YamlStreamWriter(out, encryption=AgeEncrypter([keys[0]])) as stream:
        stream.add_object("", "v1", "secrets", "Secret", True, the_secret())
        stream.commit()
    for value in FORBIDDEN:
        assert value not in out.getvalue()


def test_encryption_does_not_change_the_callers_object(tmp_path: Path, keys: tuple[str, Path]) -> None:
    obj = the_secret()
    before = copy.deepcopy(obj)
    with open_archive_writer(tmp_path / "d", source=SOURCE, encryption=AgeEncrypter([keys[0]])) as writer:
        writer.add_object("", "v1", "secrets", "Secret", True, obj)
    assert obj == before


def test_an_invalid_recipient_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not an age X25519 recipient"):
        AgeEncrypter(["age1notakey"])


def test_a_bad_identity_file_is_refused_without_echoing_its_content(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("AGE-SECRET-KEY-1SOMETHINGSECRETBUTBROKEN\n")
    with pytest.raises(InvalidInputError) as caught:
        AgeDecrypter.from_identity_file(bad)
    assert "SOMETHINGSECRET" not in str(caught.value)
    with pytest.raises(InvalidInputError, match="cannot read age identity file"):
        AgeDecrypter.from_identity_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# only a comment\n")
    with pytest.raises(InvalidInputError, match="contains no identities"):
        AgeDecrypter.from_identity_file(tmp_path / "empty.txt")
