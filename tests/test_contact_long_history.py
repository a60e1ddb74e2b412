"""Contact policies for a party with a long, mixed history, on both stores
over HTTP: the history read fetches only the reaction types the policies
read, each over its own window (app/rules/engine/contact.py
reaction_windows), and the suppressions are exactly the ones derived by
hand below, window edges to the second included. On PostgreSQL the read is
one range of `documents_reaction_party_type` (party, type, date) per type
(migration 0007), never a scan, and returns only the types asked for.

The history is made through the API: answers evaluated at past times
(`validFor.startDateTime`), newest first so that no setup answer is itself
suppressed, and reactions dated at those times."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from helpers import Client
from test_contact_policies import REACTIONS, ask, iso, rules_with

from app.contact.history import PostgresHistory, history_source
from app.recommend.facts import PartyFacts
from app.rules.engine.contact import FixedHistory, History, Reaction, reaction_windows, window
from app.rules.model.contact import ContactPolicy
from app.store import open_store
from app.timeutil import isoformat

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)

POLICIES = """\
  - id: P1
    description: at most three impressions of the case a week, per channel
    kind: maxImpressions
    scope: {offering: "6542"}
    count: 3
    days: 7
    perChannel: true
  - id: P2
    kind: maxImpressions
    scope: {category: accessories}
    count: 9
    days: 2
  - id: P3
    kind: pauseAfterRejected
    days: 30
  - id: P4
    kind: stopAfterAccepted
    scope: {offering: "7301"}
"""


def key_reactions(e: dt.datetime) -> list[tuple]:
    """(offering, type, channel, time): the reactions that decide the
    answers at E = `e` (see test_long_history_suppresses_exactly_as_derived)."""
    return [
        ("6542", "shown", "21", e - 7 * DAY + SECOND),   # in P1's week at E, on its edge at E+1s
        ("6542", "shown", "21", e - 3 * DAY),
        ("6542", "shown", "21", e - dt.timedelta(hours=1)),
        ("6542", "shown", "21", e - 7 * DAY),            # on the edge at E: not counted
        ("6542", "shown", "22", e - 2 * DAY + dt.timedelta(hours=1)),
        ("6542", "shown", "22", e - 5 * DAY),
        ("6542", "shown", "23", e - DAY),
        ("6542", "clicked", "21", e - dt.timedelta(hours=2)),    # clicks are no impressions
        ("6542", "accepted", "21", e - dt.timedelta(hours=3)),   # P4 covers 7301 only
        ("6543", "rejected", "21", e - 30 * DAY + SECOND),       # P3's edge at E+1s
        ("7301", "accepted", "22", e - 400 * DAY),               # stopAfterAccepted: 3,650 days
    ]


def noise_reactions(e: dt.datetime, answers: int = 50) -> list[tuple]:
    """Old reactions of every type on every channel, one visit a week from
    8 days back (about a year): none decides an answer (impressions older
    than a week, rejections older than 31 days, acceptances of offerings
    P4 does not cover), but a read of every type over ten years fetches
    them all (about 550)."""
    found = []
    for n in range(answers):
        when = e - 8 * DAY - n * (7 * DAY - dt.timedelta(hours=1))
        channel = ("21", "22", "23")[n % 3]
        for offering in ("6542", "6543", "7301"):
            found.append((offering, "shown", channel, when))
            found.append((offering, "clicked", channel, when))
            if offering != "7301":
                found.append((offering, "accepted", channel, when))
            if when < e - 31 * DAY:
                found.append((offering, "rejected", channel, when))
    return found


def make_history(api: Client, party: str, reactions: list[tuple]) -> None:
    """One answer per distinct time, asked newest first (a setup answer
    sees none of the reactions already made: they are later than it), and
    its reactions dated at that time."""
    by_time: dict[dt.datetime, list[tuple]] = {}
    for reaction in reactions:
        by_time.setdefault(reaction[3], []).append(reaction)
    for when in sorted(by_time, reverse=True):
        answer = ask(api, visit(party, "21", when))
        items = {i["productOffering"]["id"]: i["id"] for i in answer["recommendationItem"]}
        assert set(items) == {"6542", "6543", "7301"}, (when, items)
        for offering, kind, channel, at in by_time[when]:
            response = api.post(REACTIONS, json={
                "reactionType": kind, "reactionDate": iso(at), "channel": {"id": channel},
                "recommendation": {"id": answer["id"], "itemId": items[offering]}})
            assert response.status_code == 201, response.text


def visit(party: str, channel: str, at: dt.datetime) -> dict:
    """The demo's E1: TMFone in the cart; channels 21 and 22 get 6542, 6543,
    7301, channel 23 no device insurance (R3): 6542, 6543."""
    return {"instantSyncRecommendation": True, "channel": [{"id": channel}],
            "relatedParty": {"id": party, "role": "customer"}, "validFor": {"startDateTime": iso(at)},
            "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}


def offered(api: Client, party: str, channel: str, at: dt.datetime) -> list[str]:
    return [i["productOffering"]["id"] for i in ask(api, visit(party, channel, at))["recommendationItem"]]


def test_long_history_suppresses_exactly_as_derived(make_server, tmp_path):
    """Expectations by hand, at E (now, to the second) and E + 1 s:
    - 6542 on channel 21 at E: shown at E-7d+1s, E-3d, E-1h on 21 (E-7d is
      on the edge, E-8d and older out): 3 in P1's week: dropped. At E+1s
      the first is on the edge: 2: offered. On 22 (2 in the week) and 23
      (1 in the week, 17 older): offered. P2 (9 accessories in 2 days,
      every channel): never reached.
    - 6543: rejected at E-30d+1s: paused (P3) at E on every channel; at
      E+1s on the edge: offered (older rejections: before E-31d).
    - 7301: accepted at E-400d: stopped (P4, 3,650 days) at both times;
      its later impressions, clicks and older rejections change nothing.
      Channel 23 is not offered 7301 by the rules at all."""
    e = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=1)
    server = make_server(rules_dir=rules_with(tmp_path, POLICIES),
                         env={"RECO_DECISION_RETENTION_DAYS": "3650"})
    api = Client(server.url)
    history = key_reactions(e) + noise_reactions(e)
    assert len(history) > 500
    make_history(api, "p-long", history)

    assert offered(api, "p-long", "21", e) == []
    assert offered(api, "p-long", "22", e) == ["6542"]
    assert offered(api, "p-long", "23", e) == ["6542"]
    assert offered(api, "p-long", "21", e + SECOND) == ["6542", "6543"]
    assert offered(api, "p-long", "22", e + SECOND) == ["6542", "6543"]
    # the same party's history does not reach another party
    assert offered(api, "p-short", "21", e) == ["6542", "6543", "7301"]

    explained = api.post("/admin/rules/explain", json=visit("p-long", "21", e)).json()
    step = next(s for s in explained["policies"] if s["step"] == "contact-policy")
    assert [(d["offering"], d["detail"]) for d in step["dropped"]] == [
        ("6542", "shown 3 times in 7 days on channel 21 (policy P1)"),
        ("6543", f"rejected at {isoformat(e - 30 * DAY + SECOND)}, paused for 30 days (policy P3)"),
        ("7301", f"accepted at {isoformat(e - 400 * DAY)}, not offered again (policy P4)")]


# ------------------------------------------------------------------ the read

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
TYPES = ("shown", "shown", "shown", "shown", "clicked", "rejected", "accepted")
DECLARED = (ContactPolicy("P1", "maxImpressions", count=3, days=7, per_channel=True),
            ContactPolicy("P2", "maxImpressions", count=9, days=2),
            ContactPolicy("P3", "pauseAfterRejected", days=30),
            ContactPolicy("P4", "stopAfterAccepted", days=3650))


def reaction_docs(party: str, n: int, first: int = 0, days: int = 700) -> list[dict]:
    return [{"id": f"r{party}-{i}", "reactionType": TYPES[i % len(TYPES)],
             "reactionDate": (NOW - dt.timedelta(seconds=(i * 7919 * 3571) % (days * 86400))
                              ).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "recommendation": {"id": f"d{party}-{i}", "itemId": "1"},
             "productOffering": {"id": f"o{i % 5}"}, "channel": {"id": str(21 + i % 3)},
             "relatedParty": [{"id": party, "role": "customer"}], "@type": "RecommendationReaction"}
            for i in range(first, first + n)]


def _reaction(doc: dict) -> Reaction:
    return Reaction(doc["reactionType"], doc["productOffering"]["id"],
                    dt.datetime.strptime(doc["reactionDate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc),
                    doc["channel"]["id"])


def test_both_stores_read_only_the_kinds_asked_each_in_its_window(store_url):
    """history_source(store).read with `kinds` returns exactly the reactions
    of those types, each after its own `since` (strictly), as the
    policies' own filter of the full history does; without `kinds`, every
    type in the window, as before."""
    store = open_store(store_url)
    try:
        docs = reaction_docs("p-900", 900)
        for first in range(0, len(docs), 300):
            store.insert_many("recommendationReaction", docs[first:first + 300])
        store.insert_many("recommendationReaction", reaction_docs("p-other", 200))
        full = FixedHistory(History([_reaction(d) for d in docs]))
        source = history_source(store)
        kinds = reaction_windows(DECLARED, NOW)
        assert kinds == {"accepted": NOW - 3650 * DAY, "rejected": NOW - 30 * DAY, "shown": NOW - 7 * DAY}
        since, until, offers_since = window(DECLARED, NOW)
        got = source.read("p-900", since, until, offers_since, kinds=kinds)
        expected = full.read("p-900", since, until, offers_since, kinds=kinds)
        assert sorted(got.reactions, key=repr) == sorted(expected.reactions, key=repr)
        assert {r.type for r in got.reactions} == {"shown", "rejected", "accepted"}
        assert len(got.reactions) < 250                          # of 900
        assert all(r.time > kinds[r.type] for r in got.reactions)
        # a reaction exactly on a kind's edge is out, a second later in
        edge = {**docs[0], "id": "edge", "reactionType": "rejected",
                "reactionDate": iso(NOW - 30 * DAY), "productOffering": {"id": "o-edge"}}
        inside = {**edge, "id": "inside", "reactionDate": iso(NOW - 30 * DAY + SECOND),
                  "productOffering": {"id": "o-inside"}}
        store.insert_many("recommendationReaction", [edge, inside])
        offerings = {r.offering for r in history_source(store).read(
            "p-900", since, until, offers_since, kinds=kinds).reactions}
        assert "o-inside" in offerings and "o-edge" not in offerings
        # without kinds: every type since `since` (a caller wanting it all)
        everything = history_source(store).read("p-900", NOW - 60 * DAY, NOW, None)
        assert {r.type for r in everything.reactions} == {"shown", "clicked", "rejected", "accepted"}
    finally:
        store.close()


class _Recording:
    """The store, noting the statement the answering path sends."""

    def __init__(self, store):
        self.store = store
        self.sent = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_along(self, collection, doc_id, sql, params, columns):
        self.sent.append((self.store.along_statement(sql, columns), {**params, "_collection": collection,
                                                                        "_id": doc_id}))
        return self.store.get_along(collection, doc_id, sql, params, columns)


@pytest.mark.backends("postgresql", reason="the statement and its plan are PostgreSQL's")
def test_the_answering_path_reads_each_type_through_its_index_range(pg_url):
    """The statement PartyFacts.look_up sends with the policies of the
    answering version (the customer and the party's history in one): a
    range of documents_reaction_party_type per type (the type in the Index
    Cond), no Seq Scan, and only the rows the policies read fetched (the
    read over every type fetched all 900 over 3,650 days)."""
    store = open_store(pg_url)
    try:
        for party, n in (("p-900", 900), *((f"p{k}", 60) for k in range(400))):
            docs = reaction_docs(party, n)
            for first in range(0, len(docs), 500):
                store.insert_many("recommendationReaction", docs[first:first + 500])
        store.insert("customer", {"id": "p-900", "name": "long history"})
        with store.connection() as conn:
            conn.execute("ANALYZE documents")
        recording = _Recording(store)
        facts = PartyFacts(recording, PostgresHistory(store))
        with store.reading():
            customer, _source = facts.look_up({"id": "p-900"}, NOW, DECLARED)
        assert customer["id"] == "p-900"
        [(statement, params)] = recording.sent
        with store.connection(write=False) as conn:
            plan = "\n".join(row[0] for row in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, params).fetchall())
        assert "Seq Scan" not in plan, plan
        assert "documents_reaction_party_type" in plan, plan
        assert "reactionType" in plan and "Index Cond" in plan, plan
        fetched = sum(int(line.split("rows=")[1].split()[0]) for line in plan.splitlines()
                      if "documents_reaction_party_type" in line)
        assert 0 < fetched < 250, plan
    finally:
        store.close()


def _reaction_indexes(url: str) -> dict[str, bool]:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname LIKE 'documents_reaction_party%'").fetchall())


@pytest.mark.backends("postgresql", reason="a PostgreSQL migration")
def test_migration_0007_swaps_the_index_both_ways_and_finishes_an_interrupted_build(pg_cluster):
    """0006 -> 0007 on a database holding reactions: (party, type, date)
    in place of (party, date), valid; down to 0006 and up again; and an
    INVALID index of the new name (a concurrent build that failed midway)
    is dropped and built again by the next upgrade."""
    import psycopg
    from alembic import command

    from app.store.schema import alembic_config, upgrade

    pg_cluster.execute("DROP DATABASE IF EXISTS upgraded_from_0006")
    pg_cluster.execute("CREATE DATABASE upgraded_from_0006")
    url = pg_cluster.database_url("upgraded_from_0006")
    upgrade(url, "0006")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")       # no feedback trigger: bare rows
        for doc in reaction_docs("p-900", 50):
            conn.execute("INSERT INTO documents (collection, id, doc) VALUES "
                         "('recommendationReaction', %s, %s::jsonb)", (doc["id"], json.dumps(doc)))
    assert _reaction_indexes(url) == {"documents_reaction_party": True}
    upgrade(url)
    assert _reaction_indexes(url) == {"documents_reaction_party_type": True}
    command.downgrade(alembic_config(url), "0006")
    assert _reaction_indexes(url) == {"documents_reaction_party": True}
    # a concurrent build that failed leaves an INVALID index of its name
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY documents_reaction_party_type "
                         "ON documents ((doc ->> 'reactionType'))")
    assert _reaction_indexes(url) == {"documents_reaction_party": True, "documents_reaction_party_type": False}
    upgrade(url)
    assert _reaction_indexes(url) == {"documents_reaction_party_type": True}
    store = open_store(url)
    try:
        source = history_source(store)
        found = source.read("p-900", NOW - 3650 * DAY, NOW, None, kinds=reaction_windows(DECLARED, NOW))
        assert found.reactions and {r.type for r in found.reactions} <= {"shown", "rejected", "accepted"}
    finally:
        store.close()


class _Counting:
    def __init__(self):
        self.reads = []

    def read(self, party_id, since, until, offers_since, *, kinds=None):
        self.reads.append(kinds)
        return History()


def test_a_read_ahead_answers_from_memory_only_the_types_and_windows_it_read():
    """ReadAhead (the history read with the customer) answers a read of the
    types it read, each from no earlier than it read it; a type it did not
    read, an earlier start, or every type (kinds None) goes to the store."""
    from app.contact.history import ReadAhead

    kinds = reaction_windows(DECLARED, NOW)
    shown = Reaction("shown", "o1", NOW - DAY, "21")
    clicked = Reaction("clicked", "o1", NOW - DAY, "21")
    store = _Counting()
    ahead = ReadAhead(store, "p1", *window(DECLARED, NOW), History([shown, clicked]), kinds=kinds)
    assert ahead.read("p1", *window(DECLARED, NOW), kinds=kinds).reactions == [shown]
    assert ahead.read("p1", NOW - 2 * DAY, NOW, None, kinds={"shown": NOW - 2 * DAY}).reactions == [shown]
    assert ahead.read("p1", NOW - 2 * DAY, NOW, None, kinds={"shown": NOW - DAY}).reactions == []
    assert store.reads == []
    for asked in ({"clicked": NOW - 2 * DAY}, {"shown": NOW - 8 * DAY}, None):
        ahead.read("p1", NOW - 8 * DAY, NOW, None, kinds=asked)
    ahead.read("p2", *window(DECLARED, NOW), kinds=kinds)
    assert store.reads == [{"clicked": NOW - 2 * DAY}, {"shown": NOW - 8 * DAY}, None, kinds]


@pytest.mark.backends("postgresql", reason="the statement is PostgreSQL's")
def test_a_per_day_cap_alone_reads_no_reaction(pg_url):
    """With only maxOffersPerDay, the statement has no reaction branch: the
    customer and the party's answers of the last 24 hours."""
    from app.decisions.sinks import PostgresSink

    store = open_store(pg_url)
    try:
        store.insert_many("recommendationReaction", reaction_docs("p-900", 50, days=2))
        store.insert("customer", {"id": "p-900", "name": "capped"})
        answer = {"id": "d-1", "decidedAt": iso(NOW - dt.timedelta(hours=2)), "mode": "instant",
                  "partyId": "p-900", "channelId": "21", "segment": None, "query": {},
                  "items": [{"id": "1", "priority": 1, "offeringId": "o1", "name": "", "ruleIds": ["R1"],
                             "rulePriority": 1}],
                  "ruleSetId": "rs", "ruleSetVersion": "1.0.0", "ruleSetHash": "h"}
        PostgresSink(store).write([answer])
        capped = (ContactPolicy("P9", "maxOffersPerDay", count=5),)
        recording = _Recording(store)
        with store.reading():
            customer, source = PartyFacts(recording, PostgresHistory(store)).look_up({"id": "p-900"}, NOW, capped)
        [(statement, _params)] = recording.sent
        assert "reactionType" not in statement and "recommendationReaction" not in statement
        assert customer["id"] == "p-900"
        found = source.read("p-900", *window(capped, NOW), kinds=reaction_windows(capped, NOW))
        assert found.reactions == [] and [o.offering for o in found.offers] == ["o1"]
    finally:
        store.close()
