# kubectl-state: the two commands a newcomer needs are `make demo` and `make test`.
# Everything runs from a fresh clone on Debian 12 with Python 3.11; `make test` as root (network
# namespaces), `make demo` as any user.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Debian packages the tests use: etcd 3.4 (old side of upgrades), HAProxy (the API endpoint),
# sshd and iproute2 (multi-host tests in network namespaces); binutils (objdump), which
# PyInstaller uses to find the shared libraries it bundles into the krew executable; cron,
# where the backup playbook installs its schedule on hosts without systemd.
SYSTEM_PACKAGES := etcd-server haproxy openssh-server iproute2 binutils cron
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv sysdeps test lint typecheck imports ansible-sanity pytest demo bench dist clean

help:
	@echo "make demo   run a local control plane, then backup, restore and migration"
	@echo "make test   lint, type-check, check import layers and run the test suite"
	@echo "make bench  run the benchmarks under bench/ and print a table of ratios"
	@echo "make dist   build the sdist, wheel, Ansible collection and krew archive into dist/"

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

# Installs only what is missing, so a prepared machine is not touched (and needs no network).
sysdeps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q --no-install-recommends $$missing || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $$missing; }; \
	fi

lint: venv
	$(BIN)/ruff check kubectl_state tests bench packaging ansible_collections

typecheck: venv
	$(BIN)/mypy kubectl_state

imports: venv
	$(BIN)/lint-imports

# pytest exits non-zero (5) when it collects no test, so an empty run cannot pass.
pytest: venv sysdeps
	$(BIN)/pytest

# ansible-test sanity on the collection. Most of its tests run in virtual environments of their
# own, whose pip it bootstraps with a script from a download host of its own; bootstrap_pip.py
# stands in for that script using PyPI alone (see the file).
ansible-sanity: venv
	$(BIN)/python ansible_collections/kubectl_state/control_plane/tests/sanity/bootstrap_pip.py --install >/dev/null
	cd ansible_collections/kubectl_state/control_plane && $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11

# The molecule scenarios (molecule/): the collection's playbooks on network-namespace hosts over
# SSH, from the repository root with the venv first on PATH. Each scenario's destroy removes its
# hosts and everything they ran, and molecule's own work directory goes with `molecule reset`.
MOLECULE_SCENARIOS := default lifecycle migrate pivot
molecule: venv sysdeps
	@for s in $(MOLECULE_SCENARIOS); do \
	  echo "molecule test --scenario-name $$s"; \
	  (cd $(CURDIR) && PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule test --scenario-name $$s); rc=$$?; \
	  (cd $(CURDIR) && PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule reset --scenario-name $$s) >/dev/null 2>&1; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	done

test: venv sysdeps lint typecheck imports ansible-sanity pytest molecule

demo: venv sysdeps
	$(BIN)/python -m tests.demo

bench: venv sysdeps
	$(BIN)/python -m bench

# The archive fuzz properties of tests/hostile for thousands of examples each (`make test`
# runs them bounded); any crash other than the project's own errors fails the run.
.PHONY: fuzz
fuzz: venv
	KUBECTL_STATE_FUZZ=long $(BIN)/pytest tests/hostile/test_fuzz.py -p no:cacheprovider --timeout 14400

# The release artifacts, all in dist/: the sdist and wheel; the collection tarball; and the krew
# archive for linux/amd64 (a PyInstaller one-folder build plus LICENSE, see packaging/), whose
# sha256 is written into krew-manifest.yaml (and dist/state.yaml, the copy for krew's index).
# The `test` extra brings PyInstaller and build (the `dist` extra has them alone).
COLLECTION := ansible_collections/kubectl_state/control_plane

dist: venv sysdeps
	rm -rf dist
	$(BIN)/pyproject-build --outdir dist .
	$(BIN)/ansible-galaxy collection build --force --output-path dist $(COLLECTION)
	$(BIN)/python packaging/build_krew.py --dist dist --work build/krew --update-manifest
	@ls -l dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
