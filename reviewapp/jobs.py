"""Background jobs, one kernel for every kind: ingest (IngestJob), metrics (MetricRun), export
(ExportJob). A kind is a model that subclasses ``Job`` and declares three things: its name
(``KIND``), its advisory-lock namespace (``LOCK``) and the dotted path of its work function
(``WORK``). Everything else is here, once: the fields every job has, publishing its message,
the one Celery task that runs any job, the one retry rule, the one claim rule, the one
progress writer, and the one recovery sweep.

A job is a row first and a broker message second. The row is the truth; the message only
says "run job N of kind K". So the message may be lost without losing the job:

- the broker cannot take the message when the request commits (unreachable, or the
  filesystem broker's folder missing or read-only): ``enqueue`` logs it, notes on the row
  that it is queued until the broker is back, and returns False instead of turning the
  user's request into a 500; the row stays queued;
- the worker running it is killed (SIGKILL, OOM, a machine gone): with Redis the message
  comes back only after the visibility timeout, an hour or so later.

The recovery sweep (beat, every JOBS_RECOVER_SECONDS) publishes the message again for a row
that is still queued JOBS_REQUEUE_AFTER_SECONDS after it was created, or that says running
while nobody holds its lock (the worker that held it is gone: PostgreSQL releases a dead
session's locks). A message published twice is harmless: the claim takes the job's advisory
lock and checks the row's state before any work, and every kind stores its result in the
same UPDATE that finishes the job.

The claim is a session-level advisory lock, never a lock on the job's row: the row must stay
writable so the job's progress, written on a connection of its own while the work's
transaction is open, reaches the page that polls it.

The retry rule: what is transient (the database or the broker went away, or the work raised
``TransientJobError``, e.g. an ingest racing another on the same ids) is retried with
backoff, RETRY_BACKOFF_SECONDS doubling, up to MAX_RETRIES times; anything else is a bug or
bad input and fails the job at once, its message on the row for the page to show.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import ClassVar

from celery import shared_task
from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections, models, transaction
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.module_loading import import_string
from kombu import exceptions as kombu_errors
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

MAX_RETRIES = 4
RETRY_BACKOFF_SECONDS = 5  # 5, 10, 20, 40 s: a database restart or a broker failover has time to pass


class Job(models.Model):
    """What every background job has; a kind adds its own inputs and results.

    Subclasses declare:
    - ``KIND``: the kind's name ("ingest"), which the task message carries;
    - ``LOCK``: the namespace of the advisory lock its worker holds (unique per kind);
    - ``WORK``: the dotted path of ``work(job, progress)``, which does the job and finishes it
      with ``job_finish`` (succeeded, or failed for a reason of the input's own).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE: ClassVar[tuple[str, ...]] = ("queued", "running")
    FINISHED: ClassVar[tuple[str, ...]] = ("succeeded", "failed")
    KIND: ClassVar[str]
    LOCK: ClassVar[int]
    WORK: ClassVar[str]

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # What it is doing now, for the page ("Loading labels"; BROKER_DOWN_NOTE while unpublished).
    note = models.CharField(max_length=200, blank=True, default="", db_default="")
    # Why it failed, or why the last attempt failed while it is retried.
    error = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


def job_kinds() -> dict[str, type[Job]]:
    """Every kind of job, by name: the installed models that subclass Job."""
    return {model.KIND: model for model in apps.get_models() if issubclass(model, Job)}


class TransientJobError(Exception):
    """Raised by a job's work when trying again later can succeed (not a bug, not bad input)."""


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

# What the user is told of a job whose message could not be published; kept in the job's
# ``note`` until a publish succeeds (the recovery sweep's, once the broker is back).
BROKER_DOWN_NOTE = "Queued; will run when the broker is back."


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
    if task_name != run_job.name or len(args) != 2 or args[0] not in job_kinds():
        return
    rows = job_kinds()[args[0]].objects.filter(pk=args[1])
    if waiting:
        rows.filter(status=Job.Status.QUEUED).update(note=BROKER_DOWN_NOTE)
    else:
        # Only our own note: a worker that already started has written its own there.
        rows.filter(note=BROKER_DOWN_NOTE).update(note="")


def waiting_for_broker(job: Job) -> bool:
    """Whether ``job`` is queued because its message could not be published; reads the note
    afresh into ``job``, for the page that shows it."""
    job.refresh_from_db(fields=["note"])
    return job.note == BROKER_DOWN_NOTE


def enqueue_on_commit(task, *args) -> None:
    """Publish once the current transaction commits (never, if it rolls back): the worker
    must find the row. A broker that cannot take the message then leaves the row queued
    (and noted, see ``waiting_for_broker``), not the request failed."""
    transaction.on_commit(partial(enqueue, task, *args))


def job_enqueue_on_commit(job: Job) -> None:
    """Run ``job`` on a worker once the transaction that created it commits."""
    enqueue_on_commit(run_job, job.KIND, job.pk)


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


# --- running a job -------------------------------------------------------------------


@shared_task(bind=True, max_retries=MAX_RETRIES)
def run_job(self, kind: str, job_id: int) -> None:
    """Run one job of any kind: claim it, do its work, retry what is transient, fail the rest."""
    model = job_kinds()[kind]
    try:
        job_run(model, job_id)
    except (OperationalError, InterfaceError, TransientJobError, *BROKER_ERRORS) as exc:
        message = f"{type(exc).__name__}: {exc}"
        if self.request.retries >= self.max_retries:
            job_fail(model, job_id, f"Gave up after {self.max_retries + 1} attempts: {message}")
            return
        logger.warning("%s job %s: transient failure, retrying: %s", kind, job_id, message)
        _job_retrying(model, job_id, message)
        raise self.retry(exc=exc, countdown=RETRY_BACKOFF_SECONDS * 2**self.request.retries) from exc
    except Exception as exc:
        # A bug or bad input: trying again would fail the same way. The page shows why, and
        # the task fails too, so the worker's log and any task monitor see it.
        logger.exception("%s job %s failed", kind, job_id)
        job_fail(model, job_id, f"{kind.capitalize()} failed: {type(exc).__name__}: {exc}")
        raise


def job_run(model: type[Job], job_id: int) -> Job | None:
    """Run the job now, in this process (the task does this). Safe to call twice: a finished
    job is left alone, and a job another worker holds is left to it."""
    if not advisory_lock_take(model.LOCK, job_id):
        logger.info("%s job %s is being run by another worker", model.KIND, job_id)
        return model.objects.filter(pk=job_id).first()
    try:
        job = _job_claim(model, job_id)
        if job is None:
            return model.objects.filter(pk=job_id).first()
        progress = JobProgress(job)
        try:
            import_string(model.WORK)(job, progress)
        finally:
            progress.close()
    finally:
        advisory_lock_release(model.LOCK, job_id)
    return model.objects.filter(pk=job_id).first()


def _job_claim(model: type[Job], job_id: int) -> Job | None:
    """Mark the job running (one more attempt), committed at once so the page shows it; None
    when there is nothing to run (finished, or deleted)."""
    claimed = model.objects.filter(pk=job_id, status__in=Job.ACTIVE).update(
        status=Job.Status.RUNNING, attempts=models.F("attempts") + 1, started_at=timezone.now(), note=""
    )
    return model.objects.filter(pk=job_id).first() if claimed else None


def job_finish(job: Job, *, failed: bool = False, **results) -> bool:
    """Finish a running job with its results in one UPDATE: succeeded, or failed for a reason
    of its input's own (a rejected file). False when it was not ours to finish any more (a
    duplicate delivery got there first): the results are dropped."""
    status = Job.Status.FAILED if failed else Job.Status.SUCCEEDED
    results.setdefault("error", "")  # an earlier attempt's error no longer applies
    finished = (
        type(job)
        .objects.filter(pk=job.pk, status=Job.Status.RUNNING)
        .update(status=status, finished_at=timezone.now(), note="", **results)
    )
    if finished != 1:
        logger.info("%s job %s was finished elsewhere; its results are dropped", job.KIND, job.pk)
    return finished == 1


def job_fail(model: type[Job], job_id: int, message: str) -> None:
    """Fail an unfinished job for good, with the reason for the page."""
    model.objects.filter(pk=job_id, status__in=Job.ACTIVE).update(
        status=Job.Status.FAILED, error=message[:5000], note="", finished_at=timezone.now()
    )


def _job_retrying(model: type[Job], job_id: int, message: str) -> None:
    """A failed attempt that will be retried: queued again, the error shown meanwhile."""
    model.objects.filter(pk=job_id, status__in=Job.ACTIVE).update(
        status=Job.Status.QUEUED, error=message[:5000], note="Retrying after an error"
    )


class JobProgress:
    """A running job's progress, written on a database connection of its own: the job's work
    may hold a transaction open (an ingest's items), and writes made inside it would not be
    seen by the page polling the job. At most one write every MIN_INTERVAL seconds unless
    forced. Raw SQL, because the ORM only speaks through registered aliases; the table and
    column names are our own models', never input."""

    MIN_INTERVAL = 0.5

    def __init__(self, job: Job) -> None:
        self.job = job
        self._connection = None
        self._last = 0.0

    def update(self, *, force: bool = False, **fields) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.MIN_INTERVAL:
            return
        self._last = now
        if self._connection is None:
            self._connection = connections.create_connection(DEFAULT_DB_ALIAS)
        meta = type(self.job)._meta
        columns = ", ".join(f"{meta.get_field(name).column} = %s" for name in fields)
        with self._connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {meta.db_table} SET {columns} WHERE id = %s AND status = 'running'",  # noqa: S608
                [*fields.values(), self.job.pk],
            )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


# --- finding lost jobs ---------------------------------------------------------------


def jobs_recover(*, now: datetime | None = None) -> list[tuple[str, int]]:
    """Publish again the unfinished jobs whose message was lost; returns (kind, id) of each.

    Queued since before JOBS_REQUEUE_AFTER_SECONDS: requested while the broker could not take
    the message. Running with its advisory lock free: the worker that held it is gone (and
    PostgreSQL rolled back what it had not committed).
    """
    cutoff = requeue_cutoff(now)
    lost = []
    for kind, model in job_kinds().items():
        for job in model.objects.filter(status__in=Job.ACTIVE).only("pk", "status", "created_at"):
            if job.status == Job.Status.QUEUED:
                if job.created_at < cutoff:
                    lost.append((kind, job.pk))
            elif advisory_lock_free(model.LOCK, job.pk):
                lost.append((kind, job.pk))
    for kind, job_id in lost:
        logger.warning("%s job %s lost its message; enqueueing it again", kind, job_id)
        enqueue(run_job, kind, job_id)
    return lost


@shared_task
def recover_jobs() -> int:
    """Beat: publish again the jobs whose message was lost (see ``jobs_recover``)."""
    return len(jobs_recover())
