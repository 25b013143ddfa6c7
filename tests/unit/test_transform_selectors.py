"""Label selectors as kubectl and the API server read them, evaluated client-side."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubectl_state.core.errors import UsageError
from kubectl_state.core.transform.selectors import (
    Operator,
    Requirement,
    Selector,
    parse_label_selector,
)


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("", ()),
        ("   ", ()),
        ("app=web", (Requirement("app", Operator.EQUALS, ("web",)),)),
        ("app==web", (Requirement("app", Operator.EQUALS, ("web",)),)),
        ("tier!=db", (Requirement("tier", Operator.NOT_EQUALS, ("db",)),)),
        ("app=", (Requirement("app", Operator.EQUALS, ("",)),)),
        ("env in (prod, staging)", (Requirement("env", Operator.IN, ("prod", "staging")),)),
        ("env notin (dev)", (Requirement("env", Operator.NOT_IN, ("dev",)),)),
        ("env in (a,)", (Requirement("env", Operator.IN, ("a", "")),)),
        ("partition", (Requirement("partition", Operator.EXISTS),)),
        ("!canary", (Requirement("canary", Operator.DOES_NOT_EXIST),)),
        ("! canary", (Requirement("canary", Operator.DOES_NOT_EXIST),)),
        ("replicas>2", (Requirement("replicas", Operator.GREATER_THAN, ("2",)),)),
        ("replicas < 10", (Requirement("replicas", Operator.LESS_THAN, ("10",)),)),
        ("app.kubernetes.io/name=web", (Requirement("app.kubernetes.io/name", Operator.EQUALS, ("web",)),)),
        ("mode=in", (Requirement("mode", Operator.EQUALS, ("in",)),)),  # keywords are plain values
        ("mode in (in,notin)", (Requirement("mode", Operator.IN, ("in", "notin")),)),
        (
            "a=b,c!=d,e in (x,y),f notin (z),g,!h",
            (
                Requirement("a", Operator.EQUALS, ("b",)),
                Requirement("c", Operator.NOT_EQUALS, ("d",)),
                Requirement("e", Operator.IN, ("x", "y")),
                Requirement("f", Operator.NOT_IN, ("z",)),
                Requirement("g", Operator.EXISTS),
                Requirement("h", Operator.DOES_NOT_EXIST),
            ),
        ),
    ],
)
def test_parse(text: str, requirements: tuple[Requirement, ...]) -> None:
    assert parse_label_selector(text) == Selector(requirements)


LABELS = {"app": "web", "tier": "frontend", "env": "prod", "replicas": "3", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app=api", False),
        ("app!=api", True),
        ("app!=web", False),
        ("missing!=x", True),  # != matches objects without the label, as on the server
        ("missing=x", False),
        ("env in (prod,staging)", True),
        ("env in (dev)", False),
        ("missing in (a)", False),
        ("env notin (dev)", True),
        ("env notin (prod)", False),
        ("missing notin (a)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("empty=", True),
        ("empty", True),
        ("replicas>2", True),
        ("replicas>3", False),
        ("replicas<4", True),
        ("app>1", False),  # not a number: never matches
        ("missing<1", False),
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("app=web,app=api", False),
    ],
)
def test_matches(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


def test_an_object_without_labels_matches_only_negative_selectors() -> None:
    assert parse_label_selector("").matches(None)
    assert parse_label_selector("!app,app!=web,app notin (web)").matches(None)
    assert not parse_label_selector("app").matches({})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app=web,", "expected a label key at the end"),
        (",app=web", "expected a label key but found ','"),
        ("app=web tier=db", "expected ',' but found 'tier'"),
        ("app=b=c", "expected ',' but found '='"),
        ("app in (a", "expected ',' or ')' at the end"),
        ("app in ()", "cannot be empty"),
        ("app in a", "expected '(' but found 'a'"),
        ("app notin", "expected '(' at the end"),
        ("app x", "expected an operator after 'app' but found 'x'"),
        ("app!", "expected an operator after 'app' but found '!'"),
        ("!", "expected a label key after '!' at the end"),
        ("!app=web", "expected ',' but found '='"),
        ("in=x", "expected a label key but found 'in'"),
        ("=x", "expected a label key but found '='"),
        ("app>x", "expected an integer but found 'x'"),
        ("-app=x", "'-app' is not a valid label key"),
        ("a/b/c=x", "'a/b/c' is not a valid label key"),
        ("Example.COM/app=x", "is not a valid label key"),
        ("/app=x", "'/app' is not a valid label key"),
        ("app=-web", "'-web' is not a valid label value"),
        ("app=" + "v" * 64, "is not a valid label value"),
        ("app in (ok,bad!)", "expected ',' or ')' but found '!'"),
    ],
)
def test_bad_syntax_is_a_usage_error_that_says_where(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_label_selector(text)
    assert message in str(raised.value)
    assert repr(text) in str(raised.value)


def test_error_positions_count_from_one() -> None:
    with pytest.raises(UsageError, match="at position 9"):
        parse_label_selector("app=web tier=db")


def test_canonical_form_reads_back_the_same() -> None:
    selector = parse_label_selector(" a == b , c!=d, e in ( x , y ),f notin (z), g ,! h ,n>1")
    assert str(selector) == "a=b,c!=d,e in (x,y),f notin (z),g,!h,n>1"
    assert parse_label_selector(str(selector)) == selector


names = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True)
keys = st.one_of(names, st.builds(lambda p, n: f"{p}.io/{n}", st.from_regex(r"[a-z]{1,6}", fullmatch=True), names))
requirements = st.one_of(
    st.builds(lambda k: Requirement(k, Operator.EXISTS), keys),
    st.builds(lambda k: Requirement(k, Operator.DOES_NOT_EXIST), keys),
    st.builds(lambda k, v: Requirement(k, Operator.EQUALS, (v,)), keys, names | st.just("")),
    st.builds(lambda k, v: Requirement(k, Operator.NOT_EQUALS, (v,)), keys, names),
    st.builds(lambda k, vs: Requirement(k, Operator.IN, tuple(vs)), keys, st.lists(names, min_size=1, max_size=3)),
    st.builds(lambda k, vs: Requirement(k, Operator.NOT_IN, tuple(vs)), keys, st.lists(names, min_size=1, max_size=3)),
    st.builds(lambda k, n: Requirement(k, Operator.GREATER_THAN, (str(n),)), keys, st.integers(0, 999)),
)


@given(st.lists(requirements, max_size=5))
def test_any_selector_survives_printing_and_parsing(reqs: list[Requirement]) -> None:
    selector = Selector(tuple(reqs))
    assert parse_label_selector(str(selector)) == selector
