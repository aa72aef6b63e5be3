"""The ingest API: bearer-token authenticated, JSON in, JSON out, never a 500 for bad input.

POST /api/studies/<slug>/items            JSON or JSONL body, written synchronously
POST /api/studies/<slug>/uploads          a large file, ingested by a Celery worker
GET  /api/studies/<slug>/uploads/<id>     that job's progress and result

Bodies may be chunked (Transfer-Encoding: chunked, under gunicorn) and gzip-compressed
(Content-Encoding: gzip); every limit is counted while reading, and gzip is decompressed
as a stream under a ratio cap.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from reviewapp.studies.models import AuditEvent, IngestToken, Study, hash_token

from .files import ZIP_MAGIC, CappedGzip, DecompressedTooLarge, new_upload_path
from .models import IngestJob
from .parsing import ALL_FORMATS, BodyError, parse_document, parse_jsonl
from .services import ConcurrentIngestError, decision_check_for, ingest_job_create, items_ingest

JSON_TYPES = ("application/json",)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines")
READ_CHUNK = 1024 * 1024
MAX_FILENAME = IngestJob._meta.get_field("filename").max_length


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": self.message, **self.extra}, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="reviewapp ingest"'
        return response


def _authenticate(request: HttpRequest, slug: str) -> tuple[Study, IngestToken]:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "Missing bearer token: send 'Authorization: Bearer <study ingest token>'.")
    token = IngestToken.objects.select_related("study").filter(token_hash=hash_token(secret.strip())).first()
    if token is None or not token.is_active:
        raise ApiError(401, "Invalid or revoked ingest token.")
    # A token is scoped to one study; it says nothing about whether other slugs exist.
    if token.study.slug != slug:
        raise ApiError(403, "This token is not valid for this study.")
    if token.study.is_closed:
        raise ApiError(409, f"Study '{slug}' is closed; it accepts no new items.")
    IngestToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.study, token


ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
# The items endpoint takes the records in the request; a zip cannot be parsed there.
EVAL_BODY_REFUSAL = (
    "This body is a zip archive (an Inspect AI .eval log?), which this endpoint cannot read: it takes "
    "JSON or JSON Lines. Send the .eval file as it is to POST /api/studies/{slug}/uploads with "
    "Content-Type: application/zip, upload it on the study page (Upload a file), or run "
    "`python manage.py ingest --study {slug} FILE.eval`; or convert it with `inspect log convert --to json`."
)


def _body_kind(request: HttpRequest) -> str:
    content_type = request.content_type or ""
    if content_type in JSON_TYPES:
        return "json"
    if content_type in JSONL_TYPES:
        return "jsonl"
    raise ApiError(
        415,
        f"Unsupported Content-Type {content_type or '(none)'!r}: send application/json for a JSON document "
        "or application/x-ndjson for JSON Lines.",
    )


def _format_hint(request: HttpRequest) -> str | None:
    hint = request.GET.get("format") or None
    if hint is not None and hint not in ALL_FORMATS:
        raise ApiError(400, f"Unknown format {hint!r}; expected one of {', '.join(ALL_FORMATS)}.")
    return hint


def _skip_invalid(request: HttpRequest) -> bool:
    return request.GET.get("skip_invalid", "").lower() in ("1", "true", "yes")


def _check_declared_length(request: HttpRequest, limit: int) -> None:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "Malformed Content-Length header.") from None
    if declared > limit:
        raise ApiError(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return (
        f"Body larger than the {limit:,}-byte limit. Split it, or send the file to "
        "/api/studies/<slug>/uploads to ingest it in the background."
    )


def _body_stream(request: HttpRequest):
    """Where the body's bytes come from, chunked bodies included.

    Django reads CONTENT_LENGTH bytes, and a chunked body has no Content-Length: it would
    read as empty. gunicorn decodes the chunks and ends its ``wsgi.input`` at the last one,
    and says so with ``wsgi.input_terminated``; a server that does not cannot be read
    safely (a read could wait for more forever), so the client is asked for a length.
    """
    if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return request
    if not request.META.get("wsgi.input_terminated"):
        raise ApiError(411, "This server cannot read a chunked body: send it with a Content-Length.")
    return request.META["wsgi.input"]


def _gzipped(request: HttpRequest) -> bool:
    """True for Content-Encoding: gzip; 415 for any other encoding."""
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return False
    if encoding in ("gzip", "x-gzip"):
        return True
    raise ApiError(415, f"Unsupported Content-Encoding {encoding!r}: send the body as it is, or gzip it.")


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """Read at most ``limit`` bytes, counted while reading (chunked bodies too); 413 past it.

    A gzip body is decompressed as a stream under the same limit and the ratio cap.
    """
    gzipped = _gzipped(request)
    _check_declared_length(request, limit)
    stream = _body_stream(request)
    chunks, size = [], 0
    while chunk := stream.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, _too_large(limit))
        chunks.append(chunk)
    if not size:
        raise ApiError(400, "Empty body: send one or more records.")
    body = b"".join(chunks)
    if not gzipped:
        return body
    inflated = CappedGzip(
        io.BytesIO(body),
        compressed_size=size,
        ratio=settings.INGEST_GZIP_MAX_RATIO,
        absolute=limit,
        absolute_setting="INGEST_MAX_BODY_BYTES",
        where="body",
    )
    try:
        return inflated.read()  # bounded: it refuses to produce more than its cap
    except DecompressedTooLarge as exc:
        raise ApiError(413, str(exc)) from None
    except BodyError as exc:
        raise ApiError(400, str(exc)) from None


def api_view(view):
    """Turn ApiError into its JSON response; bearer auth means no CSRF cookie is involved."""

    @csrf_exempt
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ApiError as error:
            return error.response()

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@api_view
@require_POST
def items_create(request: HttpRequest, slug: str) -> JsonResponse:
    study, token = _authenticate(request, slug)
    body = _read_body(request, settings.INGEST_MAX_BODY_BYTES)
    if body.startswith(ZIP_MAGIC):
        raise ApiError(415, EVAL_BODY_REFUSAL.format(slug=slug))
    kind = _body_kind(request)
    hint = _format_hint(request)
    check = decision_check_for(study)
    per_record = settings.INGEST_MAX_RECORD_BYTES
    if kind == "json":
        results = parse_document(body, format_hint=hint, decision_check=check, max_record_bytes=per_record)
    else:
        results = parse_jsonl(body.splitlines(), format_hint=hint, decision_check=check, max_record_bytes=per_record)
    try:
        outcome = items_ingest(study=study, results=results, skip_invalid=_skip_invalid(request))
    except BodyError as exc:
        raise ApiError(400, str(exc)) from None
    except ConcurrentIngestError as exc:
        raise ApiError(409, str(exc)) from None
    if outcome.rejected:
        only_conflicts = all(e.field == "external_id" and "already exists" in e.reason for e in outcome.errors)
        return JsonResponse(outcome.as_dict(), status=409 if only_conflicts else 400)
    if outcome.seen == 0:
        raise ApiError(400, "The body holds no records.")
    AuditEvent.objects.create(
        study=study,
        action="ingest.api",
        detail={"token": token.display_prefix, "created": outcome.created, "errors": outcome.error_count},
    )
    return JsonResponse(outcome.as_dict(), status=201 if outcome.created else 200)


@api_view
@require_POST
def uploads_create(request: HttpRequest, slug: str) -> JsonResponse:
    study, token = _authenticate(request, slug)
    # An Inspect .eval log is a zip: stored as it came, read by the worker sample by sample.
    kind = "eval" if request.content_type in ZIP_TYPES else _body_kind(request)
    hint = _format_hint(request)
    filename = _upload_filename(request)
    limit = settings.INGEST_MAX_UPLOAD_BYTES
    _check_declared_length(request, limit)
    stream = _body_stream(request)
    # A gzip body is stored as it came and decompressed by the worker, as a stream under
    # the ratio and size caps (files.py).
    gzipped = _gzipped(request)
    if kind == "eval" and gzipped:
        raise ApiError(415, "An .eval log is a zip already: send it without Content-Encoding: gzip.")
    stored = new_upload_path(f"upload.{kind}.gz" if gzipped else f"upload.{kind}")
    size = 0
    try:
        with open(stored, "wb") as out:
            while chunk := stream.read(READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"Upload larger than the {limit:,}-byte limit.")
                out.write(chunk)
        if not size:
            raise ApiError(400, "Empty body: send the file's bytes.")
    except ApiError:
        stored.unlink(missing_ok=True)
        raise
    job = ingest_job_create(
        study=study,
        stored_path=stored,
        filename=filename or stored.name,
        format_hint=hint or "",
        skip_invalid=_skip_invalid(request),
        token=token,
    )
    return JsonResponse(_job_json(job, slug), status=202)


def _upload_filename(request: HttpRequest) -> str:
    """The ?filename= label: free text, but stored as text (no NUL) of at most 255 characters."""
    filename = request.GET.get("filename", "")
    if "\x00" in filename:
        raise ApiError(400, "filename: contains a NUL character (\\u0000), which cannot be stored.")
    if len(filename) > MAX_FILENAME:
        raise ApiError(400, f"filename: is {len(filename):,} characters; the limit is {MAX_FILENAME}.")
    return filename


@api_view
@require_GET
def upload_detail(request: HttpRequest, slug: str, job_id: int) -> JsonResponse:
    study, _token = _authenticate(request, slug)
    job = IngestJob.objects.filter(study=study, pk=job_id).first()
    if job is None:
        raise ApiError(404, f"No upload {job_id} in study '{slug}'.")
    return JsonResponse(_job_json(job, slug))


def _job_json(job: IngestJob, slug: str) -> dict:
    return {
        "job": job.pk,
        "status": job.status,
        "status_url": f"/api/studies/{slug}/uploads/{job.pk}",
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "progress_percent": job.progress_percent,
        "records": job.records_seen,
        "created": job.created_count,
        "duplicates": job.duplicate_count,
        "error_count": job.error_count,
        "errors": job.errors,
        "message": job.message,
        "note": job.note,
        "error": job.error,
    }
