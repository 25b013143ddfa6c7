"""Encrypting Secret values inside an archive, and the age (X25519) strategy for it.

Only the values are encrypted, each on its own, so an encrypted Secret is still a valid
Secret and the archive stays readable and diffable: names, labels and keys remain visible.
Every value of `data` and `stringData` is replaced by base64 of its binary ciphertext (valid
in `data`, whose values must be base64), and so is the last-applied-configuration annotation
if the export kept it, since kubectl copies the whole Secret, values included, into it. The
annotation `kubectl-state.io/encrypted: <scheme>` marks the object; the manifest's
`secretsEncryption` names the scheme and the recipients.

What is encrypted is the exact string stored in the object (for `data`, the base64 text
itself), so decryption gives back the object byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import copy
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kubectl_state.core.errors import ArchiveError, InvalidInputError

ENCRYPTED_ANNOTATION = "kubectl-state.io/encrypted"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
_VALUE_FIELDS = ("data", "stringData")
_MAX_IDENTITY_FILE_BYTES = 1024 * 1024


class SecretEncrypter(Protocol):
    """What the writer needs: a scheme name and recipients for the manifest, and a function
    from one plaintext value to its ciphertext."""

    @property
    def scheme(self) -> str: ...

    @property
    def recipients(self) -> tuple[str, ...]: ...

    def encrypt(self, plaintext: bytes) -> bytes: ...


class SecretDecrypter(Protocol):
    @property
    def scheme(self) -> str: ...

    def decrypt(self, ciphertext: bytes) -> bytes: ...


def is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1" and obj.get("kind") == "Secret"


def encryption_marker(obj: Mapping[str, Any]) -> str | None:
    """The scheme a stored Secret says it is encrypted with, or None."""
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(ENCRYPTED_ANNOTATION) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) else None


def _describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return f"Secret {namespace}/{name}" if namespace else f"Secret {name}"


def encrypt_secret(obj: Mapping[str, Any], encrypter: SecretEncrypter) -> dict[str, Any]:
    """A copy of Secret `obj` with its values encrypted and the marker annotation added."""
    if encryption_marker(obj) is not None:
        # Refused rather than encrypted twice: reading would then return ciphertext.
        raise ArchiveError(f"{_describe(obj)} already carries the reserved annotation {ENCRYPTED_ANNOTATION}")
    out = copy.deepcopy(dict(obj))

    def seal(value: Any, where: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ArchiveError(f"{_describe(obj)} has a non-string value in {where}; refusing to store it")
        return base64.b64encode(encrypter.encrypt(value.encode("utf-8"))).decode("ascii")

    for field in _VALUE_FIELDS:
        values = out.get(field)
        if isinstance(values, dict):
            out[field] = {key: seal(value, field) for key, value in values.items()}
    metadata = out.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    if LAST_APPLIED_ANNOTATION in annotations:
        annotations[LAST_APPLIED_ANNOTATION] = seal(annotations[LAST_APPLIED_ANNOTATION], "annotations")
    annotations[ENCRYPTED_ANNOTATION] = encrypter.scheme
    metadata["annotations"] = annotations
    return out


def decrypt_secret(obj: Mapping[str, Any], decrypter: SecretDecrypter) -> dict[str, Any]:
    """The Secret as it was before `encrypt_secret`. Raises ArchiveError if a value does not
    decrypt (wrong identity, tampered ciphertext) without revealing anything about it."""
    scheme = encryption_marker(obj)
    if scheme != decrypter.scheme:
        raise ArchiveError(f"{_describe(obj)} is encrypted with {scheme!r}, not {decrypter.scheme!r}")
    out = copy.deepcopy(dict(obj))

    def unseal(value: Any, where: str) -> Any:
        if value is None:
            return None
        try:
            ciphertext = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except binascii.Error:
            ciphertext = None
        if ciphertext is None:
            raise ArchiveError(f"{_describe(obj)}: a value in {where} is not base64 ciphertext")
        try:
            return decrypter.decrypt(ciphertext).decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(f"{_describe(obj)}: a value in {where} did not decrypt to text") from None

    for field in _VALUE_FIELDS:
        values = out.get(field)
        if isinstance(values, dict):
            out[field] = {key: unseal(value, field) for key, value in values.items()}
    annotations = dict(out["metadata"]["annotations"])
    del annotations[ENCRYPTED_ANNOTATION]
    if LAST_APPLIED_ANNOTATION in annotations:
        annotations[LAST_APPLIED_ANNOTATION] = unseal(annotations[LAST_APPLIED_ANNOTATION], "annotations")
    if annotations:
        out["metadata"]["annotations"] = annotations
    else:
        del out["metadata"]["annotations"]
    return out


# --- age ------------------------------------------------------------------------------


def _pyrage() -> Any:
    # Imported on first use so that archives without encryption need no native extension.
    try:
        import pyrage  # noqa: PLC0415
    except ImportError:  # pragma: no cover - pyrage is a declared dependency
        raise InvalidInputError("age encryption needs the Python package pyrage (pip install pyrage)") from None
    return pyrage


class AgeEncrypter:
    """Encrypts to one or more age X25519 recipients (`age1...` public keys)."""

    scheme = "age"

    def __init__(self, recipients: Iterable[str]) -> None:
        pyrage = _pyrage()
        self._recipients = tuple(dict.fromkeys(r.strip() for r in recipients))
        if not self._recipients:
            raise InvalidInputError("age encryption needs at least one recipient")
        parsed = []
        for recipient in self._recipients:
            try:
                parsed.append(pyrage.x25519.Recipient.from_str(recipient))
            except pyrage.RecipientError:
                raise InvalidInputError(f"{recipient!r} is not an age X25519 recipient (age1...)") from None
        self._parsed = parsed
        self._encrypt = pyrage.encrypt

    @property
    def recipients(self) -> tuple[str, ...]:
        return self._recipients

    def encrypt(self, plaintext: bytes) -> bytes:
        return bytes(self._encrypt(plaintext, self._parsed))


class AgeDecrypter:
    """Decrypts with age X25519 identities (`AGE-SECRET-KEY-1...`)."""

    scheme = "age"

    def __init__(self, identities: Iterable[str]) -> None:
        pyrage = _pyrage()
        self._identities = []
        for number, identity in enumerate(identities, start=1):
            try:
                self._identities.append(pyrage.x25519.Identity.from_str(identity.strip()))
            except pyrage.IdentityError:
                # Never echo the text: it may be a (slightly mangled) secret key.
                raise InvalidInputError(f"identity {number} is not an age X25519 identity") from None
        if not self._identities:
            raise InvalidInputError("age decryption needs at least one identity")
        self._decrypt = pyrage.decrypt

    @classmethod
    def from_identity_file(cls, path: str | os.PathLike[str]) -> AgeDecrypter:
        """Identities from a file as `age-keygen` writes it: one per line, `#` comments."""
        try:
            with open(path, "rb") as handle:
                raw = handle.read(_MAX_IDENTITY_FILE_BYTES + 1)
        except OSError as exc:
            raise InvalidInputError(f"cannot read age identity file {os.fspath(path)}: {exc.strerror}") from None
        if len(raw) > _MAX_IDENTITY_FILE_BYTES:
            raise InvalidInputError(f"age identity file {os.fspath(path)} is larger than 1 MiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"age identity file {os.fspath(path)} is not UTF-8 text") from None
        lines = [line.strip() for line in text.splitlines()]
        identities = [line for line in lines if line and not line.startswith("#")]
        if not identities:
            raise InvalidInputError(f"age identity file {os.fspath(path)} contains no identities")
        return cls(identities)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return bytes(self._decrypt(ciphertext, self._identities))
        # A native library fed hostile bytes: whatever it raises means "does not decrypt".
        except Exception:
            raise ArchiveError("a Secret value could not be decrypted with the given age identities") from None
