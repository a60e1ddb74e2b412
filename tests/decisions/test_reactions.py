"""recommendationReaction over HTTP against a real server, on both stores:
reactions to the items of an instant answer (before its batch is written)
and of a stored asynchronous query, idempotent per (decision, item,
reactionType), list filters, retrieve, the TMF680 hub's CreateEvent, the
OpenAPI document, and every bad input refused with nothing stored."""
from __future__ import annotations

import datetime as dt
import uuid

from helpers import PATIENCE, Client, assert_tmf_error, wait_until
from test_decision_log import LEADS, R, answer, instant_query

REACTIONS = Client.RECOMMENDATION + "/recommendationReaction"
HUB = Client.RECOMMENDATION + "/hub"


def react(api, decision: dict, item_id: str, reaction_type: str, **extra):
    return api.post(REACTIONS, json={"reactionType": reaction_type,
                                     "recommendation": {"id": decision["id"], "itemId": item_id},
                                     **extra})


def stored_reactions(api) -> int:
    """How many reactions the server holds (all of them, not one page)."""
    return int(api.get(REACTIONS, params={"limit": 1}).headers["X-Total-Count"])


def test_reactions_to_instant_and_stored_answers(api, listener):
    # the session's shared server: this test's party, answers and hub are
    # its own (other tests' reactions are on the same server)
    party = f"p-{uuid.uuid4().hex[:12]}"
    hub = api.post(HUB, json={"callback": listener.url})
    hub.raise_for_status()
    try:
        _reactions_to_instant_and_stored_answers(api, listener, party)
    finally:
        api.delete(f"{HUB}/{hub.json()['id']}")


def _reactions_to_instant_and_stored_answers(api, listener, party):
    given = answer(api, instant_query(party={"id": party, "name": "Ann"}))

    shown = react(api, given, "1", "shown")          # at once: maybe still in the buffer
    assert shown.status_code == 201, shown.text
    reaction = shown.json()
    assert shown.headers["Location"] == reaction["href"] == f"{REACTIONS}/{reaction['id']}"
    item = given["recommendationItem"][0]
    assert reaction["@type"] == "RecommendationReaction" and reaction["reactionType"] == "shown"
    assert reaction["recommendation"] == {
        "id": given["id"], "href": given["href"], "itemId": "1", "itemPriority": 1,
        "explanation": item["explanation"], "@referredType": "QueryProductRecommendation"}
    assert reaction["productOffering"]["id"] == item["productOffering"]["id"]
    assert reaction["relatedParty"] == [{"id": party, "role": "customer", "@referredType": "Party"}]
    assert reaction["channel"] == {"id": "21"} and reaction["reactionDate"].endswith("Z")

    # a retry counts once: 200 and the same reaction
    again = react(api, given, "1", "shown")
    assert again.status_code == 200 and again.json() == reaction
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")   # as sent
    clicked = react(api, given, "1", "clicked", reactionDate=when,
                    channel={"id": "web"}).json()
    assert clicked["id"] != reaction["id"] and clicked["channel"] == {"id": "web"}
    assert clicked["reactionDate"] == when
    assert api.get(reaction["href"]).json() == reaction
    assert api.get(reaction["href"], params={"fields": "reactionType"}).json() == {
        "id": reaction["id"], "href": reaction["href"], "@type": "RecommendationReaction",
        "reactionType": "shown"}

    # a stored asynchronous query's items too
    stored = api.post(R, json={**instant_query(), "instantSyncRecommendation": False}).json()
    done = wait_until(lambda: api.get(stored["href"]).json()["state"] == "done", PATIENCE)
    assert done
    assert react(api, stored, "3", "accepted").status_code == 201

    # filters
    mine = api.get(REACTIONS, params={"recommendation.id": given["id"], "sort": "reactionType"})
    assert [r["reactionType"] for r in mine.json()] == ["clicked", "shown"]
    assert [r["id"] for r in api.get(REACTIONS, params={"relatedParty.id": party,
                                                        "reactionType": "clicked"}).json()] \
        == [clicked["id"]]
    answers = {given["id"], stored["id"]}
    assert sum(len(api.get(REACTIONS, params={"recommendation.id": answer_id}).json())
               for answer_id in answers) == 3

    # one CreateEvent each through the TMF680 hub, none for the retry
    def created():
        return [e for e in list(listener.events)
                if e["eventType"] == "RecommendationReactionCreateEvent"
                and e["event"]["recommendationReaction"]["recommendation"]["id"] in answers]
    events = wait_until(lambda: len(created()) >= 3 and created(), PATIENCE)
    made = [e["event"]["recommendationReaction"]["id"] for e in events]
    assert sorted(made) == sorted([reaction["id"], clicked["id"],
                                   api.get(REACTIONS, params={"reactionType": "accepted",
                                                              "recommendation.id": stored["id"]}
                                           ).json()[0]["id"]])


def test_bad_reactions_are_refused_and_nothing_is_stored(api):
    # the session's shared server: "nothing stored" is as many reactions as
    # before this test (a worker runs its tests one at a time, and nothing
    # in the background makes reactions)
    given = answer(api)
    before = stored_reactions(api)
    cases = [
        ({"reactionType": "liked", "recommendation": {"id": given["id"], "itemId": "1"}},
         400, "INVALID_BODY"),
        ({"recommendation": {"id": given["id"], "itemId": "1"}}, 400, "INVALID_BODY"),
        ({"reactionType": "shown"}, 400, "INVALID_BODY"),
        ({"reactionType": "shown", "recommendation": {"id": given["id"]}}, 400, "INVALID_BODY"),
        ({"reactionType": "shown", "recommendation": {"id": "", "itemId": "1"}}, 400,
         "INVALID_BODY"),
        ({"reactionType": "shown", "recommendation": {"id": given["id"], "itemId": "1"},
          "reactionDate": "yesterday"}, 400, "INVALID_BODY"),
        ({"reactionType": "shown", "recommendation": {"id": given["id"], "itemId": "1"},
          "productOffering": {"id": "6542"}}, 400, "SERVER_OWNED_ATTRIBUTE"),
        ({"reactionType": "shown", "recommendation": {"id": given["id"], "itemId": "1"},
          "id": "mine"}, 400, "SERVER_OWNED_ATTRIBUTE"),
        ({"reactionType": "shown", "recommendation": {"id": "no-such-answer", "itemId": "1"}},
         404, "RECOMMENDATION_NOT_FOUND"),
        ({"reactionType": "shown", "recommendation": {"id": given["id"], "itemId": "9"}},
         404, "RECOMMENDATION_ITEM_NOT_FOUND"),
    ]
    for body, status, code in cases:
        assert assert_tmf_error(api.post(REACTIONS, json=body), status)["code"] == code, body
    assert_tmf_error(api.post(REACTIONS, data="[]", headers={"Content-Type": "application/json"}),
                     400)
    assert stored_reactions(api) == before
    assert_tmf_error(api.get(f"{REACTIONS}/nope"), 404)
    assert_tmf_error(api.get(REACTIONS, params={"nosuch": "1"}), 400)


def test_the_openapi_document_has_reactions(api):
    document = api.get("/openapi.json").json()
    path = document["paths"][REACTIONS]
    assert set(path) >= {"get", "post"} and "get" in document["paths"][REACTIONS + "/{resource_id}"]
    assert "200" in path["post"]["responses"] and "201" in path["post"]["responses"]


def test_a_reaction_or_lead_right_after_the_answer_works_on_any_worker(make_server):
    # two workers, a new connection per request: the reaction, the lead and
    # the GET often land on the worker that did not answer, before the
    # answering worker has written its batch (flushes every 0.5 s here)
    server = make_server(workers=2, env={"RECO_DECISION_FLUSH_SECONDS": "0.5"})
    api = Client(server.url)
    close = {"Connection": "close"}
    failures = []
    for _ in range(12):
        given = api.post(R, json=instant_query(), headers=close).json()
        reacted = api.post(REACTIONS, headers=close, json={
            "reactionType": "shown", "recommendation": {"id": given["id"], "itemId": "1"}})
        got = api.get(given["href"], headers=close)
        led = api.post(LEADS, headers=close, json={
            "@type": "RecommendationSalesLead",
            "recommendation": {"id": given["id"], "itemId": "2"}})
        failures += [(name, r.status_code, r.text[:120]) for name, r, ok in (
            ("reaction", reacted, 201), ("get", got, 200), ("lead", led, 201))
            if r.status_code != ok]
    assert failures == []
    # an id of the right shape that no worker gave is still a 404, after a bounded wait
    unknown = "01a24af8-2429-7a82-a94b-abb3e2297f10"
    assert assert_tmf_error(api.get(f"{R}/{unknown}"), 404)["code"] == "NOT_FOUND"
