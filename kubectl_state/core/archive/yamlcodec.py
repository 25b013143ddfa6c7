"""Object files as YAML: a stable, readable dump and a loader that trusts nothing.

Dump: block style, `apiVersion`, `kind`, `metadata` first and every other key sorted, so
two exports of the same object are byte-identical and diff well.

Load: only the JSON data model (maps, lists, strings, numbers, booleans, null) comes back.
Anchors and aliases are refused outright (Kubernetes objects never need them, and they are
how a few hundred bytes expand to gigabytes), as are explicit tags, documents over a size
limit, nesting deeper than a limit, invalid UTF-8 and more than one document.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event, NodeEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from kubectl_state.core.archive.limits import DEFAULT_LIMITS
from kubectl_state.core.archive.yaml_fast import (
    METADATA_ORDER,
    TOP_ORDER,
    NotPlain,
    dump_text,
    float_text,
    resolved_tag,
    sorted_keys,
)
from kubectl_state.core.errors import ArchiveError

try:  # libyaml is several times faster; PyYAML without it is still correct.
    from yaml import CSafeDumper as _Dumper
    from yaml._yaml import CEmitter as _Emitter
    from yaml._yaml import CParser as _Parser

    _HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]

    _HAVE_LIBYAML = False


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


def _ordered(obj: Mapping[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    out = {key: obj[key] for key in first if key in obj}
    out.update((key, obj[key]) for key in sorted(obj, key=str) if key not in out)
    return out


def _dump_with_representer(obj: Mapping[str, Any]) -> bytes:
    """The reference dump: PyYAML's representer builds a node tree, its serializer emits it.
    `dump_object` produces the same bytes faster; this remains for what that cannot handle."""
    body = _sorted(obj)
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        body["metadata"] = _ordered(metadata, METADATA_ORDER)
    text = yaml.dump(
        _ordered(body, TOP_ORDER),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
    )
    return text.encode("utf-8")


# --- the event path -------------------------------------------------------------------------
#
# For objects yaml_fast cannot write as text (non-ASCII, double-quoted strings, long keys).
# Export spends most of its CPU time dumping objects, and nearly all of that in PyYAML's
# representer and resolver (pure Python, once per node) rather than in libyaml's emitter.
# JSON-shaped data needs neither: the events below are exactly those the representer and
# serializer would hand to the emitter (block style, no anchors, a tag marked implicit when
# the plain scalar resolves back to it), so libyaml writes the same bytes. Anything outside
# the JSON data model goes the reference way, which also raises the reference errors.

_TAG = "tag:yaml.org,2002:"
_STR_TAG, _MAP_TAG, _SEQ_TAG = _TAG + "str", _TAG + "map", _TAG + "seq"
_NULL_TAG, _BOOL_TAG, _INT_TAG, _FLOAT_TAG = _TAG + "null", _TAG + "bool", _TAG + "int", _TAG + "float"
_STREAM_START = yaml.StreamStartEvent()
_STREAM_END = yaml.StreamEndEvent()
_DOC_START = yaml.DocumentStartEvent(explicit=False)
_DOC_END = yaml.DocumentEndEvent(explicit=False)
_MAP_END = yaml.MappingEndEvent()
_SEQ_END = yaml.SequenceEndEvent()


class _NotJson(Exception):
    """A value outside the JSON data model: dump it the reference way."""


#: Events of strings seen before. Keys repeat in every object (name, labels, spec...) and
#: so do many values; events are never modified once built, so one can be emitted many times.
_STRINGS: dict[str, yaml.ScalarEvent] = {}
_STRINGS_MAX = 16384


def _string(value: str) -> yaml.ScalarEvent:
    event = _STRINGS.get(value)
    if event is None:
        # A string that reads back as something else (true, 1.5, null, "") is quoted by the
        # emitter when told that its plain form is not implicitly a string.
        event = yaml.ScalarEvent(None, _STR_TAG, (resolved_tag(value) == _STR_TAG, True), value)
        if len(_STRINGS) < _STRINGS_MAX and len(value) <= 64:
            _STRINGS[value] = event
    return event


def _scalar(value: Any) -> yaml.ScalarEvent:
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is bool:
        text, tag = ("true" if value else "false"), _BOOL_TAG
    elif kind is int:
        text, tag = str(value), _INT_TAG
    elif value is None:
        text, tag = "null", _NULL_TAG
    elif kind is float:
        text, tag = float_text(value), _FLOAT_TAG
    else:
        raise _NotJson
    return yaml.ScalarEvent(None, tag, (resolved_tag(text) == tag, False), text)


def _events(value: Any, out: list[yaml.Event], first: tuple[str, ...] = ()) -> None:
    kind = type(value)
    if kind is str:  # the commonest case first: no ABC checks for it
        out.append(_string(value))
    elif kind is dict or (kind is not list and isinstance(value, Mapping)):
        out.append(yaml.MappingStartEvent(None, _MAP_TAG, True, flow_style=False))
        for key in sorted_keys(value, first):
            out.append(_string(key) if type(key) is str else _scalar(key))
            item = value[key]
            if type(item) is str:
                out.append(_string(item))
            else:
                _events(item, out, METADATA_ORDER if first is TOP_ORDER and key == "metadata" else ())
        out.append(_MAP_END)
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        out.append(yaml.SequenceStartEvent(None, _SEQ_TAG, True, flow_style=False))
        for item in value:
            _events(item, out)
        out.append(_SEQ_END)
    else:
        out.append(_scalar(value))


def dump_object(obj: Mapping[str, Any]) -> bytes:
    """`obj` as a UTF-8 YAML document in the archive's canonical key order: `apiVersion`,
    `kind`, `metadata` (`name`, `generateName`, `namespace` first), then every other key
    sorted, at every level."""
    if not _HAVE_LIBYAML:  # pragma: no cover - the pure-Python emitter gains nothing from events
        return _dump_with_representer(obj)
    if type(obj) is dict and obj:
        try:
            return dump_text(obj).encode("ascii")
        except NotPlain:
            pass
    events: list[yaml.Event] = [_STREAM_START, _DOC_START]
    try:
        _events(obj, events, TOP_ORDER)
    except _NotJson:
        return _dump_with_representer(obj)
    events += (_DOC_END, _STREAM_END)
    stream = io.StringIO()
    emitter = _Emitter(stream, allow_unicode=True)
    try:
        for event in events:
            emitter.emit(event)
    finally:
        emitter.dispose()
    return stream.getvalue().encode("utf-8")


# Without the timestamp resolver an unquoted date stays a string, as it does when the API
# server reads YAML; without "value" a plain "=" is a string instead of a constructor error.
# Without "merge", "<<" is an ordinary key (merges only make sense with aliases anyway).
_DROPPED_TAGS = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", "tag:yaml.org,2002:merge"}


class _JsonResolver(Resolver):
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


_JSON_TAGS = [f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "seq", "map")]


class _JsonConstructor(SafeConstructor):
    # Only the JSON data model; any other tag ("!!binary", "!!set", "!foo") falls through
    # to the None entry, construct_undefined, which refuses it.
    yaml_constructors = {tag: SafeConstructor.yaml_constructors[tag] for tag in [*_JSON_TAGS, None]}


class _Refused(Exception):
    pass


class _GuardedComposer(Composer):
    """PyYAML's composer with anchors, aliases and deep nesting refused.

    It is placed before the libyaml parser in the loader's MRO on purpose: libyaml's own
    composer recurses in C and segfaults on deep nesting, while this one stops early.
    """

    max_depth = DEFAULT_LIMITS.max_yaml_depth
    _depth = 0

    if TYPE_CHECKING:  # provided by the parser this class is combined with

        def peek_event(self) -> Event | None: ...

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _Refused("YAML aliases are not allowed in object files")
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise _Refused("YAML anchors are not allowed in object files")
        self._depth += 1
        if self._depth > self.max_depth:
            raise _Refused(f"the YAML document is nested more than {self.max_depth} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _StrictLoader(_GuardedComposer, _Parser, _JsonConstructor, _JsonResolver):
    def __init__(self, stream: str, max_depth: int) -> None:
        _Parser.__init__(self, stream)
        _GuardedComposer.__init__(self)
        _JsonConstructor.__init__(self)
        _JsonResolver.__init__(self)
        self.max_depth = max_depth


def load_object(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_LIMITS.max_object_bytes,
    max_depth: int = DEFAULT_LIMITS.max_yaml_depth,
) -> dict[str, Any]:
    """Parse one object file. Raises ArchiveError saying why the bytes cannot be trusted."""
    if len(data) > max_bytes:
        raise ArchiveError(f"the document is {len(data)} bytes, more than the limit of {max_bytes}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"the document is not valid UTF-8 (byte {exc.start})") from None
    loader = _StrictLoader(text, max_depth)
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise ArchiveError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        # libyaml 0.2.6 (PyYAML 6.0.4's wheels) stops scanning at 1,000 open flow collections,
        # which its scanner reaches before this composer sees depth max_depth.
        if exc.problem and "nesting depth" in exc.problem:
            raise ArchiveError(f"the YAML document is nested more than {max_depth} levels deep") from None
        raise ArchiveError(f"the document is not valid YAML: {_yaml_problem(exc)}") from None
    # ValueError: integers beyond Python's digit limit; RecursionError: belt and braces.
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ArchiveError(f"the document is not valid YAML: {_first_line(exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(value, dict):
        raise ArchiveError("the document is not a YAML mapping (a Kubernetes object)")
    return value


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """What went wrong and where, e.g. "mapping values are not allowed here (line 3, column 9)"."""
    if not exc.problem:
        return _first_line(exc)
    where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})" if exc.problem_mark else ""
    return f"{exc.problem}{where}"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
