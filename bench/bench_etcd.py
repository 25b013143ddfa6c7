"""etcd level: `kubectl-state etcd snapshot save` and `etcd export` against etcdctl, on one real etcd.

The database is filled with random (incompressible) values in concurrent transactions of
~8 MiB over etcd's gRPC KV/Txn (the member runs with request and txn limits raised to
allow them): quick (~20 MB, 20,000 keys of 1 KB) takes a few seconds, full (~1 GB,
100,000 keys of 10 KB) under a minute on 2 cores. How long it took is printed on stderr.
The whole full run takes about 10 minutes (etcdctl's JSON of 1 GB needs ~8 GB RAM).

Cases (each the whole process, peak RSS from the harness):
- snapshot-save: ours (over gRPC, the JSON gateway as fallback) vs `etcdctl snapshot save`
  of the same member.
- export: ours (directory: manifest + JSON lines, through the JSON gateway) vs
  `etcdctl get --prefix /registry -w json` of the same keys (which holds the whole answer
  in memory; ours streams pages).
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
#: Raw bytes per fill transaction, and what the bench member is started with so they fit
#: (etcd's defaults, 1.5 MiB and 128 operations, would make every ~1 MB txn its own fsync).
TXN_BYTES = 8 * 1024 * 1024
ETCD_ARGS = ["--quota-backend-bytes=8589934592", "--max-request-bytes=10485760", "--max-txn-ops=4096"]


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def txn_request(puts: list[tuple[bytes, bytes]]) -> bytes:
    """etcd's TxnRequest (rpc.proto): success (2) = RequestOp {request_put (2) = PutRequest {key 1, value 2}}."""
    return b"".join(_field(2, _field(2, _field(1, k) + _field(2, v))) for k, v in puts)


def fill(endpoints: list[str], keys: int, value_size: int, threads: int = 4) -> float:
    """Put `keys` keys of `value_size` random bytes under PREFIX; returns the seconds it took.

    Over etcd's gRPC KV/Txn when grpcio is there (the JSON gateway would spend most of the
    fill base64-decoding on the member), else through the gateway in txns of etcd's default size.
    """
    started = time.perf_counter()
    try:
        import grpc
    except ImportError:
        grpc = None
    if grpc is None:
        _fill_gateway(endpoints, keys, value_size, threads)
        return time.perf_counter() - started
    per_txn = max(1, min(4096, TXN_BYTES // (value_size + 64)))
    batches = [range(start, min(keys, start + per_txn)) for start in range(0, keys, per_txn)]
    target = endpoints[0].split("://", 1)[-1]
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)]) as channel:
        call = channel.unary_unary("/etcdserverpb.KV/Txn", request_serializer=txn_request,
                                   response_deserializer=lambda data: data)

        def put(batch: range) -> None:
            # Random bytes: incompressible, so neither side gets a free ride from compression.
            call([(f"{PREFIX}{i:08d}".encode(), os.urandom(value_size)) for i in batch], timeout=120)

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, batches))
    return time.perf_counter() - started


def _fill_gateway(endpoints: list[str], keys: int, value_size: int, threads: int) -> None:
    from kubectl_state.core.etcd.client import EtcdClient, Op

    per_txn = max(1, min(128, 1024 * 1024 // (value_size + 64)))
    batches = [range(start, min(keys, start + per_txn)) for start in range(0, keys, per_txn)]
    with EtcdClient(endpoints, timeout=60) as client:

        def put(batch: range) -> None:
            client.txn([], [Op.put(f"{PREFIX}{i:08d}".encode(), os.urandom(value_size)) for i in batch])

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, batches))


def cases(stack: ExitStack, workdir: Path, quick: bool) -> list[Case]:
    from tests.etcd_cluster import EtcdCluster, etcdctl_binary

    keys, value_size = (20_000, 1_000) if quick else (100_000, 10_000)
    cluster = EtcdCluster(1, "3.5", extra_args=ETCD_ARGS)
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
