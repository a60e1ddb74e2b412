"""The contact policies' history read in the customer look-up's statement
(PostgreSQL): PartyFacts.look_up sends ONE statement for both, planned on
the indexes (the customer by primary key, the reactions by
`documents_reaction_party_type`, the answers by `decisions_party`), and the
history it returns answers exactly as the policies' own read would; a
window it did not read (a reload between the look-up and the evaluation)
is read from the store again. On TinyDB nothing is read ahead: the source
is the store's own, unchanged."""
from __future__ import annotations

import datetime as dt

import pytest

from app.contact.history import PostgresHistory, ReadAhead, history_source
from app.decisions.sinks import PostgresSink
from app.recommend.facts import PartyFacts
from app.rules.engine.contact import reaction_windows, window
from app.rules.model.contact import ContactPolicy
from app.store import open_store

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
PARTIES = 400


def policies(*kinds) -> tuple:
    made = {"maxImpressions": dict(count=3, days=7), "pauseAfterRejected": dict(days=30),
            "maxOffersPerDay": dict(count=5, days=1)}
    return tuple(ContactPolicy(id=f"P{n}", kind=kind, **made[kind]) for n, kind in enumerate(kinds))


def reactions(n: int) -> list[dict]:
    kinds = ["shown", "shown", "shown", "rejected", "accepted", "clicked"]
    return [{"id": f"r{i}", "reactionType": kinds[i % len(kinds)],
             "reactionDate": (NOW - dt.timedelta(hours=7 * i % (40 * 24))).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "recommendation": {"id": f"d{i}", "itemId": "1"}, "productOffering": {"id": f"o{i % 7}"},
             "channel": {"id": str(21 + i % 3)}, "relatedParty": [{"id": f"p{i % PARTIES}", "role": "customer"}],
             "@type": "RecommendationReaction"} for i in range(n)]


def decision(n: int) -> dict:
    when = NOW - dt.timedelta(minutes=37 * n % (2 * 24 * 60))
    return {"id": f"d-{n:06d}", "decidedAt": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "mode": "instant",
            "partyId": f"p{n % PARTIES}", "channelId": "21", "segment": None, "query": {},
            "items": [{"id": str(k + 1), "priority": k + 1, "offeringId": f"o{(n + k) % 7}", "name": "",
                       "ruleIds": ["R1"], "rulePriority": 1} for k in range(2)],
            "ruleSetId": "rs", "ruleSetVersion": "1.0.0", "ruleSetHash": "h"}


def as_sets(history) -> tuple[set, set]:
    return set(history.reactions), set(history.offers)


@pytest.fixture
def pg_store(pg_url):
    store = open_store(pg_url)
    store.insert_many("recommendationReaction", reactions(12000))
    store.insert_many("customer", [{"id": f"p{i}", "name": f"c{i}"} for i in range(0, PARTIES, 2)])
    sink = PostgresSink(store)
    sink.write([decision(n) for n in range(3000)])
    with store.connection() as conn:
        for table in ("documents", "decisions", "decision_items"):
            conn.execute(f"ANALYZE {table}")
    yield store
    store.close()


def test_one_statement_on_the_indexes(pg_store):
    history = PostgresHistory(pg_store)
    for kinds in (("maxImpressions", "pauseAfterRejected"),
                  ("maxImpressions", "pauseAfterRejected", "maxOffersPerDay")):
        declared = policies(*kinds)
        (sql, params, columns), _finish = history.ahead("p12", *window(declared, NOW),
                                                        kinds=reaction_windows(declared, NOW))
        statement = pg_store.along_statement(sql, columns)
        with pg_store.connection(write=False) as conn:
            plan = "\n".join(row[0] for row in conn.execute(
                "EXPLAIN " + statement, {**params, "_collection": "customer", "_id": "p12"}).fetchall())
        assert "Seq Scan" not in plan, plan
        assert "documents_pkey" in plan and "documents_reaction_party_type" in plan, plan
        if "maxOffersPerDay" in kinds:
            assert "decisions_party" in plan, plan


@pytest.mark.parametrize("kinds", [("maxImpressions", "pauseAfterRejected"),
                                   ("maxImpressions", "pauseAfterRejected", "maxOffersPerDay")])
def test_read_ahead_answers_like_the_policies_own_read(pg_store, kinds):
    source = PostgresHistory(pg_store)
    facts = PartyFacts(pg_store, history=source)
    declared = policies(*kinds)
    seen = 0
    for party in ("p10", "p11", "p0", "nobody"):
        customer, ahead = facts.look_up({"id": party}, NOW, declared)
        assert isinstance(ahead, ReadAhead)
        assert customer == pg_store.get("customer", party)          # p11: none stored
        asked = reaction_windows(declared, NOW)
        expected = source.read(party, *window(declared, NOW), kinds=asked)
        answered = ahead.read(party, *window(declared, NOW), kinds=asked)
        assert as_sets(answered) == as_sets(expected)
        seen += len(expected.reactions) + len(expected.offers)
        # a narrower window (a policy removed by a reload) is answered from memory,
        # a type not read ahead (or every type) from the store
        narrower = (NOW - dt.timedelta(days=3), NOW, None)
        for kinds_asked in ({"shown": narrower[0]}, {"clicked": narrower[0]}, None):
            assert as_sets(ahead.read(party, *narrower, kinds=kinds_asked)) == as_sets(
                source.read(party, *narrower, kinds=kinds_asked))
    assert seen > 0


def test_a_window_not_read_ahead_is_read_from_the_store(pg_store):
    source = PostgresHistory(pg_store)
    _customer, ahead = PartyFacts(pg_store, history=source).look_up(
        {"id": "p10"}, NOW, policies("maxImpressions"))
    wider = (NOW - dt.timedelta(days=30), NOW, NOW - dt.timedelta(days=1))
    assert len(ahead.fixed.history.reactions) < len(source.read("p10", *wider).reactions)
    assert as_sets(ahead.read("p10", *wider)) == as_sets(source.read("p10", *wider))
    assert as_sets(ahead.read("p12", *wider)) == as_sets(source.read("p12", *wider))


def test_without_policies_or_on_tinydb_nothing_is_read_ahead(store_url):
    store = open_store(store_url)
    try:
        store.insert("customer", {"id": "p1", "name": "c1"})
        source = history_source(store)
        facts = PartyFacts(store, history=source)
        customer, same = facts.look_up({"id": "p1"}, NOW, ())
        assert customer["id"] == "p1" and same is source
        customer, ahead = facts.look_up({"id": "p1"}, NOW, policies("maxImpressions"))
        assert customer["id"] == "p1"
        assert (ahead is source) == (not store.sql)
    finally:
        store.close()


class _Buffer:
    """A decision log's buffer: records not written yet, until flush()
    writes them to the sink and drops them (in that order, as the log's
    flusher does)."""

    def __init__(self, sink, records):
        self.sink, self.records = sink, list(records)

    def buffered_of_party(self, party_id):
        return [r for r in self.records if r["partyId"] == party_id]

    def flush(self):
        self.sink.write(self.records)
        self.records = []


def two_written_one_buffered(store, tmp_path, party: str):
    """(now, the party's three answers of the last minutes, the sink): the
    first two written by the decision log's sink for `store`, the third
    not (still in a worker's buffer)."""
    from app.decisions.sinks import JsonLinesSink
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    records = [{**decision(n), "partyId": party,
                "decidedAt": (now - dt.timedelta(minutes=n + 1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
               for n in range(3)]
    sink = PostgresSink(store) if store.sql else JsonLinesSink(tmp_path / "decisions")
    sink.write(records[:2])
    return now, records, sink


def counted_once_each(found, records) -> bool:
    """Each answer's two items, once each."""
    return sorted(o.decision for o in found.offers) == sorted(r["id"] for r in records for _ in range(2))


def test_an_answer_being_flushed_is_counted_once(store_url, tmp_path):
    """The flusher drops a batch from the buffer only after writing it; a
    history read in between found the answer in both and counted its items
    twice (a maxOffersPerDay test saw 16 items offered instead of 8)."""
    store = open_store(store_url)
    try:
        now, records, sink = two_written_one_buffered(store, tmp_path, "p-flush")
        # caught between writing a batch and dropping it from the buffer:
        # the two written answers are in the store AND still buffered
        source = history_source(store, _Buffer(sink, records))
        found = source.read("p-flush", now - dt.timedelta(days=1), now, now - dt.timedelta(days=1))
        assert counted_once_each(found, records)
    finally:
        store.close()


def test_an_answer_flushed_while_the_store_is_read_is_counted_once(store_url, tmp_path):
    """The flusher writes a batch and drops it from the buffer just after the
    store was read. The history read the buffer after the store, so the
    answer was in neither: a worker's next request did not count an answer
    its client already had (a whole run: 5 items counted of 8, and the
    per-day cap let more through). The buffer is now read first."""
    store = open_store(store_url)
    try:
        now, records, sink = two_written_one_buffered(store, tmp_path, "p-mid")
        buffer = _Buffer(sink, records[2:])
        source = history_source(store, buffer)
        # the flush comes right after the store read: after the statement
        # (PostgreSQL: before its rows become the History), after the day
        # files (embedded)
        stage, after_read = ("history", source.history) if store.sql else ("_logged", source._logged)

        def read_then_flush(*args, **kwargs):
            if store.sql:
                buffer.flush()
                return after_read(*args, **kwargs)
            found = after_read(*args, **kwargs)
            buffer.flush()
            return found
        setattr(source, stage, read_then_flush)
        found = source.read("p-mid", now - dt.timedelta(days=1), now, now - dt.timedelta(days=1))
        assert counted_once_each(found, records)
    finally:
        store.close()
