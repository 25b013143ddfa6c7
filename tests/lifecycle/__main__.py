"""`python -m tests.lifecycle up|down`: test hosts for a person to run playbooks against.

`up` makes the hosts (network namespaces with sshd, see hosts.py), writes an inventory and a
state file, and leaves everything running; `down` reads the state file and removes it all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .control_plane import GROUPS, REPO_ROOT, role_vars
from .hosts import HostLab, HostLabError, HostLabUnavailable

DEFAULT_STATE = Path("/tmp/kubectl-state-lab.json")


def parse_groups(specs: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for spec in specs:
        name, _, hosts = spec.partition("=")
        if not name or not hosts:
            raise SystemExit(f"--group wants NAME=h1,h2 (got {spec!r})")
        groups[name] = [h for h in hosts.split(",") if h]
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lifecycle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="make the hosts and print the inventory's path")
    up.add_argument("--hosts", type=int, default=4, help="how many hosts (default 4)")
    up.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME=h1,h2",
        help="an inventory group (repeatable); default: etcd=h1,h2,h3 control_plane=h1,h2 api_endpoint=h4",
    )
    up.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    up.add_argument("--instance-config", type=Path, help="also write the hosts as molecule's instance config (YAML)")
    down = sub.add_parser("down", help="remove the hosts recorded in the state file")
    down.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    args = parser.parse_args(argv)

    if args.command == "up":
        if args.state.exists():
            print(f"{args.state} exists: run `python -m tests.lifecycle down` first", file=sys.stderr)
            return 1
        groups = parse_groups(args.group) or {**GROUPS, "api_endpoint": [f"h{args.hosts}"]}
        lab = HostLab(args.hosts)
        try:
            lab.up()
            inventory = lab.write_inventory(groups=groups, group_vars=role_vars(lab))
        except (HostLabError, HostLabUnavailable) as exc:
            lab.close()
            print(f"error: {exc}", file=sys.stderr)
            return 1
        args.state.write_text(json.dumps(lab.state(), indent=2))
        if args.instance_config:
            # What molecule's `default` driver reads to build its inventory.
            instances = [{"instance": h.name, "address": h.address, "user": "root", "port": 22,
                          "identity_file": str(lab.private_key)} for h in lab.hosts]
            args.instance_config.write_text(yaml.safe_dump(instances, sort_keys=False))
        for host in lab.hosts:
            print(f"{host.name} {host.address} (netns {host.netns})")
        print(f"inventory: {inventory}")
        print(f"state: {args.state}")
        print(f"run: ANSIBLE_COLLECTIONS_PATH={REPO_ROOT} ansible-playbook -i {inventory} "
              "kubectl_state.control_plane.create")
        return 0

    if not args.state.exists():
        print(f"{args.state} does not exist: nothing to remove", file=sys.stderr)
        return 1
    lab = HostLab.from_state(json.loads(args.state.read_text()))
    try:
        lab.close()
    except HostLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.state.unlink()
    print("removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
