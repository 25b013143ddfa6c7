# kubectl-state: the two commands a newcomer needs are `make demo` and `make test`.
# Everything runs from a fresh clone as root on Debian 12 with Python 3.11.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Debian packages the tests use: etcd 3.4 (old side of upgrades), HAProxy (the API endpoint),
# sshd and iproute2 (multi-host tests in network namespaces).
SYSTEM_PACKAGES := etcd-server haproxy openssh-server iproute2
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv sysdeps test lint typecheck imports ansible-sanity pytest demo bench clean

help:
	@echo "make demo   run a local control plane, then backup, restore and migration"
	@echo "make test   lint, type-check, check import layers and run the test suite"
	@echo "make bench  run the benchmarks under bench/ and print a table of ratios"

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
	  $(SUDO) apt-get install -y -q $$missing || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $$missing; }; \
	fi

lint: venv
	$(BIN)/ruff check kubectl_state tests bench ansible_collections

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

test: venv sysdeps lint typecheck imports ansible-sanity pytest

demo: venv sysdeps
	$(BIN)/python -m tests.demo

bench: venv sysdeps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
