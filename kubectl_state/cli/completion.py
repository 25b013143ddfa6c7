"""Shell completion: the candidates for a partial `kubectl state` command line.

kubectl (1.26+) completes a plugin by running `kubectl_complete-<plugin>` from PATH with the
words typed after the plugin's name, the last one being the word under the cursor ("" when
a new word starts). It reads one candidate a line (`word<TAB>description` allowed) and, as
the last line, `:<n>`: a cobra shell-completion directive. `kubectl state completion
bash|zsh` scripts ask the same question of `kubectl-state __complete WORDS...`, so one
function answers both.

Candidates come from the parser itself (commands, flags, flag choices), so they cannot
drift from what the commands accept; `--context` values come from the kubeconfig.
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

#: The executable kubectl looks for on PATH to complete `kubectl state`.
COMPLETION_EXECUTABLE = "kubectl_complete-state"
#: The hidden subcommand the bash and zsh scripts call.
COMPLETE_COMMAND = "__complete"


class Directive(enum.IntFlag):
    """cobra's ShellCompDirective values, which kubectl passes on to its shell scripts."""

    DEFAULT = 0  # the shell may fall back to file names
    ERROR = 1
    NO_SPACE = 2
    NO_FILE_COMP = 4
    FILTER_FILE_EXT = 8
    FILTER_DIRS = 16
    KEEP_ORDER = 32


@dataclass
class Completion:
    candidates: list[str] = field(default_factory=list)
    directive: Directive = Directive.NO_FILE_COMP

    def render(self) -> str:
        return "".join(f"{c}\n" for c in self.candidates) + f":{int(self.directive)}\n"


#: Metavars (see the commands' parsers) whose values are paths: the shell completes file names.
PATH_METAVARS = frozenset({"PATH", "FILE", "DIR", "ARCHIVE", "KUBECONFIG"})


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    # argparse keeps subcommands as a private action type; reading it is the only way in.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _flag(parser: argparse.ArgumentParser, word: str) -> argparse.Action | None:
    return parser._option_string_actions.get(word.split("=", 1)[0])


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _helps(sub: argparse._SubParsersAction) -> dict[str, str]:  # type: ignore[type-arg]
    return {choice.dest: choice.help or "" for choice in sub._choices_actions}


def _with_help(name: str, text: str | None) -> str:
    # The description shows in zsh (and in bash when it lists several); one line, no tabs.
    text = " ".join((text or "").split())
    return f"{name}\t{text}" if text and text != argparse.SUPPRESS else name


def _contexts(kubeconfig: str | None, environ: dict[str, str]) -> list[str]:
    """Context names from the kubeconfig kubectl would use; nothing when it cannot be read."""
    import yaml  # noqa: PLC0415  (only --context pays for it)

    if kubeconfig:
        paths = [kubeconfig]
    elif environ.get("KUBECONFIG"):
        paths = [p for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        paths = [str(Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config")]
    names: list[str] = []
    for path in paths:
        try:
            config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for context in config.get("contexts") or [] if isinstance(config, dict) else []:
            name = context.get("name") if isinstance(context, dict) else None
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def _values(action: argparse.Action, prefix: str, seen: dict[str, str], environ: dict[str, str]) -> Completion:
    """Candidates for the value of `action`, each starting with `prefix`."""
    if action.choices is not None:
        return Completion([str(c) for c in action.choices if str(c).startswith(prefix)])
    if action.dest == "context":
        return Completion([c for c in _contexts(seen.get("kubeconfig"), environ) if c.startswith(prefix)])
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if metavar in PATH_METAVARS or action.dest in ("kubeconfig",):
        return Completion(directive=Directive.DEFAULT)
    return Completion()  # a free-form value: nothing sensible to offer, and no file names


@dataclass
class _Line:
    """Where the words typed before the cursor lead: a (sub)command and what it still expects."""

    parser: argparse.ArgumentParser
    #: A flag given without its value yet: the word under the cursor is that value.
    pending: argparse.Action | None = None
    positional_only: bool = False  # after `--`
    #: Flag values already typed that later candidates depend on (--kubeconfig for --context).
    seen: dict[str, str] = field(default_factory=dict)


def _walk(parser: argparse.ArgumentParser, done: Sequence[str]) -> _Line:
    line = _Line(parser)
    for word in done:
        if line.pending is not None:
            line.seen[line.pending.dest] = word
            line.pending = None
        elif line.positional_only or not word.startswith("-") or word == "-":
            sub = _subcommands(line.parser)
            if sub is not None and word in sub.choices:
                line.parser = sub.choices[word]
        elif word == "--":
            line.positional_only = True
        else:
            action = _flag(line.parser, word)
            if action is None or not _takes_value(action):
                continue
            if "=" in word:
                line.seen[action.dest] = word.split("=", 1)[1]
            elif not (len(word) > 2 and word[1] != "-"):  # not `-nfoo`: the value is the next word
                line.pending = action
    return line


def complete(parser: argparse.ArgumentParser, words: Sequence[str],
             environ: dict[str, str] | None = None) -> Completion:
    """What may follow `kubectl state WORDS[:-1]`, starting with WORDS[-1]."""
    environ = dict(os.environ) if environ is None else environ
    *done, current = list(words) or [""]
    line = _walk(parser, done)
    if line.pending is not None:
        return _values(line.pending, current, line.seen, environ)
    if current.startswith("-") and not line.positional_only:
        if "=" not in current:
            return Completion(_flags(line.parser, current))
        name, _, prefix = current.partition("=")
        action = _flag(line.parser, name)
        if action is None or not _takes_value(action):
            return Completion()
        found = _values(action, prefix, line.seen, environ)
        found.candidates = [f"{name}={c}" for c in found.candidates]
        return found
    sub = _subcommands(line.parser)
    if sub is not None:
        helps = _helps(sub)
        return Completion([_with_help(n, helps[n]) for n in sub.choices if n.startswith(current) and n in helps])
    # A leaf command's positional arguments are archives, snapshot files and directories.
    return Completion(directive=Directive.DEFAULT)


def _flags(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    found: list[str] = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        # Long names only when the user typed `--`; otherwise both, as kubectl offers them.
        for option in action.option_strings:
            if option.startswith(prefix) and (prefix.startswith("--") or len(option) == 2 or prefix in ("", "-")):
                found.append(_with_help(option, action.help))
    return found


def run(words: Sequence[str], out: IO[str]) -> int:
    """Answer one completion request on `out`; a failure answers with the ERROR directive."""
    from kubectl_state.cli.main import build_parser  # noqa: PLC0415  (main imports this module's command)

    try:
        result = complete(build_parser(), words)
    except Exception:  # a completion must never print a traceback into the shell
        result = Completion(directive=Directive.ERROR)
    out.write(result.render())
    return 0


def invoked_as(argv0: str) -> str:
    return os.path.basename(argv0)


def main_complete(argv: Iterable[str] | None = None) -> int:
    """Entry point of `kubectl_complete-state`."""
    return run(list(sys.argv[1:] if argv is None else argv), sys.stdout)
