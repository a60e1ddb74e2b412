"""A time range whose `since` is after its `until` is refused wherever the
decision log is read over a range, on both stores: the conversion report
(API, Studio page, `flask sales conversion`), the Studio's impact API and
`flask rules diff` over recorded traffic, and `flask decisions export`.
Before: 200 (or exit 0) with an empty funnel, which reads as "no traffic"."""
from __future__ import annotations

import pytest

from helpers import Client, assert_tmf_error
from test_impact_recorded import flask

REPORT = "/tmf-api/sales/v4/conversionReport"
SINCE, UNTIL = "2026-12-02T00:00:00Z", "2026-12-01"


@pytest.mark.xdist_group("recorded-traffic")
def test_since_after_until_is_refused_everywhere(traffic):
    # the shared server with recorded traffic (tests/decisions/conftest.py):
    # every request and command here is refused or only reads
    server = traffic
    api = Client(server.url)

    body = assert_tmf_error(api.get(REPORT, params={"since": SINCE, "until": UNTIL}), 400)
    assert body["code"] == "INVALID_QUERY" and "since=" in body["message"] \
        and "is after until=" in body["message"], body
    page = api.get("/studio/conversion", params={"since": SINCE, "until": UNTIL})
    assert page.status_code == 400, page.text[:300]
    impact = api.post("/admin/rules/impact", json={
        "old": "1.0.0", "new": "1.1.0", "cases": False, "recordedSince": SINCE,
        "recordedUntil": UNTIL})
    body = assert_tmf_error(impact, 400)
    assert body["code"] == "INVALID_BODY" and "recordedSince=" in body["message"], body

    # an empty range (since == until) and a range in order still answer
    assert api.get(REPORT, params={"since": SINCE, "until": SINCE}).status_code == 200
    assert api.get(REPORT, params={"since": UNTIL, "until": SINCE}).status_code == 200

    for args in (("sales", "conversion", "--since", SINCE, "--until", UNTIL),
                 ("decisions", "export", "--since", SINCE, "--until", UNTIL),
                 ("rules", "diff", "1.0.0", "1.1.0", "--no-cases", "--since", SINCE,
                  "--until", UNTIL)):
        done = flask(server, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "is after until=" in done.stderr and "Traceback" not in done.stderr, args
