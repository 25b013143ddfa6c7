"""Object files written as text directly, byte for byte what libyaml's emitter writes.

Export spends much of its CPU time turning objects into YAML. libyaml itself is quick, but
feeding it (PyYAML's representer, or even a list of events) costs several times what
writing the text costs. For the JSON data model in block style the layout is simple: two
spaces per level, sequences inside mappings not indented, `{}`/`[]` for empty collections,
and a handful of rules for scalars, which `_scalar` follows:

- style: plain when the text would read back as the same string and holds nothing YAML
  would read otherwise (indicators, spaces or line breaks at the ends, line breaks at all);
  else single-quoted; double quotes (for control characters, a space next to a line break)
  are left to libyaml.
- folding: past column 80 a lone space (not the first or last character) becomes a line
  break and the next line's indent; in single quotes each line break is doubled.

Only ASCII printable text and line feeds are written here, and only simple keys (at most
128 characters, one line). Anything else raises `NotPlain`, and the caller has libyaml
write the whole object: the result is the same bytes, only slower. The property tests in
tests/unit/test_yaml_fast.py hold this module to libyaml's output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

TOP_ORDER = ("apiVersion", "kind", "metadata")
METADATA_ORDER = ("name", "generateName", "namespace")

STR_TAG = "tag:yaml.org,2002:str"
FLOAT_TAG = "tag:yaml.org,2002:float"
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers
_WILDCARD = tuple(_IMPLICIT.get(None, ()))  # None: resolvers PyYAML tries whatever the first character
#: Resolvers by first character, wildcard ones (None: any first character) appended to each.
_BY_FIRST = {first: (*resolvers, *_WILDCARD) for first, resolvers in _IMPLICIT.items() if first is not None}
_FLOATS = yaml.SafeDumper(None)  # type: ignore[arg-type]  # only its represent_float is used, never its stream


def resolved_tag(value: str) -> str:
    """The tag a plain scalar `value` would be read back as (what PyYAML's resolver says)."""
    for tag, regexp in _BY_FIRST.get(value[0] if value else "", _WILDCARD):
        if regexp.match(value):
            return str(tag)
    return STR_TAG


def float_text(value: float) -> str:
    """A float as PyYAML's representer writes it (".inf", "1.0e+20", ...)."""
    return str(_FLOATS.represent_float(value).value)


class NotPlain(Exception):
    """The object holds something this writer does not produce byte for byte."""


#: libyaml's line width: a lone space past this column is written as a line break.
_WIDTH = 80
#: Longer keys are written as complex keys ("? ..."), which this writer does not do.
_MAX_SIMPLE_KEY = 128
#: Strings written exactly as they are in any position (no spaces, so never folded; no
#: indicator characters and none first; not ending in ":", ASCII only), or quoted as they
#: are when they would read back as another type ('1', 'true').
_SIMPLE = re.compile(r"[A-Za-z0-9_./+=][A-Za-z0-9_./+=@~:%,()-]*(?<!:)")
#: Everything this writer can quote or fold itself: ASCII printable characters and "\n".
_WRITABLE = re.compile(r"[\n\x20-\x7e]*")
#: A character YAML reads as an indicator when it comes first.
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
#: ":" followed by whitespace or the end, or "#" after whitespace: block indicators anywhere
#: after the first character (which `_block_indicators` checks on its own).
_INNER_INDICATOR = re.compile(r":(?=[ \n]|\Z)|[ \n]#")
#: A space with no space on either side: the only place a line is folded.
_LONE_SPACE = re.compile(r"(?<! ) (?! )")
_BREAKS = re.compile(r"(\n+)")

#: Texts of strings that are written the same way wherever they appear (`_SIMPLE` ones).
_TEXT: dict[str, str] = {}
_CACHE_MAX = 16384


def _block_indicators(value: str) -> bool:
    first = value[0]
    if first in _FIRST_INDICATORS or value.startswith(("---", "...")):
        return True
    if first in "?:-" and (len(value) == 1 or value[1] in " \n"):
        return True
    return _INNER_INDICATOR.search(value, 1) is not None


def _fold(text: str, column: int, indent: int, out: list[str]) -> None:
    """`text` (one line, quotes already doubled) starting at `column`, its lone spaces past
    the width, other than its first and last character, turned into a line break and
    `indent` spaces. (A line never starts or ends in a space next to a line break: such
    strings need double quotes.)"""
    if column + len(text) <= _WIDTH + 1 or " " not in text:
        out.append(text)
        return
    start, last = 0, len(text) - 1
    for match in _LONE_SPACE.finditer(text, 1):
        at = match.start()
        if at == last:
            break
        if column + at - start > _WIDTH:
            out.append(text[start:at])
            out.append("\n" + " " * indent)
            start, column = at + 1, indent
    out.append(text[start:])


def _scalar(value: str, column: int, indent: int, out: list[str], *, fold: bool = True) -> None:
    """A non-empty string that is not `_SIMPLE`, starting at `column`; with `fold` (never for
    keys) long lines continue on lines indented by `indent`."""
    if not fold:
        column = -2 * len(value)  # lines can never pass the width then
    if _WRITABLE.fullmatch(value) is None or " \n" in value or "\n " in value:
        raise NotPlain  # double quotes (or characters this writer does not classify)
    multiline = "\n" in value
    if (not multiline and value[0] != " " and value[-1] != " " and not _block_indicators(value)
            and resolved_tag(value) == STR_TAG):
        _fold(value, column, indent, out)
        return
    out.append("'")
    column += 1
    if not multiline:
        _fold(value.replace("'", "''"), column, indent, out)
    else:
        pad = " " * indent
        lines = value.replace("'", "''").split("\n")
        if "\n\n" not in value and column + max(map(len, lines)) <= _WIDTH + 1:
            # The common case (config files, scripts): no blank lines and no line long
            # enough to fold. Each line break is doubled and the next line indented.
            out.append(("\n\n" + pad).join(lines))
            out.append("'")
            return
        after_break = False
        for index, part in enumerate(_BREAKS.split(value)):
            if index % 2:  # a run of line breaks: the first one is written twice
                out.append("\n" * (len(part) + 1))
                after_break = True
            elif part:
                if after_break:
                    out.append(pad)
                    column = indent
                _fold(part.replace("'", "''"), column, indent, out)
        if value[-1] == "\n":
            out.append(pad)
    out.append("'")


def _key_text(key: Any) -> str:
    """A key not in `_TEXT`."""
    if type(key) is str:
        if len(key) > _MAX_SIMPLE_KEY or "\n" in key:
            raise NotPlain
        if not key:
            return "''"
        if _SIMPLE.fullmatch(key) is not None and not key.startswith("..."):
            return _simple_text(key)
        parts: list[str] = []
        _scalar(key, 0, 0, parts, fold=False)
        return "".join(parts)
    return _other_text(key)


def _simple_text(value: str) -> str:
    text = value if resolved_tag(value) == STR_TAG else f"'{value}'"
    if len(_TEXT) < _CACHE_MAX and len(value) <= 64:
        _TEXT[value] = text
    return text


def _other_text(value: Any) -> str:
    """A scalar that is not a string."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is float:
        text = float_text(value)
        if resolved_tag(text) != FLOAT_TAG:
            raise NotPlain
        return text
    raise NotPlain  # outside the JSON data model: the reference dumper decides (and raises)


def _value(value: Any, column: int, indent: int, out: list[str]) -> None:
    """A scalar written after a key or a dash at `column`, then the line's end."""
    if type(value) is str:
        text = _TEXT.get(value)
        if text is None:
            if not value:
                text = "''"
            elif _SIMPLE.fullmatch(value) is not None and not value.startswith("..."):
                text = _simple_text(value)
            else:
                _scalar(value, column, indent + 2, out)
                out.append("\n")
                return
        out.append(text + "\n")
    else:
        out.append(_other_text(value) + "\n")


def sorted_keys(mapping: Mapping[Any, Any], first: tuple[str, ...]) -> list[Any]:
    """The archive's key order (`first` in its order, then the rest sorted); the libyaml path uses it too."""
    try:
        keys = sorted(mapping)
    except TypeError:  # keys of mixed types: ordered by their text, as the reference does
        keys = sorted(mapping, key=str)
    if first:
        leading = [key for key in first if key in mapping]
        keys = leading + [key for key in keys if key not in leading]
    return keys


def _mapping(mapping: Mapping[Any, Any], indent: int, inline: bool, out: list[str],
             first: tuple[str, ...] = ()) -> None:
    """Block mapping entries at `indent`; `inline`: the first one continues the current line
    (after "- ", which ends at the same column)."""
    pad = " " * indent
    lead = "" if inline else pad
    texts = _TEXT
    for key in sorted_keys(mapping, first):
        key_text = texts.get(key) if type(key) is str else None
        if key_text is None:
            key_text = _key_text(key)
        value = mapping[key]
        kind = type(value)
        if kind is str:  # most values, and most of those seen before: one line, no calls
            text = texts.get(value)
            if text is not None:
                out.append(f"{lead}{key_text}: {text}\n")
            else:
                out.append(f"{lead}{key_text}: ")
                _value(value, indent + len(key_text) + 2, indent, out)
        elif kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
            if value:
                out.append(f"{lead}{key_text}:\n")
                _mapping(value, indent + 2, False, out,
                         METADATA_ORDER if first is TOP_ORDER and key == "metadata" else ())
            else:
                out.append(f"{lead}{key_text}: {{}}\n")
        elif kind is list or kind is tuple:
            if value:
                out.append(f"{lead}{key_text}:\n")
                _sequence(value, indent, False, out)  # not indented inside a mapping
            else:
                out.append(f"{lead}{key_text}: []\n")
        else:
            out.append(f"{lead}{key_text}: {_other_text(value)}\n")
        lead = pad


def _sequence(sequence: list[Any] | tuple[Any, ...], indent: int, inline: bool, out: list[str]) -> None:
    dash = "- " if inline else " " * indent + "- "
    texts = _TEXT
    for item in sequence:
        kind = type(item)
        if kind is str:
            text = texts.get(item)
            if text is not None:
                out.append(f"{dash}{text}\n")
            else:
                out.append(dash)
                _value(item, indent + 2, indent, out)
        elif kind is dict or (kind is not list and kind is not tuple and isinstance(item, Mapping)):
            if item:
                out.append(dash)
                _mapping(item, indent + 2, True, out)
            else:
                out.append(dash + "{}\n")
        elif kind is list or kind is tuple:
            if item:
                out.append(dash)
                _sequence(item, indent + 2, True, out)
            else:
                out.append(dash + "[]\n")
        else:
            out.append(f"{dash}{_other_text(item)}\n")
        dash = " " * indent + "- "


def dump_text(obj: Mapping[str, Any]) -> str:
    """`obj` (a non-empty mapping) as libyaml writes it in block style, keys in the archive's
    order. Raises NotPlain for what only libyaml writes right."""
    out: list[str] = []
    _mapping(obj, 0, False, out, TOP_ORDER)
    return "".join(out)
