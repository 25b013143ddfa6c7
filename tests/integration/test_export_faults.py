"""`kubectl state export` when things go wrong half-way (issue 4): the API server dies, the
user presses Ctrl-C, the disk fills up, PATH is already taken.

Every test runs the real command as a child process (`python -m kubectl_state export`)
against its own API test server on its own etcd, seeded with a few thousand ConfigMaps
written straight into etcd. Faults are injected once the export is demonstrably under way
(its temporary archive exists and is growing), found by polling rather than by sleeping a
fixed time, so a slow or busy machine only makes the tests slower, not flaky.

The promise checked each time: a non-zero exit with a one-line `error:` message, nothing
at PATH, and no temporary leftovers next to it.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubectl_state.core.etcd.client import EtcdClient, Op
from kubectl_state.core.kube.client import KubeClient
from tests.apiserver.fixture import REPO_ROOT, KubeCluster

#: Enough objects that, in small pages, an export lasts well past the moment a fault is injected.
OBJECTS = 3000
NAMESPACE = "faults"
#: Small pages, one collection at a time: many requests, so "mid-export" is a wide window.
SLOW_EXPORT = ("--page-size", "20", "--concurrency", "1")
#: etcd refuses transactions of more than 128 operations by default.
TXN_OPS = 128
EXIT_INTERRUPTED = 130

pytestmark = pytest.mark.slow


def seed(cluster: KubeCluster, count: int = OBJECTS, *, random_kib: int = 1) -> None:
    """`count` ConfigMaps in NAMESPACE: one created through the API, the rest copies of what
    the server stored for it (new name and uid), put straight into etcd. Each holds
    `random_kib` KiB of random base64, so archives do not compress to nothing."""
    with KubeClient.from_kubeconfig(cluster.kubeconfig) as kube, EtcdClient(cluster.etcd_endpoints) as etcd:
        kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
        kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                     body={"metadata": {"name": "cm-000000"}, "data": {"blob": "TEMPLATE"}})
        template = etcd.get(f"{cluster.prefix}/configmaps/{NAMESPACE}/cm-000000".encode())
        assert template is not None, "the test server did not store the ConfigMap where expected"
        text = template.value.decode()
        uid = text.split('"uid":"', 1)[1].split('"', 1)[0]
        ops = []
        for index in range(1, count):
            name = f"cm-{index:06d}"
            blob = base64.b64encode(os.urandom(random_kib * 768)).decode()
            value = (text.replace('"cm-000000"', f'"{name}"').replace(uid, str(uuid.uuid4()))
                     .replace('"TEMPLATE"', f'"{blob}"'))
            ops.append(Op.put(f"{cluster.prefix}/configmaps/{NAMESPACE}/{name}".encode(), value.encode()))
            if len(ops) == TXN_OPS or index == count - 1:
                assert etcd.txn([], ops).succeeded
                ops = []


@pytest.fixture
def seeded(kube_cluster_factory: Callable[..., KubeCluster]) -> KubeCluster:
    cluster = kube_cluster_factory()
    seed(cluster)
    return cluster


def start_export(kubeconfig: str, path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "kubectl_state", "export", str(path), "--kubeconfig", kubeconfig, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
        # A test run started in the background (`make test &`) inherits SIGINT ignored, and Python
        # then keeps it ignored; the Ctrl-C test needs the default, as at a terminal.
        preexec_fn=_default_sigint,  # noqa: PLW1509 - it only resets one signal, async-signal-safe
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def temp_names(directory: Path, path: Path) -> list[Path]:
    return sorted(directory.glob(f".{path.name}.partial-*"))


def wait_until_under_way(proc: subprocess.Popen[str], path: Path, timeout: float = 120.0) -> None:
    """Poll until the export has written objects into its temporary archive: a directory
    holding object files, or a .tar.gz grown past its gzip header (its first batch flushed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the export ended (exit {proc.returncode}) before the fault was injected:\n{err}")
        for temp in temp_names(path.parent, path):
            if temp.is_dir() and sum(1 for _ in _files(temp)) >= 50:
                return
            if temp.is_file() and temp.stat().st_size > 1024:
                return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the export did not get under way within {timeout:.0f}s")


def _files(root: Path) -> Iterator[Path]:
    try:
        yield from root.rglob("*.yaml")
    except FileNotFoundError:  # the temp directory went away meanwhile
        return


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the export did not exit within {timeout:.0f}s of the fault:\n{err}")
    return proc.returncode, err


def assert_one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def assert_nothing_left(directory: Path) -> None:
    left = sorted(p.name for p in directory.iterdir())
    assert left == [], f"left behind in {directory}: {left}"


ARCHIVE_KINDS = pytest.mark.parametrize("name", ["backup.tar.gz", "backup"], ids=["tar.gz", "directory"])


@ARCHIVE_KINDS
@pytest.mark.timeout(300)
def test_api_server_killed_mid_export_fails_clearly_and_leaves_nothing(seeded: KubeCluster, tmp_path: Path,
                                                                       name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    proc = start_export(seeded.kubeconfig, target, *SLOW_EXPORT)
    wait_until_under_way(proc, target)
    seeded.servers[0].process.kill()

    code, err = finish(proc)

    assert code not in (0, EXIT_INTERRUPTED), err
    line = assert_one_line_error(err)
    assert "127.0.0.1" in line, line  # says which server it lost
    assert not os.path.lexists(target)
    assert_nothing_left(out)


@ARCHIVE_KINDS
@pytest.mark.timeout(300)
def test_ctrl_c_mid_export_exits_130_and_leaves_nothing(seeded: KubeCluster, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    proc = start_export(seeded.kubeconfig, target, *SLOW_EXPORT)
    wait_until_under_way(proc, target)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)

    code, err = finish(proc)

    assert code == EXIT_INTERRUPTED, err
    assert assert_one_line_error(err) == "error: interrupted"
    # It stops at the next page rather than listing everything first: far quicker than the
    # whole export, even on a busy machine.
    assert time.monotonic() - started < 30
    assert not os.path.lexists(target)
    assert_nothing_left(out)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards; skipped where mounting is not permitted."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


@ARCHIVE_KINDS
@pytest.mark.timeout(300)
def test_full_disk_fails_and_leaves_the_disk_empty(seeded: KubeCluster, full_disk: Path, name: str) -> None:
    target = full_disk / name
    # About 3 MB of random data against 1 MiB of space: the disk fills long before the end.
    code, err = finish(start_export(seeded.kubeconfig, target))

    assert code not in (0, EXIT_INTERRUPTED), err
    assert "No space left on device" in err, err
    assert not os.path.lexists(target)
    assert_nothing_left(full_disk)


@ARCHIVE_KINDS
@pytest.mark.timeout(300)
def test_full_disk_is_reported_in_one_error_line(seeded: KubeCluster, full_disk: Path, name: str) -> None:
    code, err = finish(start_export(seeded.kubeconfig, full_disk / name))

    assert code not in (0, EXIT_INTERRUPTED), err
    line = assert_one_line_error(err)
    assert "No space left on device" in line, line


@pytest.mark.timeout(120)
def test_existing_file_at_path_is_refused_without_overwrite_and_kept(kube_cluster: str, tmp_path: Path) -> None:
    target = tmp_path / "backup.tar.gz"
    target.write_bytes(b"an older backup")
    before = target.stat()

    code, err = finish(start_export(kube_cluster, target))

    assert code != 0
    line = assert_one_line_error(err)
    assert "already exists" in line and "refusing" in line, line
    assert target.read_bytes() == b"an older backup"
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.tar.gz"]


@pytest.mark.timeout(120)
def test_non_empty_directory_at_path_is_refused_without_overwrite_and_kept(kube_cluster: str,
                                                                           tmp_path: Path) -> None:
    target = tmp_path / "backup"
    target.mkdir()
    (target / "notes.txt").write_text("not a backup")

    code, err = finish(start_export(kube_cluster, target))

    assert code != 0
    line = assert_one_line_error(err)
    assert "already exists" in line and "refusing" in line, line
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "not a backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup"]
