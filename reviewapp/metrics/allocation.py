"""A study's allocation record for randomization inference (stats/randomization_inference.py):
everything the app used to allocate its reviewers, read from the Enrolment rows."""

from __future__ import annotations

import numpy as np

from reviewapp.studies.models import Study

from .stats.randomization_inference import AllocationRecord


def allocation_record(study: Study) -> AllocationRecord:
    """The design, seed, arms with their weights (in the order ``allocate_reviewer`` indexes
    them), and each allocated reviewer's recorded arm (-1 when none), stratum and sequence."""
    arms, weights = study.arm_weights()
    rows = list(
        study.enrolments.filter(allocated_at__isnull=False, sequence__isnull=False)
        .order_by("stratum", "sequence")
        .values_list("reviewer_id", "arm_id", "stratum", "sequence")
    )
    return AllocationRecord(
        design=study.design,
        seed=int(study.seed),
        arm_ids=tuple(arm.pk for arm in arms),
        weights=tuple(weights),
        reviewer=np.array([r[0] for r in rows], dtype=np.int64),
        arm=np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64),
        stratum=tuple(r[2] for r in rows),
        sequence=np.array([r[3] for r in rows], dtype=np.int64),
    )
