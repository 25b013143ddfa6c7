"""`kubectl state completion bash|zsh`: a shell script completing `kubectl-state` and, via kubectl,
`kubectl state`; plus the hidden `__complete` request both scripts send."""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.completion import COMPLETE_COMMAND, COMPLETION_EXECUTABLE
from kubectl_state.cli.completion import run as answer
from kubectl_state.cli.completion_scripts import SCRIPTS
from kubectl_state.cli.env import Environment
from kubectl_state.core.errors import ExitStatus

HELP = "Print a bash or zsh completion script for kubectl-state."
DESCRIPTION = f"""{HELP}

`kubectl state ...` completes through kubectl's own completion (kubectl 1.26+), which runs
the executable {COMPLETION_EXECUTABLE} from PATH: pip and pipx install it beside
kubectl-state; after a krew install, link it once:
  ln -s kubectl-state "${{KREW_ROOT:-$HOME/.krew}}/bin/{COMPLETION_EXECUTABLE}"
The script printed here completes the kubectl-state command itself.

Examples:
  source <(kubectl state completion bash)                   # bash, this shell
  kubectl state completion bash > /etc/bash_completion.d/kubectl-state
  kubectl state completion zsh > "${{fpath[1]}}/_kubectl_state"  # zsh, with compinit"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("completion", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=sorted(SCRIPTS), help="the shell: bash or zsh")
    parser.set_defaults(run=run)
    # No help= keeps it out of the command list: only the scripts call it.
    hidden = subparsers.add_parser(COMPLETE_COMMAND, add_help=False)
    hidden.add_argument("words", nargs=argparse.REMAINDER)
    hidden.set_defaults(run=run_complete)


def run(args: argparse.Namespace, env: Environment) -> int:
    env.stdout.write(SCRIPTS[args.shell])
    return ExitStatus.OK


def run_complete(args: argparse.Namespace, env: Environment) -> int:
    words = list(args.words)
    if words[:1] == ["--"]:  # the scripts put `--` first so that a leading flag stays a word
        words = words[1:]
    return answer(words, env.stdout)
