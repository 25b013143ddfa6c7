"""kubectl label selectors (`-l/--selector`), parsed and evaluated client-side.

Export sends the selector to the API server for listing; this is for the places where the
objects are already at hand (filtering an archive on import, dry-run plans) and must get
exactly the answer the server would. The grammar and validation follow apimachinery's
`labels.Parse`, which is what the server runs:

    selector    := "" | requirement ("," requirement)*
    requirement := KEY | "!" KEY
                 | KEY ("=" | "==" | "!=") VALUE
                 | KEY ("in" | "notin") "(" VALUE ("," VALUE)* ")"
                 | KEY (">" | "<") INTEGER

`!=` and `notin` also match objects that lack the label, as on the server.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from kubectl_state.core.errors import UsageError


class Operator(enum.StrEnum):
    """Requirement operators, spelled as in the canonical form kubectl prints."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


@dataclass(frozen=True)
class Requirement:
    """One comma-separated part of a selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or value not in self.values
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                number = _as_int(value)
                if number is None:
                    return False
                bound = int(self.values[0])
                return number > bound if self.operator is Operator.GREATER_THAN else number < bound
        raise AssertionError(self.operator)  # pragma: no cover - the match is exhaustive

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A parsed selector: every requirement must match. The empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def parse_label_selector(text: str) -> Selector:
    """Parse a kubectl label selector; raises UsageError (naming the position) on bad syntax."""
    return _Parser(text).parse()


# Label keys: an optional DNS subdomain prefix and "/", then a name; values: a name or "".
_NAME: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_NAME_MAX: Final = 63
_PREFIX: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PREFIX_MAX: Final = 253
_INTEGER: Final = re.compile(r"[-+]?[0-9]+")

# Characters that end an identifier, as in apimachinery's lexer.
_SPECIAL: Final = frozenset("!=<>(),")
_OPERATOR_TOKENS: Final = ("!=", "==", "=", "!", ">", "<", "(", ")", ",")
_KEYWORDS: Final = frozenset({"in", "notin"})


@dataclass(frozen=True)
class _Token:
    text: str
    position: int  # 0-based offset in the selector, for error messages
    identifier: bool


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # -- token access -----------------------------------------------------------------
    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise self._error(f"expected {expected} at the end")
        self.index += 1
        return token

    def _error(self, problem: str, token: _Token | None = None) -> UsageError:
        where = f" at position {token.position + 1}" if token is not None else ""
        return UsageError(f"Invalid label selector {self.text!r}: {problem}{where}.")

    # -- grammar ----------------------------------------------------------------------
    def parse(self) -> Selector:
        requirements: list[Requirement] = []
        if self._peek() is None:
            return Selector()
        while True:
            requirements.append(self._requirement())
            token = self._peek()
            if token is None:
                return Selector(tuple(requirements))
            if not _is_symbol(token, ","):
                raise self._error(f"expected ',' but found {token.text!r}", token)
            self.index += 1

    def _requirement(self) -> Requirement:
        token = self._next("a label key")
        if _is_symbol(token, "!"):
            return Requirement(self._key(self._next("a label key after '!'")), Operator.DOES_NOT_EXIST)
        key = self._key(token)
        following = self._peek()
        if following is None or _is_symbol(following, ","):
            return Requirement(key, Operator.EXISTS)
        operator = self._next("an operator")
        if operator.identifier and operator.text in _KEYWORDS:
            return Requirement(key, Operator(operator.text), self._set())
        if operator.identifier:
            raise self._error(f"expected an operator after {key!r} but found {operator.text!r}", operator)
        match operator.text:
            case "=" | "==":
                return Requirement(key, Operator.EQUALS, (self._exact_value(),))
            case "!=":
                return Requirement(key, Operator.NOT_EQUALS, (self._exact_value(),))
            case ">" | "<":
                return Requirement(key, Operator(operator.text), (self._integer(),))
        raise self._error(f"expected an operator after {key!r} but found {operator.text!r}", operator)

    def _key(self, token: _Token) -> str:
        if not token.identifier or token.text in _KEYWORDS:
            raise self._error(f"expected a label key but found {token.text!r}", token)
        prefix, slash, name = token.text.rpartition("/")
        valid_name = len(name) <= _NAME_MAX and _NAME.fullmatch(name) is not None
        valid_prefix = not slash or (len(prefix) <= _PREFIX_MAX and _PREFIX.fullmatch(prefix) is not None)
        if not (valid_name and valid_prefix):
            raise self._error(f"{token.text!r} is not a valid label key", token)
        return token.text

    def _value(self, token: _Token) -> str:
        # In value position "in" and "notin" are plain words, as in apimachinery.
        if not token.identifier:
            raise self._error(f"expected a label value but found {token.text!r}", token)
        if len(token.text) > _NAME_MAX or not _NAME.fullmatch(token.text):
            raise self._error(f"{token.text!r} is not a valid label value", token)
        return token.text

    def _exact_value(self) -> str:
        token = self._peek()
        if token is None or _is_symbol(token, ","):
            return ""  # "key=" selects the empty value, a valid label value
        self.index += 1
        return self._value(token)

    def _integer(self) -> str:
        token = self._next("an integer")
        if not token.identifier or not _INTEGER.fullmatch(token.text):
            raise self._error(f"expected an integer but found {token.text!r}", token)
        return token.text

    def _set(self) -> tuple[str, ...]:
        opening = self._next("'('")
        if not _is_symbol(opening, "("):
            raise self._error(f"expected '(' but found {opening.text!r}", opening)
        first = self._peek()
        if first is not None and _is_symbol(first, ")"):
            raise self._error("a set of values cannot be empty", first)
        values: list[str] = []
        while True:
            token = self._peek()
            if token is None:
                raise self._error("expected a value or ')' at the end")
            if _is_symbol(token, ",") or _is_symbol(token, ")"):
                # An empty slot, as in "(a,)" or "(,a)": apimachinery reads it as the empty
                # value, which is a valid label value.
                values.append("")
            else:
                values.append(self._value(token))
                self.index += 1
            separator = self._next("',' or ')'")
            if _is_symbol(separator, ")"):
                return tuple(values)
            if not _is_symbol(separator, ","):
                raise self._error(f"expected ',' or ')' but found {separator.text!r}", separator)


def _is_symbol(token: _Token, symbol: str) -> bool:
    return not token.identifier and token.text == symbol


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        if char in _SPECIAL:
            symbol = next(s for s in _OPERATOR_TOKENS if text.startswith(s, position))
            tokens.append(_Token(symbol, position, identifier=False))
            position += len(symbol)
            continue
        start = position
        while position < len(text) and not text[position].isspace() and text[position] not in _SPECIAL:
            position += 1
        tokens.append(_Token(text[start:position], start, identifier=True))
    return tokens


def _as_int(value: str | None) -> int | None:
    if value is None or not _INTEGER.fullmatch(value):
        return None
    return int(value)
