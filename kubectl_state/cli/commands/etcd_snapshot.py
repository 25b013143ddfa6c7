"""`kubectl state etcd snapshot save|status|restore`."""

from __future__ import annotations

import argparse
import os
from typing import Any

from kubectl_state.cli.commands.etcd import emit, group, human_size, make_client
from kubectl_state.cli.commands.examples import ExamplesFormatter, examples
from kubectl_state.cli.env import Environment
from kubectl_state.cli.progress import Progress
from kubectl_state.core.errors import ExitStatus, UsageError


def register(sub: Any, parents: list[argparse.ArgumentParser], leaf: list[argparse.ArgumentParser]) -> None:
    snap = group(sub, "snapshot", "Save, check and restore etcd snapshots (the bbolt database of one member).",
                 parents, examples("kubectl state etcd snapshot save etcd.db --endpoints https://10.0.0.11:2379",
                                   "kubectl state etcd snapshot status etcd.db"))

    p = snap.add_parser(
        "save", parents=leaf, help="stream a snapshot from one member into FILE",
        description="Stream a snapshot from one healthy member (the leader when it is among --endpoints, "
                    "else the next that answers) into FILE, check its sha256, and write FILE.meta.json.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd snapshot save etcd.db --endpoints https://10.0.0.11:2379 \\",
            "    --cacert ca.crt --cert client.crt --key client.key --keep 7"),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--keep", type=int, metavar="N",
                   help="after saving, delete all but the newest N snapshots this tool saved in FILE's directory")
    p.set_defaults(run=run_save)

    p = snap.add_parser("status", parents=parents, help="check a snapshot file and show its revision and keys",
                        formatter_class=ExamplesFormatter, epilog=examples(
                            "kubectl state etcd snapshot status etcd.db",
                            "kubectl state etcd snapshot status -o json etcd.db"))
    p.add_argument("file", metavar="FILE")
    p.add_argument("--etcdutl", metavar="PATH", help="etcdutl (or etcdctl) to read the file with")
    p.set_defaults(run=run_status)

    p = snap.add_parser(
        "restore", parents=parents, help="write a new data dir for one member from a snapshot (offline)",
        description="Write a new data dir for one member from a snapshot. Run it for every member with the "
                    "same --initial-cluster (and token), then start the members. Never overwrites a non-empty "
                    "data dir.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd snapshot restore etcd.db --name etcd-1 --data-dir /var/lib/etcd-new \\",
            "    --initial-cluster etcd-1=https://10.0.0.11:2380,etcd-2=https://10.0.0.12:2380 \\",
            "    --initial-advertise-peer-urls https://10.0.0.11:2380"),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", required=True, help="this member's name")
    p.add_argument("--data-dir", required=True, metavar="DIR", help="the new data dir (must be empty or absent)")
    p.add_argument("--initial-cluster", required=True, metavar="NAME=URL,...", help="every member of the new cluster")
    p.add_argument("--initial-advertise-peer-urls", required=True, metavar="URLS", help="this member's peer URLs")
    p.add_argument("--initial-cluster-token", metavar="TOKEN",
                   help="the new cluster's token (default: derived from the snapshot and --initial-cluster, so "
                        "every member gets the same new one)")
    p.add_argument("--bump-revision", type=int, default=None, metavar="N",
                   help="move revisions forward by N where etcdutl supports it (3.5.10+; default: 1000000000)")
    p.add_argument("--mark-compacted", action=argparse.BooleanOptionalAction, default=True,
                   help="mark the old revisions compacted along with --bump-revision (default: yes)")
    p.add_argument("--skip-hash-check", action="store_true",
                   help="accept a db file without sha256 trailer (copied out of a data dir)")
    p.add_argument("--etcdutl", metavar="PATH", help="etcdutl (or etcdctl) to restore with")
    p.set_defaults(run=run_restore)


def run_save(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.retention import prune_snapshots, snapshots_to_prune  # noqa: PLC0415
    from kubectl_state.core.etcd.snapshot import save_snapshot  # noqa: PLC0415

    if args.keep is not None and args.keep < 1:
        raise UsageError("--keep must be at least 1")
    progress = Progress(env, "Saving snapshot", unit="MB")
    last = [0]

    def on_progress(done: int, total: int) -> None:
        # Progress counts whole MB so the line reads like a size, not a byte counter.
        mb = done // 1_000_000
        if mb != last[0]:
            progress.add(mb - last[0])
            last[0] = mb

    with make_client(args, env) as client:
        try:
            info = save_snapshot(client, args.file, on_progress=on_progress)
        finally:
            progress.finish()
        env.log(4, f"snapshot streamed over {client.last_snapshot_via}")
    data = info.to_dict()
    pruned: list[str] = []
    if args.keep is not None:
        victims = snapshots_to_prune(os.path.dirname(os.path.abspath(args.file)), args.keep)
        prune_snapshots(victims)
        pruned = [str(path) for path in victims]
        data["pruned"] = pruned

    def text() -> None:
        env.stdout.write(
            f"Snapshot saved at {info.path} from {info.endpoint} "
            f"(member {info.member_id:x}, etcd {info.etcd_version}): "
            f"revision {info.revision}, {human_size(info.db_size)}, sha256 {info.sha256}\n"
        )
        for path in pruned:
            env.stdout.write(f"Deleted older snapshot {path}\n")

    emit(args, env, data, text)
    return ExitStatus.OK


def run_status(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.snapshot import snapshot_status  # noqa: PLC0415

    status = snapshot_status(args.file, tool=args.etcdutl)

    def text() -> None:
        rows = [
            ("File", status.path),
            ("Integrity", f"ok (checked by {status.verified_by})"),
            ("Revision", status.revision),
            ("Total keys", status.total_keys),
            ("Total size", f"{human_size(status.total_size)} ({status.total_size} bytes)"),
            ("Hash (CRC32C)", f"{status.hash:x}"),
        ]
        if status.sha256:
            rows.append(("sha256", status.sha256))
        if status.meta:
            rows.append(("Saved", f"{status.meta.get('time')} from {status.meta.get('endpoint')} "
                                  f"(etcd {status.meta.get('etcdVersion')})"))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            env.stdout.write(f"{k + ':':<{width + 1}} {v}\n")

    emit(args, env, status.to_dict(), text)
    return ExitStatus.OK


def run_restore(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.snapshot import restore_snapshot  # noqa: PLC0415

    if args.bump_revision is not None and args.bump_revision < 0:
        raise UsageError("--bump-revision must not be negative")
    result = restore_snapshot(
        args.file,
        name=args.name,
        data_dir=args.data_dir,
        initial_cluster=args.initial_cluster,
        initial_advertise_peer_urls=args.initial_advertise_peer_urls,
        initial_cluster_token=args.initial_cluster_token,
        bump_revision=args.bump_revision,
        mark_compacted=args.mark_compacted,
        skip_hash_check=args.skip_hash_check,
        tool=args.etcdutl,
    )

    def text() -> None:
        env.stdout.write(
            f"Restored member {result.name} into {result.data_dir} at revision {result.revision}.\n"
            f"Start it with --initial-cluster={result.initial_cluster} --initial-cluster-state=new "
            f"--initial-cluster-token={result.initial_cluster_token}\n"
        )
        if result.bumped_by:
            env.stdout.write(f"Revisions were moved forward by {result.bumped_by}"
                             f"{' and the old ones marked compacted' if not result.compaction_needed else ''}.\n")

    emit(args, env, result.to_dict(), text)
    if result.compaction_needed:
        # On stderr, also with -o json: it is an instruction for the person, not data.
        env.stderr.write(
            f"Note: {os.path.basename(result.tool)} cannot mark the old revisions compacted "
            "(that needs etcdutl 3.5.10 or later).\n"
            "Once the restored cluster has started, compact it at the restored revision so that Kubernetes\n"
            "watchers relist instead of staying on stale data:\n"
            f"  kubectl state etcd compact --endpoints <client URLs> --revision {result.revision}\n"
        )
    return ExitStatus.OK
