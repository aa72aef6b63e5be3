"""Researcher pages do work in proportion to what they show, not to the study's size.

Two studies seeded as bench/pages.py seeds them (a small and a five times larger one):
every researcher page answers with the same number of queries at both sizes, and no
query reads more rows of the big tables (items, quota rows, assignments, labels) than a
page shows, found by EXPLAIN ANALYZE of each query the page ran. The times at a million
items are in BENCHMARKS.md (``python -m bench.pages``).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from bench.pages import seed_study
from reviewapp.ingest.models import IngestJob, Item
from reviewapp.queue.models import Assignment, ItemQuota, Label
from reviewapp.studies.models import Study
from tests.builders import user

BIG_TABLES = (Item._meta.db_table, ItemQuota._meta.db_table, Assignment._meta.db_table, Label._meta.db_table)
# Rows of one big table a page may read: its 50 items (and a look-ahead), or the 300
# labels a reviewer page's charts read, with their items.
ROWS_PER_PAGE = 600
HX = {"HTTP_HX_REQUEST": "true"}


def seeded(slug: str, items: int) -> tuple[Study, User]:
    researcher = user(f"researcher-{slug}", is_staff=True)
    record = seed_study(slug=slug, items=items, labels=items, reviewers=6, researcher=researcher, vacuum=False)
    with connection.cursor() as cursor:
        # Table statistics, as autovacuum keeps them: plans are chosen as in production.
        cursor.execute(f"ANALYZE {', '.join(BIG_TABLES)}")
    return Study.objects.get(pk=record["study_id"]), researcher


@pytest.fixture
def sizes(db):
    """A study of 300 items and labels and one of 1,500, each with its own researcher."""
    return {"small": seeded("pages-small", 300), "large": seeded("pages-large", 1500)}


def pages(study: Study) -> list[tuple[str, str, dict]]:
    base = f"/studies/{study.slug}/"
    reviewer = Label.objects.filter(study=study).values_list("reviewer_id", flat=True).first()
    last = Item.objects.filter(study=study).order_by("priority", "-id").values_list("priority", "id")[60]
    oldest = Label.objects.filter(study=study, reviewer_id=reviewer).order_by("submitted_at", "id")[30].pk
    return [
        ("study list", "/", {}),
        ("overview", base, {}),
        ("ingest-jobs poll", f"{base}?part=jobs", HX),
        ("metrics panel", f"{base}metrics/", HX),
        ("settings", f"{base}settings/", {}),
        ("arms", f"{base}arms/", {}),
        ("reviewers", f"{base}reviewers/", {}),
        ("items", f"{base}items/", {}),
        ("items, late page", f"{base}items/?show=all&after={last[0]}.{last[1]}", {}),
        ("items with gold", f"{base}items/?show=gold", {}),
        ("items without gold", f"{base}items/?show=no-gold", {}),
        ("probes", f"{base}items/?show=probes", {}),
        ("audit", f"{base}audit/", {}),
        ("dashboard", f"{base}dashboard/", {}),
        ("dashboard sort", f"{base}dashboard/?sort=labels&dir=asc", {**HX, "HTTP_HX_TARGET": "reviewer-table"}),
        ("reviewer page", f"{base}dashboard/reviewers/{reviewer}/", {}),
        (
            "reviewer's old labels",
            f"{base}dashboard/reviewers/{reviewer}/?older={oldest}",
            {**HX, "HTTP_HX_TARGET": "recent-labels"},
        ),
        ("exports", f"{base}exports/", {}),
        ("exports jobs poll", f"{base}exports/?part=jobs", HX),
    ]


def plan_rows_read(plan: dict) -> dict[str, int]:
    """Rows each big table gave the plan: returned plus filtered out, over all loops."""
    out = dict.fromkeys(BIG_TABLES, 0)
    if plan.get("Relation Name") in out:
        read = (
            plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
        )
        out[plan["Relation Name"]] += read * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        for table, n in plan_rows_read(child).items():
            out[table] += n
    return out


def rows_read(statements: list[str]) -> dict[str, int]:
    """The most rows any one of these SELECTs read from each big table.

    Sequential scans, hash and merge joins are priced out first: on tables this small the
    planner reads a whole table rather than look up a page's rows in an index, which it
    does not do at a million rows. A query that needs every row still reads every row
    (through an index), and is caught.
    """
    most = dict.fromkeys(BIG_TABLES, 0)
    with connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            cursor.execute(f"SET LOCAL {setting} = off")
        for statement in statements:
            upper = statement.lstrip().upper()
            # Reads only: EXPLAIN ANALYZE runs the statement.
            if not upper.startswith(("SELECT", "WITH")) or any(w in upper for w in ("DELETE", "INSERT", "UPDATE ")):
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}")
            (plan,) = cursor.fetchone()[0]
            for table, n in plan_rows_read(plan["Plan"]).items():
                most[table] = max(most[table], n)
    return most


def visit(client, url: str, headers: dict) -> list[str]:
    """The SQL of every query the page ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code in (200, 286), (url, response.status_code)
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db
class TestResearcherPagesAtScale:
    def test_every_page_runs_as_many_queries_and_reads_only_what_it_shows_at_five_times_the_data(self, client, sizes):
        counts = {}
        for size, (study, researcher) in sizes.items():
            client.force_login(researcher)
            for name, url, headers in pages(study):
                statements = visit(client, url, headers)
                counts[size, name] = len(statements)
                if size == "large":
                    read = rows_read(statements)
                    assert max(read.values()) <= ROWS_PER_PAGE, (name, read)

        for name, *_ in pages(sizes["small"][0]):
            assert counts["small", name] == counts["large", name], name

    def test_the_row_check_catches_a_pass_over_a_table(self, sizes):
        # Positive controls: what the study list and overview did before (a join of items
        # and enrolments; a count of the items) read every item.
        study, _ = sizes["large"]
        studies = Study.objects.filter(pk=study.pk).annotate(
            item_count=Count("items", distinct=True), reviewer_count=Count("enrolments", distinct=True)
        )
        assert rows_read([str(studies.query)])[Item._meta.db_table] >= 1500
        with CaptureQueriesContext(connection) as queries:
            study.items.count()
        assert rows_read([queries.captured_queries[0]["sql"]])[Item._meta.db_table] >= 1500

    def test_a_late_items_page_needs_no_offset_or_count(self, client, sizes):
        study, researcher = sizes["large"]
        client.force_login(researcher)
        # Queue order: priority first (one item in a hundred has 5), then age.
        in_order = list(
            Item.objects.filter(study=study).order_by("-priority", "id").values_list("external_id", flat=True)
        )
        last = Item.objects.filter(study=study).order_by("priority", "-id").values_list("priority", "id")[50]

        statements = visit(client, f"/studies/{study.slug}/items/?show=all&after={last[0]}.{last[1]}", {})
        page = client.get(f"/studies/{study.slug}/items/?show=all&after={last[0]}.{last[1]}").content.decode()

        assert re.findall(r"<code>(p-\d+)</code>", page) == in_order[-50:]
        assert 'rel="next"' not in page and 'rel="prev"' in page and "1500 items" in page
        item_queries = [s for s in statements if f'FROM "{Item._meta.db_table}"' in s]
        assert item_queries and not any("OFFSET" in s or "COUNT(" in s.upper() for s in item_queries)
        # Positive control: a numbered page of the same items would have needed both.
        with CaptureQueriesContext(connection) as numbered:
            list(Paginator(Item.objects.filter(study=study).order_by("id"), 50).page(30).object_list)
        assert any("OFFSET" in q["sql"] for q in numbered.captured_queries)
        assert any("COUNT(" in q["sql"].upper() for q in numbered.captured_queries)

    def test_pages_walk_forward_and_back_through_every_item_once(self, client, sizes):
        study, researcher = sizes["large"]  # 150 gold items: three pages
        client.force_login(researcher)
        url = f"/studies/{study.slug}/items/?show=gold"
        seen, pages_html = [], []
        while url:
            html = client.get(url).content.decode()
            pages_html.append(html)
            seen += re.findall(r"<code>(p-\d+)</code>", html)
            following = re.search(r'href="(\?show=gold&amp;after=[-0-9.]+)" rel="next"', html)
            url = f"/studies/{study.slug}/items/{following.group(1).replace('&amp;', '&')}" if following else None
        expected = Item.objects.filter(study=study, gold_label__isnull=False).order_by("-priority", "id")
        assert len(pages_html) == 3 and seen == list(expected.values_list("external_id", flat=True))
        # "Previous" from the last page gives the page before it.
        previous = re.search(r'href="(\?show=gold&amp;before=[-0-9.]+)" rel="prev"', pages_html[-1]).group(1)
        back = client.get(f"/studies/{study.slug}/items/{previous.replace('&amp;', '&')}").content.decode()
        assert re.findall(r"<code>(p-\d+)</code>", back) == re.findall(r"<code>(p-\d+)</code>", pages_html[-2])

    def test_the_ingest_jobs_poll_computes_only_the_jobs(self, client, sizes):
        study, researcher = sizes["large"]
        client.force_login(researcher)
        jobs_table = IngestJob._meta.db_table

        poll = visit(client, f"/studies/{study.slug}/?part=jobs", HX)
        html = client.get(f"/studies/{study.slug}/?part=jobs", **HX).content.decode()
        page = visit(client, f"/studies/{study.slug}/", {})

        assert html.lstrip().startswith('<div id="jobs"') and "batch-2.jsonl" in html and "Metrics" not in html
        # The session, the user, the study, the jobs: nothing of what the rest of the page shows.
        assert len(poll) <= 4 and any(jobs_table in s for s in poll)
        assert not any("metricrun" in s or "tally" in s or "enrolment" in s for s in poll)
        # Positive control: the page itself reads the tallies and the enrolments, and the metrics
        # panel it loads from its own URL reads the metric runs.
        panel = visit(client, f"/studies/{study.slug}/metrics/", HX)
        assert any("tally" in s for s in page) and any("enrolment" in s for s in page)
        assert any("metricrun" in s for s in panel) and not any("metricrun" in s for s in page)
