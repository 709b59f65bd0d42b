# The two entry points a fresh machine needs (see README.md):
#   make demo   run the main job (bump-tag) on the bundled example repository
#   make test   install what the tests need, then lint, type-check and run every test
# For your own loop: make check (lint, types, unit and end-to-end tests; no cluster).
.PHONY: demo test check lint typecheck fast unit e2e cluster bootstrap test-tools bench docs

PYTHON ?= python3
PYTEST = $(PYTHON) -m pytest -q -p no:cacheprovider

bootstrap:
	@bash scripts/bootstrap

# What only the tests need, built from source once and then found in their caches
# (~/.cache): Gitea for the merge-request tests, and the testbed (helm 3 and 4, helmfile
# 0.166 and 1.x, helm-diff, the Kubernetes control plane, kwok). The two builds run side by
# side: each leaves a core idle at times (downloads, linking, Gitea's C build of SQLite).
test-tools:
	@bash scripts/gitea install & gitea=$$!; \
	bash scripts/testbed install; testbed=$$?; \
	wait $$gitea; gitea=$$?; \
	exit $$(( testbed || gitea ))

demo: bootstrap
	@bash scripts/demo

lint:
	$(PYTHON) -m ruff check gitops_glue tests benchmarks scripts
	$(PYTHON) -m ruff format --check gitops_glue tests benchmarks scripts

typecheck:
	$(PYTHON) -m mypy

# Everything but the cluster: unit tests, end-to-end tests against the real sshd,
# registry and Slack stand-in, and the stand-ins' own tests. Three pytest-xdist workers
# (a third keeps two cores busy while the others wait on servers and subprocesses): each
# worker starts its own servers; the tests share nothing else. make check leaves out the
# few tests marked slow (they mostly wait, or run a whole CI pipeline); make test runs them.
FAST_WORKERS ?= 3
fast:
	$(PYTEST) -n $(FAST_WORKERS) --dist worksteal -m "not cluster and not slow" tests

unit:
	$(PYTEST) tests/unit

e2e:
	$(PYTEST) tests/e2e tests/support

# Three workers, each with one cluster for its session: the cluster tests mostly wait
# (rollouts, verification windows, helm's timeouts), so they overlap well on two cores.
CLUSTER_WORKERS ?= 3
cluster:
	$(PYTEST) -n $(CLUSTER_WORKERS) --dist worksteal -m cluster tests/cluster

# Prints its wall time at the end, passed or not (target: under 3 minutes on a warm machine).
check: test-tools
	@start=$$(date +%s); status=0; \
	$(MAKE) --no-print-directory lint typecheck fast || status=$$?; \
	if [ $$status -eq 0 ]; then result=passed; else result=FAILED; fi; \
	echo "make check: $$result in $$(( $$(date +%s) - start )) s"; \
	exit $$status

# Every test in one run on four workers: the cluster tests, which mostly wait, overlap the
# others, which mostly compute. A worker starts its cluster at its first cluster test and
# keeps it for the session.
TEST_WORKERS ?= 4
test: bootstrap lint typecheck test-tools
	$(PYTEST) -n $(TEST_WORKERS) --dist worksteal tests

# Every benchmark; the table lands in benchmarks/README.md. mikefarah's yq (the peer of
# glue set / bump-tag) is built once with Go when there is one; without it those rows
# have no peer.
BENCH_BIN = $(HOME)/.cache/gitops-glue-bench/bin
bench: bootstrap
	@test -x $(BENCH_BIN)/yq || ! command -v go >/dev/null || \
		GOBIN=$(BENCH_BIN) go install github.com/mikefarah/yq/v4@v4.44.3
	$(PYTHON) benchmarks/run_all.py

# docs/commands.md is generated from the CLI (tests/unit/test_docs.py fails when it is stale).
docs:
	$(PYTHON) scripts/gen_command_docs.py
