"""Migrate the database DATABASE_URL names and seed one queue study with bench/queue.py's
own seeding (support-agent transcripts by SQL, the app's arms and enrolments):

    DATABASE_URL=... python -m tests.faults.seed SLUG ITEMS REVIEWERS

The fault tests run it in a subprocess against their private PostgreSQL, which the test
process's own Django connection does not reach. The reviewers are bench/queue.py's
(``bench-reviewer-NN``, password ``bench.queue.PASSWORD``); the last line printed is the
study's id.
"""

from __future__ import annotations

import os
import sys

import django


def main() -> None:
    slug, items, reviewers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    django.setup()
    from django.core.management import call_command

    from bench import queue

    call_command("migrate", verbosity=0)
    queue.seed_table_ensure()
    people = queue.reviewers_ensure(reviewers)
    record = queue.scenario_seed(queue.Scenario("faults", slug, f"fault test: {items} items", items, 0), people)
    sys.stdout.write(f"{record['study_id']}\n")


if __name__ == "__main__":
    main()
