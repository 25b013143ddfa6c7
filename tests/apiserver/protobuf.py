"""Decoding the few protobuf request bodies kubectl sends.

kubectl's `create namespace|configmap|secret|serviceaccount` use typed clients, which
send `application/vnd.kubernetes.protobuf` (and accept JSON back). This decodes the
`k8s\\0` envelope (runtime.Unknown) and those kinds' messages, from the field numbers in
k8s.io/api's generated.proto; other kinds are refused with 415, as they never arrive as
protobuf from the clients the tests use (apply and the dynamic client send JSON).
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from .status import ApiStatusError

MAGIC = b"k8s\x00"

Schema = dict[int, tuple[str, Any, bool]]  # field number -> (json name, type, repeated)

_TIME: Schema = {1: ("seconds", "int64", False), 2: ("nanos", "int32", False)}
_OWNER_REF: Schema = {
    1: ("kind", "string", False),
    3: ("name", "string", False),
    4: ("uid", "string", False),
    5: ("apiVersion", "string", False),
    6: ("controller", "bool", False),
    7: ("blockOwnerDeletion", "bool", False),
}
_OBJECT_META: Schema = {
    1: ("name", "string", False),
    2: ("generateName", "string", False),
    3: ("namespace", "string", False),
    5: ("uid", "string", False),
    6: ("resourceVersion", "string", False),
    7: ("generation", "int64", False),
    8: ("creationTimestamp", _TIME, False),
    11: ("labels", ("map", "string"), False),
    12: ("annotations", ("map", "string"), False),
    13: ("ownerReferences", _OWNER_REF, True),
    14: ("finalizers", "string", True),
}
_OBJECT_REF: Schema = {
    1: ("kind", "string", False),
    2: ("namespace", "string", False),
    3: ("name", "string", False),
    4: ("uid", "string", False),
    5: ("apiVersion", "string", False),
    6: ("resourceVersion", "string", False),
    7: ("fieldPath", "string", False),
}
KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {
        1: ("metadata", _OBJECT_META, False),
        2: ("spec", {1: ("finalizers", "string", True)}, False),
        3: ("status", {1: ("phase", "string", False)}, False),
    },
    ("v1", "ConfigMap"): {
        1: ("metadata", _OBJECT_META, False),
        2: ("data", ("map", "string"), False),
        3: ("binaryData", ("map", "bytes"), False),
        4: ("immutable", "bool", False),
    },
    ("v1", "Secret"): {
        1: ("metadata", _OBJECT_META, False),
        2: ("data", ("map", "bytes"), False),
        3: ("type", "string", False),
        4: ("stringData", ("map", "string"), False),
        5: ("immutable", "bool", False),
    },
    ("v1", "ServiceAccount"): {
        1: ("metadata", _OBJECT_META, False),
        2: ("secrets", _OBJECT_REF, True),
        3: ("imagePullSecrets", {1: ("name", "string", False)}, True),
        4: ("automountServiceAccountToken", "bool", False),
    },
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return value.decode()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "bool":
        return bool(value)
    return int(value)


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _wire, value in _fields(data):
        if number not in schema:
            continue
        name, kind, repeated = schema[number]
        if isinstance(kind, tuple):  # map<string, T>: repeated {1: key, 2: value}
            entry = dict((n, v) for n, _w, v in _fields(value))
            obj.setdefault(name, {})[entry.get(1, b"").decode()] = _scalar(kind[1], entry.get(2, b""))
            continue
        decoded = _message(value, kind) if isinstance(kind, dict) else _scalar(kind, value)
        if kind is _TIME:
            decoded = (
                datetime.datetime.fromtimestamp(decoded["seconds"], datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if decoded.get("seconds")
                else None
            )
        if repeated:
            obj.setdefault(name, []).append(decoded)
        elif decoded not in ("", None, {}, 0) or (kind == "bool" and decoded):
            obj[name] = decoded
    return obj


def decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ApiStatusError(400, "BadRequest", "the protobuf body lacks the k8s envelope")
    try:
        envelope = {n: v for n, _w, v in _fields(body[len(MAGIC) :])}
        type_meta = {n: v.decode() for n, _w, v in _fields(envelope.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        schema = KINDS.get((api_version, kind))
        if schema is None:
            raise ApiStatusError(
                415,
                "UnsupportedMediaType",
                f"the test apiserver decodes protobuf only for {sorted(k for _, k in KINDS)}, "
                f"not {api_version} {kind}; send JSON",
            )
        obj = _message(envelope.get(2, b""), schema)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ApiStatusError(400, "BadRequest", f"the protobuf body could not be decoded: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
