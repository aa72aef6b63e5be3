"""Content shown only in part by design (an image as a placeholder, redacted reasoning) is
said in the ingest report as well as on the item: the API's answer lists each record with
what it holds in part, and the summary counts them. A log without such content reports none
(the positive control that the list is not always filled)."""

from __future__ import annotations

import orjson

from reviewapp.ingest.models import Item
from tests.formats.test_inspect_log import _log, _sample

IMAGE_TURN = [
    {"role": "user", "content": "What is on this receipt?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "A refund for $40."},
            {"type": "image", "image": "data:image/png;base64,AAAA"},
        ],
    },
]
PLAIN_TURN = [{"role": "user", "content": "Refund order A-1?"}, {"role": "assistant", "content": "Yes."}]


def post(client, token: str, doc: dict):
    return client.post(
        "/api/studies/refunds/items",
        data=orjson.dumps(doc),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_api_reports_records_shown_only_in_part(client, study, token):
    response = post(client, token, _log(_sample(IMAGE_TURN, sample_id=1), _sample(PLAIN_TURN, sample_id=2)))

    assert response.status_code == 201, response.content
    report = response.json()
    assert report["created"] == 2 and report["warning_count"] == 1
    (warned,) = report["warnings"]
    assert warned["warnings"] == ["1 image part shown as a placeholder"]
    assert Item.objects.get(external_id=warned["external_id"]).source_metadata["fidelity_warnings"]
    assert "1 with content shown only in part" in report["message"]


def test_a_log_without_such_content_reports_no_warnings(client, study, token):
    report = post(client, token, _log(_sample(PLAIN_TURN, sample_id=3))).json()

    assert (report["warning_count"], report["warnings"]) == (0, [])
    assert "shown only in part" not in report["message"]
