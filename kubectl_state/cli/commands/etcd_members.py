"""`kubectl state etcd member …`, `status`, `health`, `defrag`, `alarm …` and `compact`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from kubectl_state.cli.commands.etcd import emit, group, human_size, make_client, table
from kubectl_state.cli.commands.examples import ExamplesFormatter, examples
from kubectl_state.cli.env import Environment
from kubectl_state.core.errors import ExitStatus, UsageError


def register(sub: Any, parents: list[argparse.ArgumentParser], leaf: list[argparse.ArgumentParser]) -> None:
    member = group(sub, "member", "List, add, promote and remove etcd members, keeping quorum.", parents,
                   examples("kubectl state etcd member list", "kubectl state etcd member remove etcd-3"))

    p = member.add_parser("list", help="list the members with their health", parents=leaf,
                          formatter_class=ExamplesFormatter, epilog=examples(
                              "kubectl state etcd member list --endpoints https://10.0.0.11:2379"))
    p.set_defaults(run=run_member_list)

    p = member.add_parser(
        "add", parents=leaf, help="add a member (as a learner unless --voter)",
        description="Add a member, as a learner unless --voter; start it with the printed settings, "
                    "then promote it once it has caught up.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd member add etcd-4 --peer-urls https://10.0.0.14:2380"),
    )
    p.add_argument("name", help="the new member's name (its --name)")
    p.add_argument("--peer-urls", required=True, metavar="URLS", help="comma-separated peer URLs of the new member")
    p.add_argument("--voter", action="store_true", help="add it as a voting member straight away")
    p.add_argument("--settle", type=float, default=20.0, metavar="SECONDS",
                   help="when members do not answer as healthy, re-check for this long before refusing "
                        "(right after a membership change they often need a moment; default: 20, 0: refuse at once)")
    p.add_argument("--force", action="store_true", help="skip the quorum safety check")
    p.set_defaults(run=run_member_add)

    p = member.add_parser("promote", parents=leaf, help="promote a learner once it has caught up",
                          formatter_class=ExamplesFormatter, epilog=examples(
                              "kubectl state etcd member promote etcd-4 --timeout 120"))
    p.add_argument("member", help="name or hex ID of the learner")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for the learner to catch up (default: 60)")
    p.add_argument("--force", action="store_true", help="skip the quorum safety check")
    p.set_defaults(run=run_member_promote)

    p = member.add_parser(
        "remove", parents=leaf, help="remove a member unless that would cost quorum",
        description="Remove a member. Refused when the cluster has no quorum, or when the healthy voting "
                    "members left would be fewer than the quorum of the smaller cluster, unless --force.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd member remove etcd-3"),
    )
    p.add_argument("member", help="name or hex ID of the member")
    p.add_argument("--settle", type=float, default=20.0, metavar="SECONDS",
                   help="when members do not answer as healthy, re-check for this long before refusing "
                        "(right after a membership change they often need a moment; default: 20, 0: refuse at once)")
    p.add_argument("--force", action="store_true", help="remove even though the quorum check refuses")
    p.set_defaults(run=run_member_remove)

    p = sub.add_parser("status", parents=leaf, help="status of each endpoint (or with --cluster each member)",
                       formatter_class=ExamplesFormatter, epilog=examples(
                           "kubectl state etcd status --cluster --endpoints https://10.0.0.11:2379"))
    p.add_argument("--cluster", action="store_true", help="every member's client URL instead of --endpoints")
    p.set_defaults(run=run_status)

    p = sub.add_parser("health", parents=leaf, help="health of each endpoint (or with --cluster each member)",
                       formatter_class=ExamplesFormatter, epilog=examples(
                           "kubectl state etcd health --cluster --endpoints https://10.0.0.11:2379"))
    p.add_argument("--cluster", action="store_true", help="every member's client URL instead of --endpoints")
    p.set_defaults(run=run_health)

    p = sub.add_parser("defrag", parents=leaf, help="defragment each endpoint, one at a time",
                       formatter_class=ExamplesFormatter, epilog=examples(
                           "kubectl state etcd defrag --cluster --endpoints https://10.0.0.11:2379"))
    p.add_argument("--cluster", action="store_true", help="every member's client URL instead of --endpoints")
    p.set_defaults(run=run_defrag)

    alarm = group(sub, "alarm", "List or disarm etcd alarms (NOSPACE, CORRUPT).", parents,
                  examples("kubectl state etcd alarm list"))
    p = alarm.add_parser("list", parents=leaf, help="list active alarms",
                         formatter_class=ExamplesFormatter, epilog=examples(
                             "kubectl state etcd alarm list -o json"))
    p.set_defaults(run=run_alarm_list)
    p = alarm.add_parser("disarm", parents=leaf, help="disarm every active alarm (fix its cause first)",
                         formatter_class=ExamplesFormatter, epilog=examples(
                             "kubectl state etcd defrag --cluster && kubectl state etcd alarm disarm"))
    p.set_defaults(run=run_alarm_disarm)

    p = sub.add_parser(
        "compact", parents=leaf, help="compact the key history up to a revision (default: the current one)",
        description="Compact the key history: needed after a restore that could not bump the revision, so "
                    "that Kubernetes watchers relist instead of staying on old data.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd compact --physical",
            "kubectl state etcd compact --revision 1000000000"),
    )
    p.add_argument("--revision", type=int, default=0, help="compact up to this revision (default: the current)")
    p.add_argument("--physical", action="store_true", help="wait until the space is reclaimed")
    p.set_defaults(run=run_compact)


# --- members ------------------------------------------------------------------------------------


def run_member_list(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.members import cluster_state  # noqa: PLC0415

    with make_client(args, env) as client:
        states = cluster_state(client)
    data = {"members": [s.to_dict() for s in states]}

    def text() -> None:
        table(env, ["ID", "NAME", "STATUS", "HEALTH", "LEADER", "LEARNER", "PEER ADDRS", "CLIENT ADDRS"], [
            [f"{s.id:x}", s.name or "-", "started" if s.started else "unstarted",
             "healthy" if s.healthy else f"unhealthy: {s.reason}", "yes" if s.is_leader else "",
             "yes" if s.is_learner else "", ",".join(s.member.peer_urls), ",".join(s.member.client_urls)]
            for s in states
        ])

    emit(args, env, data, text)
    return ExitStatus.OK


def run_member_add(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.members import add_member  # noqa: PLC0415

    peer_urls = [u.strip() for u in args.peer_urls.split(",") if u.strip()]
    if not peer_urls:
        raise UsageError("--peer-urls needs at least one URL")
    with make_client(args, env) as client:
        added = add_member(client, args.name, peer_urls, learner=not args.voter, force=args.force,
                           settle=args.settle, on_wait=_say_once(env))
    data = {
        "id": f"{added.member.id:x}",
        "name": added.name,
        "isLearner": added.member.is_learner,
        "peerURLs": added.member.peer_urls,
        "initialCluster": added.initial_cluster,
        "initialClusterState": added.initial_cluster_state,
    }

    def text() -> None:
        kind = "learner" if added.member.is_learner else "voting member"
        env.stdout.write(f"Member {added.member.id:x} added as a {kind}.\n\n")
        env.stdout.write(f'ETCD_NAME="{added.name}"\n')
        env.stdout.write(f'ETCD_INITIAL_CLUSTER="{added.initial_cluster}"\n')
        env.stdout.write(f'ETCD_INITIAL_ADVERTISE_PEER_URLS="{",".join(added.member.peer_urls)}"\n')
        env.stdout.write(f'ETCD_INITIAL_CLUSTER_STATE="{added.initial_cluster_state}"\n')
        if added.member.is_learner:
            env.stdout.write(f"\nStart it, then: kubectl state etcd member promote {added.name}\n")

    emit(args, env, data, text)
    return ExitStatus.OK


def _say_once(env: Environment) -> Callable[[str], None]:
    said: list[str] = []

    def on_wait(message: str) -> None:
        # Said once, and at -v 4 on every retry: waiting is normal, not news.
        if not said or env.verbosity >= 4:
            env.stderr.write(f"{message}\n")
        said.append(message)

    return on_wait


def run_member_promote(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.members import promote_member, resolve  # noqa: PLC0415

    with make_client(args, env) as client:
        target = resolve(client.member_list(), args.member)
        member = promote_member(client, target.id, timeout=args.timeout, force=args.force, on_wait=_say_once(env))
    emit(args, env, {"id": f"{member.id:x}", "name": member.name, "isLearner": member.is_learner},
         lambda: env.stdout.write(f"Member {member.id:x} ({member.name}) promoted to a voting member.\n"))
    return ExitStatus.OK


def run_member_remove(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.members import remove_member, resolve  # noqa: PLC0415

    with make_client(args, env) as client:
        target = resolve(client.member_list(), args.member)
        removed = remove_member(client, target.id, force=args.force, settle=args.settle,
                                on_wait=_say_once(env))
    emit(args, env, {"id": f"{removed.id:x}", "name": removed.name, "removed": True},
         lambda: env.stdout.write(f"Member {removed.id:x} ({removed.name or 'unstarted'}) removed.\n"))
    return ExitStatus.OK


# --- endpoints ----------------------------------------------------------------------------------


def _targets(client: Any, cluster: bool) -> list[str]:
    if not cluster:
        return list(client.endpoints)
    urls = [m.client_urls[0] for m in client.member_list() if m.client_urls]
    return urls


def run_status(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.errors import ConnectionFailed, EtcdError  # noqa: PLC0415

    rows: list[dict[str, Any]] = []
    with make_client(args, env) as client:
        for ep in _targets(client, args.cluster):
            try:
                s = client.status(ep)
            except (EtcdError, ConnectionFailed) as exc:
                rows.append({"endpoint": ep, "error": str(exc)})
                continue
            rows.append({
                "endpoint": ep, "id": f"{s.member_id:x}", "version": s.version, "dbSize": s.db_size,
                "dbSizeInUse": s.db_size_in_use, "isLeader": s.leader == s.member_id and s.leader != 0,
                "isLearner": s.is_learner, "raftTerm": s.raft_term, "raftIndex": s.raft_index,
                "raftAppliedIndex": s.raft_applied_index, "revision": s.revision, "errors": s.errors,
                "clusterId": f"{s.cluster_id:x}",
            })

    def text() -> None:
        table(env, ["ENDPOINT", "ID", "VERSION", "DB SIZE", "LEADER", "LEARNER", "RAFT TERM", "RAFT INDEX",
                    "APPLIED INDEX", "REVISION", "ERRORS"], [
            [r["endpoint"], r["id"], r["version"], human_size(r["dbSize"]), "yes" if r["isLeader"] else "",
             "yes" if r["isLearner"] else "", r["raftTerm"], r["raftIndex"], r["raftAppliedIndex"],
             r["revision"], "; ".join(r["errors"])]
            if "error" not in r else [r["endpoint"], "-", "-", "-", "", "", "", "", "", "", r["error"]]
            for r in rows
        ])

    emit(args, env, {"endpoints": rows}, text)
    return ExitStatus.ERROR if any("error" in r for r in rows) else ExitStatus.OK


def run_health(args: argparse.Namespace, env: Environment) -> int:
    import time  # noqa: PLC0415

    rows: list[dict[str, Any]] = []
    with make_client(args, env) as client:
        for ep in _targets(client, args.cluster):
            started = time.monotonic()
            healthy, reason = client.health(ep)
            rows.append({"endpoint": ep, "healthy": healthy, "took": round(time.monotonic() - started, 4),
                         "reason": reason})

    def text() -> None:
        table(env, ["ENDPOINT", "HEALTH", "TOOK", "REASON"], [
            [r["endpoint"], "healthy" if r["healthy"] else "unhealthy", f"{r['took'] * 1000:.0f}ms", r["reason"]]
            for r in rows
        ])

    emit(args, env, {"endpoints": rows}, text)
    return ExitStatus.OK if all(r["healthy"] for r in rows) else ExitStatus.ERROR


def run_defrag(args: argparse.Namespace, env: Environment) -> int:
    done = []
    with make_client(args, env) as client:
        # One member at a time: defragmenting blocks the member, and doing them all at once
        # would block the whole cluster. The first failure stops the rest.
        for ep in _targets(client, args.cluster):
            client.defragment(ep, timeout=max(client.timeout, 300.0))
            done.append(ep)
            if not args.output or args.output == "text":
                env.stdout.write(f"Finished defragmenting etcd member[{ep}]\n")
    if args.output in ("json", "yaml"):
        emit(args, env, {"defragmented": done}, lambda: None)
    return ExitStatus.OK


def run_alarm_list(args: argparse.Namespace, env: Environment) -> int:
    with make_client(args, env) as client:
        alarms = client.alarms()
    data = {"alarms": [{"memberID": f"{a['member_id']:x}", "alarm": a["alarm"]} for a in alarms]}

    def text() -> None:
        if not alarms:
            env.stdout.write("No active alarms.\n")
            return
        for a in alarms:
            env.stdout.write(f"memberID:{a['member_id']:x} alarm:{a['alarm']}\n")

    emit(args, env, data, text)
    return ExitStatus.OK


def run_alarm_disarm(args: argparse.Namespace, env: Environment) -> int:
    with make_client(args, env) as client:
        alarms = client.alarms()
        for a in alarms:
            client.alarm_disarm(a["member_id"], a["alarm"])
    data = {"disarmed": [{"memberID": f"{a['member_id']:x}", "alarm": a["alarm"]} for a in alarms]}
    emit(args, env, data, lambda: env.stdout.write(
        "".join(f"Disarmed memberID:{a['member_id']:x} alarm:{a['alarm']}\n" for a in alarms) or "No active alarms.\n"))
    return ExitStatus.OK


def run_compact(args: argparse.Namespace, env: Environment) -> int:
    if args.revision < 0:
        raise UsageError("--revision must not be negative")
    with make_client(args, env) as client:
        revision = args.revision or client.status().revision
        client.compact(revision, physical=args.physical)
    emit(args, env, {"compacted": revision},
         lambda: env.stdout.write(f"Compacted the key history up to revision {revision}.\n"))
    return ExitStatus.OK
