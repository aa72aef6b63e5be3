# Convenience targets; the README's two commands are ./scripts/run and ./scripts/test.
.PHONY: run test lint bench bench-ingest

run:
	./scripts/run

test:
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# Every benchmark of the project; each writes its section of BENCHMARKS.md.
bench: bench-ingest

bench-ingest:
	.venv/bin/python -m bench.ingest --count 10000 --runs 3
