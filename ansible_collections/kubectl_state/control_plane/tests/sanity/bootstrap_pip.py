# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""A stand-in for pip's get-pip.py, for running ansible-test where only PyPI is reachable.

ansible-test runs most sanity tests in virtual environments of their own, created without
pip, and bootstraps pip into them with a get-pip.py script it downloads from a host of its
own (not PyPI) and caches under ~/.ansible/test/cache/. This script does the same job from
what is at hand: the pip bundled with Python (ensurepip), then the pinned pip from PyPI.

    python bootstrap_pip.py --install   # put it where ansible-test looks for its cached copy

ansible-test runs the cached copy as `__main__` with pip-install arguments (the pinned pip,
plus get-pip's own --no-setuptools/--no-wheel, which pip itself does not know).
"""

from __future__ import annotations

import ensurepip
import os
import shutil
import subprocess
import sys
import types


def cache_path():
    """Where ansible-test looks for the bootstrap script of the pip version it pins."""
    from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-outside-toplevel

    python = types.SimpleNamespace(version=f"{sys.version_info[0]}.{sys.version_info[1]}")
    version = get_venv_packages(python)["pip"].replace(".", "_")
    return os.path.expanduser(f"~/.ansible/test/cache/get_pip_{version}.py")


def install():
    target = cache_path()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(os.path.abspath(__file__), target)
    print(target)


def bootstrap(args):
    # ensurepip points PIP_CONFIG_FILE at /dev/null in this process's environment; the real
    # install must see the machine's pip configuration (index, proxy CA), so it gets a copy
    # of the environment from before.
    environ = dict(os.environ)
    ensurepip.bootstrap()
    pip_args = [arg for arg in args if arg not in ("--no-setuptools", "--no-wheel")]
    return subprocess.call([sys.executable, "-m", "pip", "install", *pip_args], env=environ)


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        install()
    else:
        sys.exit(bootstrap(sys.argv[1:]))
