"""The party's contact-policy history is read only when the policies need
it: a request whose rules propose nothing, or nothing a policy covers,
reads no history (app/rules/engine/contact.py), and on PostgreSQL, once a
version's recent requests mostly needed none, it is no longer read ahead in
the customer look-up's statement either (app/recommend/read_ahead.py),
while the answers stay the same: a request that proposes items is still
suppressed by the party's history (read on need).

The reads are counted by PostgreSQL itself (pg_stat_user_indexes' idx_scan
of `documents_reaction_party_type`, the reactions' index: nothing else of these
requests uses it), against a real server over HTTP."""
from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest

from helpers import Client
from test_contact_policies import IMPRESSIONS, NOW, ask, offerings, query, react, rules_with

from app.rules.engine.contact import History, evaluate
from app.rules.model.catalog import load_catalog
from app.rules.model.contact import ContactPolicy
from helpers import DEMO_CATALOG


def nothing_proposed(n: int) -> dict:
    """A cart holding only a case (6542): no demo rule proposes anything
    for a party without products."""
    body = query(party=f"p-none-{n}")
    body["shoppingCart"][0]["cartItem"][0]["productOffering"]["id"] = "6542"
    return body


def reaction_index_scans(url: str) -> int:
    """idx_scan of the reactions' (party, type, time) index, once the server's
    backends flushed their statistics (at most every second, and 10 s
    after going idle: waited out)."""
    time.sleep(11)
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT idx_scan FROM pg_stat_user_indexes "
                            "WHERE indexrelname = 'documents_reaction_party_type'").fetchone()[0]


@pytest.mark.backends("postgresql", reason="the read ahead in the customer's statement is PostgreSQL's; "
                                           "evaluate's own skip is tested on its own below")
def test_requests_proposing_nothing_stop_reading_the_history(make_server, tmp_path):
    server = make_server(rules_dir=rules_with(tmp_path, IMPRESSIONS))
    api = Client(server.url)
    shown_at = NOW - dt.timedelta(days=6)
    for n in range(3):
        answer = ask(api, query(at=shown_at + dt.timedelta(minutes=n)))
        react(api, answer, "6542", "shown", shown_at + dt.timedelta(minutes=n))
    for n in range(80):                               # the version learns: these need no history
        assert offerings(ask(api, nothing_proposed(n))) == []
    before = reaction_index_scans(server.store_url)
    for n in range(80, 100):
        assert offerings(ask(api, nothing_proposed(n))) == []
    assert reaction_index_scans(server.store_url) == before     # no read, ahead or on need

    # the same answers: the 4th impression is still suppressed (the history read on need)
    assert offerings(ask(api, query())) == ["6543", "7301"]
    assert offerings(ask(api, query(party="p-other"))) == ["6542", "6543", "7301"]
    assert reaction_index_scans(server.store_url) > before


class CountingSource:
    def __init__(self):
        self.reads = 0

    def read(self, party_id, since, until, offers_since, *, kinds=None):
        self.reads += 1
        return History()


def test_no_read_when_no_policy_covers_the_proposed_offerings():
    catalog = load_catalog(DEMO_CATALOG)
    scoped = (ContactPolicy("P1", "maxImpressions", count=3, days=7, offering="6542"),
              ContactPolicy("P2", "pauseAfterRejected", days=30, category="accessories"))
    when = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc)
    source = CountingSource()
    verdict = evaluate(scoped, "p-1", source, when, "21", ["7301", "7402"], catalog)
    assert source.reads == 0 and verdict.suppressed == {} and "no policy covers" in verdict.skipped
    evaluate(scoped, "p-1", source, when, "21", ["7301", "6543"], catalog)        # 6543: accessories
    assert source.reads == 1
    capped = scoped + (ContactPolicy("P3", "maxOffersPerDay", count=5),)          # every offering counts
    evaluate(capped, "p-1", source, when, "21", ["7301"], catalog)
    assert source.reads == 2
