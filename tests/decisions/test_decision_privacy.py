"""Privacy of the decision log, on both stores through a real server and
the CLI: answers are purged after the retention window by the workers
themselves, and `flask decisions erase --party` removes one person's
answers (by customer or engaged party id), reactions and stored queries
while everyone else's stay."""
from __future__ import annotations

import subprocess
import sys

import cliprocess
from helpers import PATIENCE, ROOT, Client, wait_until
from test_decision_log import R, answer, instant_query, metric
from test_reactions import REACTIONS, react
from test_recommendation_api import make_customer


def flask(server, *args) -> subprocess.CompletedProcess:
    env = dict(server.env, RECO_BACKGROUND_WORKERS="false", FLASK_APP="wsgi", NO_COLOR="1")
    return cliprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_answers_are_purged_after_the_retention_window(make_server):
    # 0.0001 days: 8.6 s; the workers purge every half second
    server = make_server(env={"RECO_DECISION_RETENTION_DAYS": "0.0001",
                              "RECO_DECISION_PURGE_SECONDS": "0.5"})
    api = Client(server.url)
    answers = [answer(api), answer(api)]
    # a reaction names the party and what it did: it goes with the answers
    reaction = api.post(REACTIONS, json={"reactionType": "clicked", "recommendation": {
        "id": answers[0]["id"], "itemId": "1"}})
    assert reaction.status_code == 201, reaction.text
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total") >= 2, PATIENCE)
    assert metric(api, "reco_decisions_purged_total") == 0
    assert all(api.get(given["href"]).status_code == 200 for given in answers)
    assert wait_until(lambda: metric(api, "reco_decisions_purged_total") >= 2, PATIENCE)
    assert wait_until(lambda: api.get(REACTIONS).json() == [], PATIENCE), api.get(REACTIONS).json()
    # gone from the store, not only hidden by the retention check
    assert "0 recorded answers exported" in flask(server, "decisions", "export").stderr


def test_erase_removes_one_persons_answers_and_reactions(make_server):
    server = make_server()
    api = Client(server.url)
    customer = make_customer(api, "premium")
    other = make_customer(api, "premium")
    by_customer_id = answer(api, {**instant_query(), "relatedParty": {"id": customer["id"]}})
    by_party_id = answer(api, {**instant_query(), "relatedParty": {
        "id": customer["engagedParty"]["id"]}})
    someone_else = answer(api, {**instant_query(), "relatedParty": {"id": other["id"]}})
    stored = api.post(R, json={**instant_query(), "instantSyncRecommendation": False,
                               "relatedParty": {"id": customer["id"]}}).json()
    assert wait_until(lambda: api.get(stored["href"]).json()["state"] == "done", PATIENCE)
    for decision in (by_customer_id, by_party_id, someone_else):
        assert react(api, decision, "1", "shown").status_code == 201
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total") >= 4, PATIENCE)

    done = flask(server, "decisions", "erase", "--party", customer["engagedParty"]["id"])
    assert done.returncode == 0, done.stderr
    assert "3 recorded answers, 2 reactions, 1 stored queries" in done.stdout
    for gone in (by_customer_id, by_party_id, stored):
        assert api.get(gone["href"]).status_code == 404
    assert api.get(someone_else["href"]).status_code == 200
    left = api.get(REACTIONS).json()
    assert [r["recommendation"]["id"] for r in left] == [someone_else["id"]]
    assert "1 recorded answers exported" in flask(server, "decisions", "export").stderr
    again = flask(server, "decisions", "erase", "--party", customer["id"])
    assert "0 recorded answers, 0 reactions, 0 stored queries" in again.stdout
    # no id at all names nobody: a usage error, nothing erased
    for blank in ("", "  "):
        refused = flask(server, "decisions", "erase", "--party", blank)
        assert refused.returncode == 2 and "--party" in refused.stderr, refused.stdout
    assert api.get(someone_else["href"]).status_code == 200
