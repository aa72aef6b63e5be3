"""Background jobs (MetricRun, IngestJob, ExportJob): enqueue them safely, and find lost ones.

A job is a row first and a broker message second. The row is the truth; the message only
says "work on row N". So the message may be lost without losing the job:

- the broker is unreachable when the request commits: ``enqueue`` logs it and returns
  False instead of turning the user's request into a 500; the row stays queued;
- the worker running it is killed (SIGKILL, OOM, a machine gone): with Redis the message
  comes back only after the visibility timeout, an hour or so later.

Each app's recovery sweep (a beat task, every JOBS_RECOVER_SECONDS) then publishes the
message again for a row that is still queued JOBS_REQUEUE_AFTER_SECONDS after it was
created, or that says running while nobody holds its lock (the worker that held it is
gone: PostgreSQL releases a dead session's locks). A message published twice is harmless:
every job's service takes a lock and checks the row's state before working, and stores
its result in the same UPDATE that finishes it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

# How long a job waits for its lock before leaving the job to whoever holds it.
LOCK_WAIT_SECONDS = 5.0


def enqueue(task, *args) -> bool:
    """Publish ``task(*args)``; False (logged) when the broker cannot be reached."""
    try:
        task.delay(*args)
    except BrokerUnavailable as exc:
        logger.warning("broker unreachable, %s%r left for the recovery sweep: %s", task.name, args, exc)
        return False
    return True


def enqueue_on_commit(task, *args) -> None:
    """Publish once the current transaction commits (never, if it rolls back): the worker
    must find the row. A broker outage then leaves the row queued, not the request failed."""
    transaction.on_commit(partial(enqueue, task, *args))


def requeue_cutoff(now: datetime | None = None) -> datetime:
    """Jobs created before this and still queued have probably lost their message."""
    return (now or timezone.now()) - timedelta(seconds=settings.JOBS_REQUEUE_AFTER_SECONDS)


def advisory_lock_take(namespace: int, key: int, *, wait: float | None = None) -> bool:
    """Take the session-level advisory lock (namespace, key) for a job, waiting up to ``wait``
    seconds (LOCK_WAIT_SECONDS); False if another session still holds it then (a live worker
    is on the job).

    The wait is for a worker killed a moment ago: the broker hands its message out again at
    once (reject on worker lost), and PostgreSQL may not yet have ended the dead session
    that holds the lock.
    """
    deadline = time.monotonic() + (LOCK_WAIT_SECONDS if wait is None else wait)
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def advisory_lock_release(namespace: int, key: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


def advisory_lock_free(namespace: int, key: int) -> bool:
    """True when no session holds the advisory lock (namespace, key): the job's worker is gone.

    Taken and given back at once; a worker asking in that instant waits for it (see
    ``advisory_lock_take``).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])
    return True
