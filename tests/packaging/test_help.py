"""Every command's --help ends with examples, and each example names a real command."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from kubectl_state.cli.completion import COMPLETE_COMMAND
from kubectl_state.cli.main import build_parser
from tests.helpers import run_cli


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if name != COMPLETE_COMMAND:
                    yield from commands(child, (*path, name))


def test_every_command_help_ends_with_examples_of_itself() -> None:
    found = list(commands(build_parser()))
    assert len(found) > 20
    for path in found:
        code, out, _ = run_cli(*path, "--help")
        assert code == 0
        assert "\nExamples:\n" in out, path
        examples = out.split("\nExamples:\n", 1)[1].splitlines()
        runs = [line.strip() for line in examples if line.strip().startswith("kubectl state ")]
        assert runs, path
        # At least one example runs this very command (`kubectl state etcd snapshot save ...`).
        assert any(" ".join(("kubectl state", *path)) in run for run in runs), path
