# Shortcuts; every target is a plain command from the README, so make is optional.
.PHONY: help dev lint format test demo bench

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

dev:  ## create .venv with the project (editable) and the test tools
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'

lint:  ## ruff lint + format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:  ## ruff format
	.venv/bin/ruff format .

test:  ## the whole suite (what CI runs)
	.venv/bin/python -m pytest -q

demo:  ## generate, ingest and serve the demo on 127.0.0.1:8501
	.venv/bin/hybridlens demo

bench:  ## print the benchmark figures (slow; run by hand)
	.venv/bin/python benchmarks/ingest_throughput.py
	.venv/bin/python benchmarks/metrics_rollups.py
	.venv/bin/python benchmarks/receiver.py
