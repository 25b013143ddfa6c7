"""A write load on a control plane, to prove a lifecycle step loses no acknowledged write.

Two writers run side by side until SIGTERM (or SIGINT, or the stop file appearing):
  api   creates ConfigMaps load-RUN-1, load-RUN-2, ... through the Kubernetes API (a kubeconfig that
        points at the fixed API endpoint), with the core's KubeClient;
  etcd  puts /kubectl-state-load/RUN/1, /2, ... directly into etcd with the core's EtcdClient,
        through any member that answers.
A write that fails is retried (same name, same value) until it is acknowledged or
--retry-seconds run out; a retried create that finds its object already there counts as
acknowledged (the first attempt landed and only its answer was lost). Then every acknowledged
write is read back, and per path the tool reports, as JSON on stdout (and in --output):
  acknowledged, lost (acknowledged but not readable), failed_after_retries, longest_gap_seconds
  (the longest time without an acknowledged write, from the first attempt to the last ack).
Exit status 0 when nothing was lost and nothing failed after retries, 1 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubectl_state.core.errors import ApiError, KubectlStateError
from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.kube.client import KubeClient

ETCD_PREFIX = "/kubectl-state-load/"
CONFIGMAP_PREFIX = "load-"


@dataclass
class PathStats:
    """What one writer saw. Only its own thread writes it until the writer has stopped."""

    acknowledged: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    last_error: str = ""
    started: float = 0.0
    ack_times: list[float] = field(default_factory=list)

    def longest_gap(self) -> float:
        times = [self.started, *self.ack_times]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


class Writer:
    """Writes numbered items one after another, each retried until acknowledged or out of time."""

    def __init__(self, name: str, write: Callable[[int], None], stop: threading.Event, *,
                 retry_seconds: float, interval: float) -> None:
        self.name = name
        self._write = write
        self._stop = stop
        self.retry_seconds = retry_seconds
        self.interval = interval
        self.stats = PathStats()
        self.thread = threading.Thread(target=self._run, name=f"load-{name}", daemon=True)

    def _run(self) -> None:
        self.stats.started = time.monotonic()
        number = 0
        while not self._stop.is_set():
            number += 1
            if self._attempt(number):
                self.stats.acknowledged.append(number)
                self.stats.ack_times.append(time.monotonic())
            else:
                self.stats.failed.append(number)
            self._stop.wait(self.interval)

    def _attempt(self, number: int) -> bool:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            try:
                self._write(number)
                return True
            except KubectlStateError as exc:
                self.stats.last_error = exc.message
            # A write already under way is finished even when stop is asked: its outcome counts.
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def configmap_name(run: str, number: int) -> str:
    return f"{CONFIGMAP_PREFIX}{run}-{number}"


def etcd_key(run: str, number: int) -> str:
    return f"{ETCD_PREFIX}{run}/{number}"


def configmap_writer(kube: KubeClient, namespace: str, run: str) -> Callable[[int], None]:
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    def write(number: int) -> None:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": configmap_name(run, number)}, "data": {"n": str(number)}}
        try:
            kube.request("POST", path, body=body, timeout=(3.0, 10.0))
        except ApiError as exc:
            if exc.code != 409:  # 409: an earlier attempt created it; only its answer was lost
                raise
    return write


def etcd_writer(etcd: EtcdClient, run: str) -> Callable[[int], None]:
    def write(number: int) -> None:
        etcd.put(etcd_key(run, number).encode(), str(number).encode())
    return write


def verify_configmaps(kube: KubeClient, namespace: str, run: str, numbers: Sequence[int]) -> list[int]:
    """The numbers whose ConfigMap is missing or holds another number."""
    found: dict[str, str] = {}
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    params: dict[str, str | int] = {"limit": 500}
    while True:
        page = _retry(functools.partial(kube.get, path, params=params))
        for item in page.get("items", []):
            found[item["metadata"]["name"]] = (item.get("data") or {}).get("n", "")
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
        params = {"limit": 500, "continue": token}
    return [n for n in numbers if found.get(configmap_name(run, n)) != str(n)]


def verify_etcd(etcd: EtcdClient, run: str, numbers: Sequence[int]) -> list[int]:
    found = {kv.key.decode(): kv.value.decode()
             for kv in _retry(lambda: list(etcd.iter_prefix(etcd_key(run, 0)[:-1].encode())))}
    return [n for n in numbers if found.get(etcd_key(run, n)) != str(n)]


def _retry(read: Callable[[], Any], seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except KubectlStateError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def report(stats: PathStats, lost: Sequence[int]) -> dict[str, Any]:
    return {
        "acknowledged": len(stats.acknowledged),
        "lost": len(lost),
        "lost_items": list(lost)[:20],
        "failed_after_retries": len(stats.failed),
        "longest_gap_seconds": round(stats.longest_gap(), 3),
        "last_error": stats.last_error,
    }


def progress(writers: Sequence[Writer]) -> dict[str, Any]:
    return {w.name: {"acknowledged": len(w.stats.acknowledged), "failed_after_retries": len(w.stats.failed)}
            for w in writers}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.lifecycle.load", description=__doc__.splitlines()[0],
                                     epilog="Stop it with SIGTERM or by creating the --stop-file.")
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig for the API path (through the endpoint)")
    parser.add_argument("--namespace", default="default", help="namespace of the ConfigMaps (default: default)")
    parser.add_argument("--etcd-endpoints", default="", help="comma-separated etcd client URLs for the etcd path")
    parser.add_argument("--etcd-ca-cert", help="CA of the etcd members' certificates")
    parser.add_argument("--etcd-cert", help="client certificate for etcd")
    parser.add_argument("--etcd-key", help="client key for etcd")
    parser.add_argument("--run-id", default=secrets.token_hex(4),
                        help="names this run's objects and keys, so an earlier run's cannot pass for this one's "
                             "(default: random)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between writes (default 0.05)")
    parser.add_argument("--retry-seconds", type=float, default=60.0,
                        help="how long one write is retried before it counts as failed (default 60)")
    parser.add_argument("--stop-file", type=Path, help="stop once this file exists")
    parser.add_argument("--progress", type=Path, help="rewrite this JSON file with the counts every second")
    parser.add_argument("--output", type=Path, help="also write the final report here")
    args = parser.parse_args(argv)
    if not args.kubeconfig and not args.etcd_endpoints:
        parser.error("give --kubeconfig, --etcd-endpoints, or both")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    kube = KubeClient.from_kubeconfig(str(args.kubeconfig)) if args.kubeconfig else None
    endpoints = [e for e in args.etcd_endpoints.split(",") if e]
    etcd = EtcdClient(endpoints, ca_file=args.etcd_ca_cert, cert_file=args.etcd_cert, key_file=args.etcd_key,
                      timeout=5.0) if endpoints else None
    writers = []
    if kube is not None:
        writers.append(Writer("api", configmap_writer(kube, args.namespace, args.run_id), stop,
                              retry_seconds=args.retry_seconds, interval=args.interval))
    if etcd is not None:
        writers.append(Writer("etcd", etcd_writer(etcd, args.run_id), stop, retry_seconds=args.retry_seconds,
                              interval=args.interval))
    for writer in writers:
        writer.thread.start()
    while not stop.is_set():
        if args.stop_file is not None and args.stop_file.exists():
            stop.set()
        if args.progress is not None:
            tmp = args.progress.with_suffix(".tmp")
            tmp.write_text(json.dumps(progress(writers)))
            tmp.replace(args.progress)
        stop.wait(1.0)
    for writer in writers:
        writer.thread.join()
    result: dict[str, Any] = {}
    for writer in writers:
        if writer.name == "api" and kube is not None:
            lost = verify_configmaps(kube, args.namespace, args.run_id, writer.stats.acknowledged)
        elif etcd is not None:
            lost = verify_etcd(etcd, args.run_id, writer.stats.acknowledged)
        result[writer.name] = report(writer.stats, lost)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.output is not None:
        args.output.write_text(text + "\n")
    print(text)
    bad = any(r["lost"] or r["failed_after_retries"] for r in result.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
