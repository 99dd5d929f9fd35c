# collective.zasync: `make run` serves a demo site, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell grep -i '^uv==' constraints.txt | cut -d= -f3)
PORT ?= 8080
WORKERS ?= 2
CLUSTER ?= var/cluster

.PHONY: install run test test-zeo test-browser system-deps cluster-start cluster-stop test-cluster bench clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "uv==$(UV_VERSION)"

.stamp-install: setup.py constraints.txt | $(BIN)/uv
	$(BIN)/uv pip install -q -p $(BIN)/python -c constraints.txt -e ".[test]"
	touch $@

install: .stamp-install

system-deps:
	bash scripts/install-system-deps.sh

## Serve a demo site on 127.0.0.1:$(PORT): one process that queues and runs jobs.
run: install
	$(BIN)/zasync-cluster standalone --root var/instance --http-port $(PORT)
	ZASYNC_DISABLE=1 $(BIN)/zconsole run var/instance/etc/zope.conf \
	    src/collective/zasync/scripts/create_site.py Plone admin:admin
	@echo
	@echo "  Site:  http://127.0.0.1:$(PORT)/Plone   (login: admin / admin)"
	@echo "  Demo:  http://127.0.0.1:$(PORT)/Plone/@@zasync-demo"
	@echo "  Panel: http://127.0.0.1:$(PORT)/Plone/@@zasync-controlpanel"
	@echo
	$(BIN)/runwsgi var/instance/etc/zope.ini

## Every test: in-process jobs, multi-process ZEO cluster, browser.
test: install system-deps
	bash scripts/run-tests.sh

## A ZEO server, one client on $(PORT) and $(WORKERS) workers, in the background.
cluster-start: install
	$(BIN)/zasync-cluster start --root $(CLUSTER) --workers $(WORKERS) --client-port $(PORT) $(CLUSTER_FLAGS)

cluster-stop:
	$(BIN)/zasync-cluster stop --root $(CLUSTER)

bench: install
	bash scripts/install-bench-deps.sh
	$(BIN)/python benchmarks/run.py $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) .stamp-install var build *.egg-info src/*.egg-info
