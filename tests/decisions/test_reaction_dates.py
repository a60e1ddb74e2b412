"""A reaction's reactionDate lies between the answer it reacts to (and the
retention window) and now, give or take 5 minutes of clock skew, on both
stores, through HTTP: a reaction dated 2099 would escape the retention
purge and count in every future funnel; one dated 2001, or before its
answer, names a wrong clock or a wrong answer. Before: all were 201."""
from __future__ import annotations

import datetime as dt

from helpers import PATIENCE, Client, assert_tmf_error, wait_until
from test_decision_log import R, answer, instant_query
from test_reactions import REACTIONS, react, stored_reactions


def _at(offset: dt.timedelta) -> str:
    return (dt.datetime.now(dt.timezone.utc) + offset).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refused(api, decision, reaction_type, date, why):
    body = assert_tmf_error(react(api, decision, "1", reaction_type, reactionDate=date), 400)
    assert body["code"] == "INVALID_BODY" and "reactionDate" in body["message"], body
    assert why in body["message"], body
    return body


def evaluated_now() -> dict:
    """The demo query without its fixed evaluation time: answered for now."""
    body = instant_query()
    del body["validFor"]
    return body


def test_a_reaction_dated_in_the_future_or_before_its_answer_is_refused(api):
    # the session's shared server: the answers reacted to are this test's own
    given = answer(api, evaluated_now())
    before = stored_reactions(api)
    _refused(api, given, "shown", "2099-01-01T00:00:00Z", "in the future")
    _refused(api, given, "shown", _at(dt.timedelta(minutes=6)), "in the future")
    _refused(api, given, "shown", "2001-01-01T00:00:00Z", "before the answer")
    _refused(api, given, "clicked", _at(-dt.timedelta(minutes=6)), "before the answer")
    _refused(api, given, "clicked", "2001-01-01T00:00:00+02:00", "before the answer")
    assert stored_reactions(api) == before                  # nothing stored

    # within the clock skew either way, and now: taken as sent
    assert react(api, given, "1", "shown", reactionDate=_at(dt.timedelta(minutes=4))) \
        .status_code == 201
    assert react(api, given, "1", "clicked", reactionDate=_at(-dt.timedelta(minutes=4))) \
        .status_code == 201
    assert react(api, given, "1", "accepted").status_code == 201

    # a stored asynchronous query's answer (its time is in the decision log
    # on PostgreSQL; on the embedded store only while buffered: the window
    # bounds it then)
    stored = api.post(R, json={**evaluated_now(), "instantSyncRecommendation": False}).json()
    assert wait_until(lambda: api.get(stored["href"]).json()["state"] == "done", PATIENCE)
    stored = api.get(stored["href"]).json()
    _refused(api, stored, "shown", "2099-01-01T00:00:00Z", "in the future")
    _refused(api, stored, "shown", "2001-01-01T00:00:00Z", "before the")
    assert react(api, stored, "1", "shown", reactionDate=_at(dt.timedelta())).status_code == 201


def test_a_reaction_dated_before_the_retention_window_is_refused(make_server):
    # a window of 2 minutes, shorter than the clock skew: the window decides
    api = Client(make_server(env={"RECO_DECISION_RETENTION_DAYS": str(120 / 86400)}).url)
    given = answer(api)
    _refused(api, given, "shown", _at(-dt.timedelta(minutes=3)), "retention window")
    assert react(api, given, "1", "shown", reactionDate=_at(-dt.timedelta(minutes=1))) \
        .status_code == 201


def test_an_answer_evaluated_for_an_earlier_time_takes_reactions_from_that_time(api):
    """A query evaluated for a past `validFor.startDateTime` (a replayed
    visit, the contact policies' tests) is reacted to at that time: its
    reactions may predate the answer's recording, not its evaluation time.
    On the session's shared server: the answer is this test's own."""
    body = evaluated_now()
    body["validFor"] = {"startDateTime": _at(-dt.timedelta(days=2))}
    given = answer(api, body)
    _refused(api, given, "shown", _at(-dt.timedelta(days=2, minutes=6)), "before the answer")
    assert react(api, given, "1", "shown", reactionDate=_at(-dt.timedelta(days=2, minutes=-1))) \
        .status_code == 201
