# Dockyard: `make install` sets up a fresh Debian 12 machine (idempotent), `make test` runs the suite.
SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BINDIR ?= /usr/local/bin
PYTEST_ARGS ?=

# System packages, each with its reason (see README "Dependencies").
APT_PACKAGES := \
	python3 python3-venv python3-dev gcc libc6-dev make \
	busybox-static debootstrap \
	iproute2 nftables libnftables1 libseccomp2 uidmap \
	e2fsprogs xz-utils zstd tmux \
	docker-registry apache2-utils skopeo \
	runc crun podman conmon catatonit docker.io containerd hyperfine

.PHONY: install apt venv shim launchers run test lint bench clean

install: apt venv shim launchers
	@echo "dockyard: installed (dockyard, dockyard-runc in $(BINDIR))"

apt:
	@$(ROOT)/scripts/apt-ensure $(APT_PACKAGES)

$(PY):
	/usr/bin/python3 -m venv $(VENV)

$(VENV)/.stamp: pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '$(ROOT)[test]'
	touch $@

venv: $(VENV)/.stamp

shim:
	@if [ -f $(ROOT)/shim/Makefile ]; then $(MAKE) -s -C $(ROOT)/shim; fi

launchers: venv
	@$(ROOT)/scripts/install-launchers $(ROOT) $(BINDIR)

# The README's first command: install what is missing, make the busybox image offline, start the
# daemon if none answers, then `dockyard run -it busybox sh` (or the walkthrough without a tty).
run: install
	@$(ROOT)/scripts/quickstart

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests bench

bench: install
	@for b in $(ROOT)/bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(ROOT)/build
