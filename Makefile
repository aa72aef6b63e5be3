# Convenience targets; the README's two commands are ./scripts/run and ./scripts/test.
.PHONY: run test lint dev-venv bench bench-ingest bench-ingest-load bench-transcript bench-queue bench-metrics bench-export bench-load bench-pages
# Benchmarks share the machine's cores: never two at once, even under make -j.
.NOTPARALLEL:

run:
	./scripts/run

test:
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# The benchmarks need requirements-dev.txt (aiohttp, PyYAML): the virtualenv ./scripts/test
# makes, created or brought up to date here (a no-op when it is current).
dev-venv:
	@bash -c 'source scripts/_setup.sh requirements-dev.txt'

# Every benchmark of the project; each writes its section of BENCHMARKS.md (machine, date,
# figures). They use DATABASE_URL's PostgreSQL server, else the embedded one, and create
# their own databases there. About 30 minutes in all, most of it bench-queue, bench-load and
# seeding bench-pages' million items.
bench: bench-ingest bench-ingest-load bench-transcript bench-queue bench-metrics bench-export bench-load bench-pages

bench-ingest: dev-venv
	.venv/bin/python -m bench.ingest --count 10000 --runs 3

# A 150,000-record upload through a real worker while 16 reviewers label (issue 12).
bench-ingest-load: dev-venv
	.venv/bin/python -m bench.ingest_load

# Server time of a review page's transcript for a 1 MB turn and a deep quote.
bench-transcript: dev-venv
	.venv/bin/python -m bench.transcript

bench-queue: dev-venv
	.venv/bin/python -m bench.queue

bench-metrics: dev-venv
	.venv/bin/python -m bench.metrics

# Reuses the study bench-metrics seeds (seeds it if missing).
bench-export: dev-venv
	.venv/bin/python -m bench.export

# 64 reviewers for 3 minutes with reading time, then 3 minutes without, through gunicorn
# run with docker-compose.yml's web command and settings.
bench-load: dev-venv
	.venv/bin/python -m bench.load --minutes 3 --reviewers 64

# Every researcher page at 10,000 and at 1,000,000 items (1,000,000 labels), through
# Django's test client; seeding the large study takes about 5 minutes (--reuse-db keeps it).
bench-pages: dev-venv
	.venv/bin/python -m bench.pages
