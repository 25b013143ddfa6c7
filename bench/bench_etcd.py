"""etcd level: `kubectl-state etcd snapshot save` and `etcd export` against etcdctl, on one real etcd.

The database is filled through the JSON gateway with concurrent transactions of ~1 MiB
(each txn as large as etcd's default request limit allows), which is the fastest way
in without another tool: quick (~20 MB, 20,000 keys of 1 KB) takes about 2 s, full
(~1 GB, 100,000 keys of 10 KB) about 50 s on 2 cores. How long it took is printed on
stderr. The whole full run takes about 8 minutes (etcdctl's JSON of 1 GB needs ~8 GB RAM).

Cases (each the whole process, peak RSS from the harness):
- snapshot-save: ours vs `etcdctl snapshot save` of the same member.
- export: ours (directory: manifest + JSON lines) vs `etcdctl get --prefix /registry -w json`
  of the same keys (which holds the whole answer in memory; ours streams pages).
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.harness import Case

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.etcd_cluster is the test bed that starts real etcd

PREFIX = "/registry/bench/"
#: Raw bytes per fill transaction: under etcd's default 1.5 MiB request limit.
TXN_BYTES = 1024 * 1024


def fill(endpoints: list[str], keys: int, value_size: int, threads: int = 8) -> float:
    """Put `keys` keys of `value_size` random bytes under PREFIX; returns the seconds it took."""
    from kubectl_state.core.etcd.client import EtcdClient, Op

    per_txn = max(1, min(128, TXN_BYTES // (value_size + 64)))
    batches = [range(start, min(keys, start + per_txn)) for start in range(0, keys, per_txn)]
    started = time.perf_counter()
    with EtcdClient(endpoints, timeout=60) as client:

        def put(batch: range) -> None:
            # Random bytes: incompressible, so neither side gets a free ride from compression.
            client.txn([], [Op.put(f"{PREFIX}{i:08d}".encode(), os.urandom(value_size)) for i in batch])

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, batches))
    return time.perf_counter() - started


def cases(stack: ExitStack, workdir: Path, quick: bool) -> list[Case]:
    from tests.etcd_cluster import EtcdCluster, etcdctl_binary

    keys, value_size = (20_000, 1_000) if quick else (100_000, 10_000)
    cluster = EtcdCluster(1, "3.5", extra_args=["--quota-backend-bytes=8589934592"])
    stack.callback(cluster.close)
    cluster.start()
    endpoint = cluster.endpoints[0]
    # Filled from a child process: the harness's peak RSS of a command includes whatever this
    # process held when it forked the command, so this process must stay small.
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.bench_etcd", "--fill", endpoint, str(keys), str(value_size)],
                   cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    size_mb = keys * value_size / 1e6
    print(f"bench etcd: filled {keys} keys, {size_mb:.0f} MB of values, in {seconds:.1f}s", file=sys.stderr)

    etcdctl = etcdctl_binary("3.5")
    ours = [sys.executable, "-m", "kubectl_state", "etcd"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    export_dir = workdir / "export"
    # An export directory is never overwritten, so each repetition starts by removing the last one;
    # `exec` keeps the measured process the Python one.
    export_cmd = ["sh", "-c", f'rm -rf "{export_dir}" && exec "$@"', "sh", *ours, "export", str(export_dir),
                  "--endpoints", endpoint, "--prefix", PREFIX]
    repeat = 1 if quick else 3
    return [
        Case("etcd", f"snapshot-save-{size_mb:.0f}MB",
             [*ours, "snapshot", "save", str(workdir / "ours.db"), "--endpoints", endpoint],
             baseline=[etcdctl, f"--endpoints={endpoint}", "snapshot", "save", str(workdir / "etcdctl.db")],
             baseline_name="etcdctl snapshot save", repeat=repeat, env=env),
        Case("etcd", f"export-{keys}-keys",
             export_cmd,
             baseline=[etcdctl, f"--endpoints={endpoint}", "--command-timeout=600s", "get", "--prefix", PREFIX,
                       "-w", "json"],
             baseline_name="etcdctl get --prefix -w json", repeat=repeat, env=env),
    ]


if __name__ == "__main__":
    # python -m bench.bench_etcd --fill ENDPOINT KEYS VALUE_SIZE
    if len(sys.argv) != 5 or sys.argv[1] != "--fill":
        raise SystemExit("usage: python -m bench.bench_etcd --fill ENDPOINT KEYS VALUE_SIZE")
    fill([sys.argv[2]], int(sys.argv[3]), int(sys.argv[4]))
