"""Background jobs (MetricRun, IngestJob, ExportJob): enqueue them safely, and find lost ones.

A job is a row first and a broker message second. The row is the truth; the message only
says "work on row N". So the message may be lost without losing the job:

- the broker cannot take the message when the request commits (unreachable, or the
  filesystem broker's folder missing or read-only): ``enqueue`` logs it, notes on the row
  that it is queued until the broker is back, and returns False instead of turning the
  user's request into a 500; the row stays queued;
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

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from kombu import exceptions as kombu_errors
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# How long a job waits for its lock before leaving the job to whoever holds it.
LOCK_WAIT_SECONDS = 5.0

# What publishing can raise when the broker cannot take a message (kombu 5.7, redis-py):
# - kombu's OperationalError (a KombuError): once its publish retries are used up, kombu wraps
#   every error the transport declares as a connection or channel error in it. Redis declares
#   OSError and socket errors and redis-py's connection, timeout, authentication and loading
#   errors, and ResponseError (a read-only replica, maxmemory reached); the filesystem
#   transport raises amqp's ChannelError when it cannot write a message file (read-only
#   folder, full disk).
# - OSError, unwrapped: the filesystem transport lists its folder when it declares the queue,
#   outside its declared errors, so a missing or unreadable folder is FileNotFoundError or
#   PermissionError.
# - amqp's channel and connection errors and redis-py's errors, should a path skip kombu's wrapper.
# - anything else raised inside those libraries (see ``broker_failure``).
BROKER_ERRORS = (kombu_errors.KombuError, kombu_errors.ChannelError, kombu_errors.ConnectionError, OSError, RedisError)
BROKER_LIBRARIES = ("kombu", "amqp", "redis")

# What the user is told of a job whose message could not be published.
BROKER_DOWN_NOTE = "Queued; will run when the broker is back."
# Where each job's page shows its state (task name -> model, field): a job whose message
# could not be published carries BROKER_DOWN_NOTE there until a publish succeeds (the
# recovery sweep's, once the broker is back). The worker overwrites the field when it starts.
NOTE_FIELDS = {
    "reviewapp.metrics.tasks.compute_metrics": ("metrics.MetricRun", "progress_message"),
    "reviewapp.ingest.tasks.run_ingest_job": ("ingest.IngestJob", "message"),
    "reviewapp.reports.tasks.run_export_job": ("reports.ExportJob", "error"),
}


def enqueue(task, *args) -> bool:
    """Publish ``task(*args)``; False when the broker cannot take it: logged, and the job's
    row (if ``task`` runs one) noted as waiting for the broker."""
    try:
        task.delay(*args)
    except Exception as exc:
        if not broker_failure(exc):
            raise
        logger.warning(
            "broker cannot take messages, %s%r left for the recovery sweep: %s: %s",
            task.name,
            args,
            type(exc).__name__,
            exc,
        )
        _note(task.name, args, waiting=True)
        return False
    _note(task.name, args, waiting=False)
    return True


def broker_failure(exc: Exception) -> bool:
    """Whether an error from publishing means the broker could not take the message."""
    if isinstance(exc, BROKER_ERRORS):
        return True
    # Raised inside the broker libraries themselves: kombu 5.7's filesystem transport, when a
    # write to a read-only folder fails, retries the publish on the channel it has just closed
    # and fails with AttributeError ('NoneType' object has no attribute 'client'). Our own
    # mistakes (raised in our code or Celery's) still propagate.
    innermost = exc.__traceback__
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    module = innermost.tb_frame.f_globals.get("__name__", "") if innermost is not None else ""
    return module.partition(".")[0] in BROKER_LIBRARIES


def _note(task_name: str, args: tuple, *, waiting: bool) -> None:
    if task_name not in NOTE_FIELDS or len(args) != 1:
        return
    model_label, field = NOTE_FIELDS[task_name]
    rows = apps.get_model(model_label).objects.filter(pk=args[0])
    if waiting:
        rows.filter(status="queued").update(**{field: BROKER_DOWN_NOTE})
    else:
        # Only our own note: a worker that already started has written its own state there.
        rows.filter(**{field: BROKER_DOWN_NOTE}).update(**{field: ""})


def waiting_for_broker(job: models.Model) -> bool:
    """Whether ``job`` (a MetricRun, IngestJob or ExportJob) is queued because its message
    could not be published; reads the note afresh into ``job``, for the page that shows it."""
    fields = [field for label, field in NOTE_FIELDS.values() if label == job._meta.label]
    if not fields:
        return False
    job.refresh_from_db(fields=fields)
    return getattr(job, fields[0]) == BROKER_DOWN_NOTE


def enqueue_on_commit(task, *args) -> None:
    """Publish once the current transaction commits (never, if it rolls back): the worker
    must find the row. A broker that cannot take the message then leaves the row queued
    (and noted, see ``waiting_for_broker``), not the request failed."""
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
