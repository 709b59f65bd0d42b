# The two entry points a fresh machine needs (see README.md):
#   make demo   run the main job (bump-tag) on the bundled example repository
#   make test   install what the tests need, then lint, type-check and run every test
.PHONY: demo test lint typecheck unit bootstrap bench

PYTHON ?= python3

bootstrap:
	@bash scripts/bootstrap

demo: bootstrap
	@bash scripts/demo

lint:
	$(PYTHON) -m ruff check gitops_glue tests benchmarks
	$(PYTHON) -m ruff format --check gitops_glue

typecheck:
	$(PYTHON) -m mypy

unit:
	$(PYTHON) -m pytest -q

test: bootstrap lint typecheck unit

bench: bootstrap
	$(PYTHON) benchmarks/cli_startup.py
