"""The ingest API: bearer-token authenticated, JSON in, JSON out, never a 500 for bad input.

POST /api/studies/<slug>/items            JSON or JSONL body, written synchronously
POST /api/studies/<slug>/uploads          a large file, ingested by a Celery worker
GET  /api/studies/<slug>/uploads/<id>     that job's progress and result
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from reviewapp.studies.models import AuditEvent, IngestToken, Study, hash_token

from .files import new_upload_path
from .models import IngestJob
from .parsing import ALL_FORMATS, BodyError, parse_document, parse_jsonl
from .services import ConcurrentIngestError, decision_check_for, ingest_job_create, items_ingest

JSON_TYPES = ("application/json",)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines")
READ_CHUNK = 1024 * 1024


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
    if token.study.status == Study.Status.CLOSED:
        raise ApiError(409, f"Study '{slug}' is closed; it accepts no new items.")
    IngestToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.study, token


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


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """Read at most ``limit`` bytes; 413 if there is more (chunked bodies included)."""
    _check_declared_length(request, limit)
    chunks, size = [], 0
    while chunk := request.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, _too_large(limit))
        chunks.append(chunk)
    if not size:
        raise ApiError(400, "Empty body: send one or more records.")
    return b"".join(chunks)


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
    kind = _body_kind(request)
    hint = _format_hint(request)
    check = decision_check_for(study)
    if kind == "json":
        results = parse_document(body, format_hint=hint, decision_check=check)
    else:
        results = parse_jsonl(
            body.splitlines(), format_hint=hint, decision_check=check, max_record_bytes=settings.INGEST_MAX_RECORD_BYTES
        )
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
    kind = _body_kind(request)
    hint = _format_hint(request)
    limit = settings.INGEST_MAX_UPLOAD_BYTES
    _check_declared_length(request, limit)
    stored = new_upload_path(f"upload.{kind}")
    size = 0
    try:
        with open(stored, "wb") as out:
            while chunk := request.read(READ_CHUNK):
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
        filename=request.GET.get("filename") or stored.name,
        format_hint=hint or "",
        skip_invalid=_skip_invalid(request),
        token=token,
    )
    return JsonResponse(_job_json(job, slug), status=202)


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
    }
