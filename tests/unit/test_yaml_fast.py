"""The archive's YAML writer (`dump_object`) takes shortcuts for speed; these tests hold it to
the bytes libyaml's CSafeDumper writes for the same object in the same key order, because
archives' per-object sha256 and `diff` output must not change when the writer does.

The oracle is written out here on its own (key order, then one yaml.dump call), not taken
from the module under test.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kubectl_state.core.archive.yaml_fast import NotPlain, dump_text
from kubectl_state.core.archive.yamlcodec import dump_object, load_object

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _reordered(value: Any, first: tuple[str, ...] = ()) -> Any:
    if isinstance(value, dict):
        keys = [key for key in first if key in value] + sorted(key for key in value if key not in first)
        return {key: _reordered(value[key], ("name", "generateName", "namespace")
                                if first and key == "metadata" else ()) for key in keys}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def reference(obj: dict[str, Any]) -> bytes:
    """What the archive format is defined by: CSafeDumper, block style, unicode kept, the
    archive's key order (apiVersion, kind, metadata with name/generateName/namespace first,
    everything else sorted at every level)."""
    text = yaml.dump(_reordered(obj, ("apiVersion", "kind", "metadata")), Dumper=yaml.CSafeDumper,
                     default_flow_style=False, sort_keys=False, allow_unicode=True)
    return text.encode("utf-8")


def same_data(left: Any, right: Any) -> bool:
    """Equality that also holds for NaN and tells 1 from 1.0 and True from 1."""
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_data(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same_data(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def check(obj: dict[str, Any]) -> None:
    fast = dump_object(obj)
    assert fast == reference(obj)
    assert same_data(yaml.safe_load(fast.decode("utf-8")), obj)


# Strings every emitter shortcut has to get right: ones that would read back as another type,
# indicators, whitespace at the ends, line breaks, non-ASCII, control characters, long texts.
NASTY = [
    "", " ", "  ", "a ", " a", "yes", "No", "ON", "off", "y", "n", "true", "False", "null", "Null", "~", "NULL",
    "1", "-1", "+1", "01", "0o17", "0x1", "0xFF", "1e3", "1E3", "1.5", ".5", "5.", "1_000", "1:30", "190:20:30",
    ".inf", "-.Inf", ".nan", "NaN", "2024-01-01", "2024-01-01T10:00:00Z", "2001-12-14 21:59:43.10 -5",
    ":", "::", "a:", "a:b", "a: b", "a :b", "#", "a#b", "a #b", "- ", "-", "--", "---", "...", "... x", "--- x",
    "-a", "?", "? a", "?a", "[", "]", "{", "}", "[a]", "{a: b}", ",", "a,b", "&a", "*a", "!a", "!!str", "|", ">",
    "'", "''", '"', "'a'", '"a"', "%", "%YAML", "@a", "`a", "<<", "=", "a=b", "a\tb", "\t", "a\n", "\na",
    "a\nb", "a\n\nb\n", "a\r\nb", "a\rb", "a \nb", "a\n b", "trailing\n\n", "\x00", "a\x07b", "\x7f", "\x85",
    "\u2028", "\u2029", "\ufeff", "\ue000", "é", "日本語", "emoji \U0001f600", "a\u00a0b", "\u00a0",
    "http://example.com/path?q=1#frag", "registry.example.com/shop/web:1.27.3", "100m", "128Mi", "25%",
    "platform@team-00.example.com", "x" * 200, "word " * 40, ("word " * 40).strip(), "a" * 79 + " b" * 5,
    "k" * 129, "=" * 3, "+", "+a", ".", "..", "./a", "/", "a/b=c",
]

keys = st.sampled_from(NASTY) | st.text(max_size=12) | st.from_regex(r"[a-zA-Z][a-zA-Z0-9._/-]{0,20}", fullmatch=True)
strings = (st.sampled_from(NASTY) | st.text() | st.from_regex(r"[a-zA-Z0-9._/+=:@%-]{1,30}", fullmatch=True)
           | st.lists(st.sampled_from(["word", "a", "", " ", "longer-word", "x" * 30, "\n", "é", "#", ":"]),
                      max_size=40).map(" ".join))
scalars = st.none() | st.booleans() | st.integers() | st.floats() | strings
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
                      max_leaves=30)
objects = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["v1", "apps/v1", "example.com/v1alpha1"]), "kind": strings,
     "metadata": st.fixed_dictionaries({"name": strings}, optional={"namespace": strings, "generateName": strings,
                                                                   "labels": st.dictionaries(keys, strings),
                                                                   "annotations": st.dictionaries(keys, strings)})},
    optional={"data": st.dictionaries(keys, strings), "spec": values, "status": values, "items": st.lists(values)},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=objects, extra=st.dictionaries(keys, values, max_size=4))
@example(obj={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, extra={})
def test_fast_dump_is_byte_identical_to_csafedumper_and_round_trips(obj: dict[str, Any],
                                                                    extra: dict[str, Any]) -> None:
    check({**extra, **obj})


#: Pieces of strings the text writer handles itself or must hand over: words, long words,
#: spaces (folding), line breaks, quotes, indicators, and characters outside its domain.
PIECES = ["a", "word", "x" * 30, " ", "  ", "\n", "\n\n", "'", "''", '"', ":", ": ", "#", " #", "-", "- ", "?",
          "...", "---", "1", "1.5", "true", "~", ",", "[", "{", "&", "*", "!", "|", ">", "%", "@", "`", "=",
          "é", "\t", "\r", "\\", "\x00", "\x85", "\u2028"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
#: What the text writer promises to write itself (libyaml is used for the rest).
IN_DOMAIN = re.compile(r"[\n\x20-\x7e]*")


def in_domain(text: str, *, key: bool) -> bool:
    if IN_DOMAIN.fullmatch(text) is None or " \n" in text or "\n " in text:
        return False
    return not key or ("\n" not in text and len(text) <= 128)


@settings(max_examples=1500, deadline=None)
@given(text=texts, key=st.text(alphabet="abcdefghij-./", min_size=1, max_size=60),
       path=st.lists(st.sampled_from(["map", "seq"]), max_size=6), as_key=st.booleans())
def test_any_string_at_any_column_and_depth(text: str, key: str, path: list[str], as_key: bool) -> None:
    """The scalar rules (style, quoting, folding at column 80, continuation indent) hold
    wherever the string is: after keys of any length, at any depth, in sequences; and the
    text writer (not libyaml) writes every string of its domain."""
    node: Any = {text: "v"} if as_key else {key: text}
    for step in reversed(path):
        node = [node, text] if step == "seq" else {key: node, "z": text}
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": node}
    check(obj)
    if in_domain(text, key=as_key):
        assert dump_text(obj).encode() == reference(obj)


def test_strings_outside_the_domain_are_left_to_libyaml() -> None:
    for text in ["é", "a\tb", "a \nb", "a\n b", "\x00", "k" * 129]:
        with pytest.raises(NotPlain):
            dump_text({"apiVersion": "v1", "kind": "K", "metadata": {"name": "n"}, "data": {"k": text, text: "v"}})


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("where", ["value", "key", "item", "nested"])
def test_each_nasty_string_in_each_position(text: str, where: str) -> None:
    meta = {"name": "n", "namespace": "ns"}
    positions: dict[str, dict[str, Any]] = {
        "value": {"data": {"k": text}},
        "key": {"data": {text: "v"}},
        "item": {"spec": {"args": ["a", text, "b"]}},
        "nested": {"spec": {"list": [{"k": text, "l": [[text], {text: text}]}]}},
    }
    placed = positions[where]
    check({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **placed})


def _discovery_documents() -> list[Path]:
    return sorted((FIXTURES / "kubernetes-discovery").glob("*.json"))


@pytest.mark.parametrize("path", _discovery_documents(), ids=lambda p: p.name)
def test_real_fixture_documents_and_each_of_their_entries(path: Path) -> None:
    """The fixtures are the real API documents the test server serves: whole, and every
    resource entry in them, with the fields an object file always has."""
    document = json.loads(path.read_text())
    check(document)
    for entry in document.get("resources") or document.get("groups") or []:
        check({"apiVersion": "v1", "kind": "Entry", "metadata": {"name": str(entry.get("name"))}, "entry": entry})


def test_load_object_reads_back_every_fast_dump() -> None:
    """The archive's own strict loader (not only safe_load) reads what the writer writes."""
    for text in NASTY:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": {"k": text, text: [text]}}
        assert load_object(dump_object(obj)) == obj


@pytest.mark.parametrize("length", range(70, 90))
@pytest.mark.parametrize("shape", ["plain", "quoted", "multiline", "blank-lines"])
def test_a_space_is_folded_exactly_past_column_80(length: int, shape: str) -> None:
    """Lone spaces right around the width: the first one past column 80 starts a new line,
    in plain text, in single quotes, and in the lines of a multi-line string."""
    word = "a" * length
    text = {"plain": f"{word} b c", "quoted": f"{word} b c ", "multiline": f"x\n{word} b c\n",
            "blank-lines": f"x\n\n{word} b c"}[shape]
    for obj in ({"apiVersion": "v1", "kind": "K", "metadata": {"name": "n"}, "k": text},
                {"apiVersion": "v1", "kind": "K", "metadata": {"name": "n"}, "spec": {"list": [text, {"key": text}]}}):
        assert dump_text(obj).encode() == reference(obj)
