# Convenience targets; the README's two commands are ./scripts/run and ./scripts/test.
.PHONY: run test lint bench bench-ingest bench-queue bench-metrics bench-export

run:
	./scripts/run

test:
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# Every benchmark of the project; each writes its section of BENCHMARKS.md.
bench: bench-ingest bench-queue bench-metrics bench-export

bench-ingest:
	.venv/bin/python -m bench.ingest --count 10000 --runs 3

bench-queue:
	.venv/bin/python -m bench.queue

bench-metrics:
	.venv/bin/python -m bench.metrics

# Reuses the study bench-metrics seeds (seeds it if missing).
bench-export:
	.venv/bin/python -m bench.export
