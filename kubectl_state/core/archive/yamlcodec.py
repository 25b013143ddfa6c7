"""Object files as YAML: a stable, readable dump and a loader that trusts nothing.

Dump: block style, `apiVersion`, `kind`, `metadata` first and every other key sorted, so
two exports of the same object are byte-identical and diff well.

Load: only the JSON data model (maps, lists, strings, numbers, booleans, null) comes back.
Anchors and aliases are refused outright (Kubernetes objects never need them, and they are
how a few hundred bytes expand to gigabytes), as are explicit tags, documents over a size
limit, nesting deeper than a limit, invalid UTF-8 and more than one document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event, NodeEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from kubectl_state.core.archive.limits import DEFAULT_LIMITS
from kubectl_state.core.errors import ArchiveError

_TOP_ORDER = ("apiVersion", "kind", "metadata")
_METADATA_ORDER = ("name", "generateName", "namespace")

try:  # libyaml is several times faster; PyYAML without it is still correct.
    from yaml import CSafeDumper as _Dumper
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]


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


def dump_object(obj: Mapping[str, Any]) -> bytes:
    """`obj` as a UTF-8 YAML document in the archive's canonical key order."""
    body = _sorted(obj)
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        body["metadata"] = _ordered(metadata, _METADATA_ORDER)
    text = yaml.dump(
        _ordered(body, _TOP_ORDER),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
    )
    return text.encode("utf-8")


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
    # ValueError: integers beyond Python's digit limit; RecursionError: belt and braces.
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ArchiveError(f"the document is not valid YAML: {_first_line(exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(value, dict):
        raise ArchiveError("the document is not a YAML mapping (a Kubernetes object)")
    return value


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
