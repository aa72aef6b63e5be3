"""The tallies researcher pages read: kept by triggers through every path that writes, exact
against counting the tables, folded without losing a count."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from reviewapp.ingest import tallies as item_tallies
from reviewapp.ingest.models import Item, ItemTally
from reviewapp.ingest.services import item_set_gold, probes_generate
from reviewapp.queue import tallies
from reviewapp.queue.models import ItemQuota, Label, LabelTally, QuotaTally
from reviewapp.queue.services import assignment_skip, claim_next, label_submit, leases_expire
from reviewapp.queue.tasks import refresh_progress
from reviewapp.studies.models import Study
from tests.builders import APPROVE, enrol_allocated, ingest
from tests.conftest import database_url_for_subprocess

# Five items inserted by another session (a pipeline's bulk insert).
LATE_ITEMS = (
    f"INSERT INTO {Item._meta.db_table} (study_id, external_id, source_format, payload, source_metadata, "  # noqa: S608
    "content_hash, word_count, ai_rationale, is_probe, priority) "
    "SELECT %s, 'late-' || n, 'native', '{}', '{}', '', 0, '', false, 0 FROM generate_series(1, 5) n"
)


def counted_items(study: Study) -> tuple[int, int, int]:
    items = Item.objects.filter(study=study)
    return items.count(), items.filter(gold_label__isnull=False).count(), items.filter(is_probe=True).count()


def tallied_items(study: Study) -> tuple[int, int, int]:
    counts = item_tallies.item_counts([study.pk])[study.pk]
    return counts.items, counts.gold, counts.probes


def counted_shape(study: Study) -> dict[int, dict[int, int]]:
    shape: dict[int, dict[int, int]] = {}
    for quota in ItemQuota.objects.filter(study=study):
        shape.setdefault(quota.arm_key, {}).setdefault(quota.submitted, 0)
        shape[quota.arm_key][quota.submitted] += 1
    return shape


class TestTallies:
    def test_item_tallies_follow_ingest_gold_probes_and_deletes(self, study):
        Study.objects.filter(pk=study.pk).update(probe_rate=0.25)
        study.refresh_from_db()
        items = ingest(study, *(f"i{n}" for n in range(8)))
        assert tallied_items(study) == counted_items(study) == (8, 0, 0)

        for item in items[:4]:
            item_set_gold(item=item, gold="approve", actor=None)
        assert tallied_items(study) == counted_items(study) == (8, 4, 0)

        assert probes_generate(study=study, actor=None) == 2
        assert tallied_items(study) == counted_items(study) == (8, 4, 2)

        Item.objects.filter(pk=items[-1].pk).delete()
        assert tallied_items(study) == counted_items(study) == (7, 4, 2)
        assert item_tallies.item_counts([study.pk])[study.pk].formats == {"native": 7}

    def test_quota_tallies_follow_claims_submits_skips_and_expiry(self, study):
        ingest(study, "a", "b", "c")
        people = [enrol_allocated(study) for _ in range(3)]
        first = claim_next(study=study, reviewer=people[0])
        label_submit(study=study, reviewer=people[0], assignment_id=first.pk, values=APPROVE)
        skipped = claim_next(study=study, reviewer=people[1])
        assignment_skip(study=study, reviewer=people[1], assignment_id=skipped.pk, reason="unclear")
        late = claim_next(study=study, reviewer=people[2])
        type(late).objects.filter(pk=late.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert leases_expire(study=study) == 1

        assert tallies.quota_shape(study.pk) == counted_shape(study)
        assert sum(n for shape in counted_shape(study).values() for done, n in shape.items() if done) == 1

    def test_label_tallies_count_answers_per_reviewer_and_day_not_corrections(self, study):
        ingest(study, "a", "b")
        person = enrol_allocated(study)
        for _ in range(2):
            assignment = claim_next(study=study, reviewer=person)
            label, _ = label_submit(study=study, reviewer=person, assignment_id=assignment.pk, values=APPROVE)
        correction = Label.objects.get(pk=label.pk)
        correction.pk, correction.supersedes_id = None, label.pk
        correction.save()

        (day,) = tallies.label_days(study.pk)
        assert (day.reviewer_id, day.n, day.day) == (person.pk, 2, timezone.now().date())
        assert tallies.reviewer_label_count(study.pk, person.pk) == tallies.label_count(study.pk) == 2
        assert Label.objects.filter(study=study).count() == 3  # the positive control: three rows

    def test_folding_keeps_every_total_and_leaves_one_row_per_key(self, study):
        for n in range(4):
            ingest(study, f"batch{n}-a", f"batch{n}-b")
        person = enrol_allocated(study)
        for _ in range(3):
            assignment = claim_next(study=study, reviewer=person)
            label_submit(study=study, reviewer=person, assignment_id=assignment.pk, values=APPROVE)
        before = (tallied_items(study), tallies.quota_shape(study.pk), tallies.label_days(study.pk))
        assert ItemTally.objects.filter(study=study).count() == 4

        assert refresh_progress() == 1  # the beat task folds every running study

        assert (tallied_items(study), tallies.quota_shape(study.pk), tallies.label_days(study.pk)) == before
        assert ItemTally.objects.filter(study=study).count() == 1
        assert QuotaTally.objects.filter(study=study).count() == len(
            [done for shape in counted_shape(study).values() for done in shape]
        )
        assert LabelTally.objects.filter(study=study).count() == 1

    def test_a_read_that_finds_many_delta_rows_folds_them(self, study):
        ingest(study, "a")
        ItemTally.objects.bulk_create(
            ItemTally(study=study, source_format="native", items=1, gold=0, probes=0)
            for _ in range(item_tallies.COMPACT_AFTER_ROWS)
        )
        assert tallied_items(study)[0] == 1 + item_tallies.COMPACT_AFTER_ROWS
        assert ItemTally.objects.filter(study=study).count() == 1
        assert tallied_items(study)[0] == 1 + item_tallies.COMPACT_AFTER_ROWS

    def test_deleted_studies_leave_no_tally_rows(self, study, other_study):
        ingest(study, "a")
        study_id = study.pk
        study.delete()
        assert ItemTally.objects.filter(study_id=study_id).exists()  # the triggers have no foreign key
        refresh_progress()
        assert not ItemTally.objects.filter(study_id=study_id).exists()


@pytest.mark.django_db(transaction=True)
class TestTalliesUnderConcurrentWrites:
    def test_a_fold_during_an_open_ingest_loses_nothing_and_waits_for_nobody(self, study):
        ingest(study, "a", "b")
        # A second session inserts items and keeps its transaction open, as a long ingest does.
        writer = psycopg.connect(database_url_for_subprocess())
        opened, finish = threading.Event(), threading.Event()

        def long_ingest() -> None:
            with writer.transaction():
                writer.execute(LATE_ITEMS, [study.pk])
                opened.set()
                finish.wait(10)

        thread = threading.Thread(target=long_ingest)
        thread.start()
        assert opened.wait(10)
        # The fold neither waits for the open transaction nor takes its rows.
        assert tallies.tallies_compact(study_id=study.pk) is True
        assert tallied_items(study)[0] == 2
        finish.set()
        thread.join(10)
        writer.close()

        assert tallied_items(study) == counted_items(study) == (7, 0, 0)
        assert tallies.tallies_compact(study_id=study.pk) and tallied_items(study)[0] == 7
        assert ItemTally.objects.filter(study=study).count() == 1
