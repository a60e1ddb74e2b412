"""Contact policies' channel and category scopes over HTTP against a real
server, on both stores (each reads the history its own way): `perChannel`
counts only the impressions on the request's channel, a policy without it
counts every channel, and a category scope limits each offering of the
category (and none other)."""
from __future__ import annotations

import datetime as dt

from helpers import Client
from test_contact_policies import ask, offerings, query, react, rules_with

POLICIES = """\
  - id: P1
    kind: maxImpressions
    scope: {offering: "6542"}
    count: 3
    days: 7
    perChannel: true
  - id: P2
    kind: maxImpressions
    scope: {offering: "6543"}
    count: 3
    days: 7
  - id: P3
    kind: maxImpressions
    scope: {category: services}
    count: 1
    days: 7
"""


def on(body: dict, channel: str) -> dict:
    return {**body, "channel": [{"id": channel}]}


def test_per_channel_and_category_scopes(make_server, tmp_path):
    api = Client(make_server(rules_dir=rules_with(tmp_path, POLICIES)).url)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    # three impressions of 6542 and 6543 on the app (21), two days ago
    for n in range(3):
        when = now - dt.timedelta(days=2, minutes=n)
        answer = ask(api, query(party="p-chan", at=when))
        react(api, answer, "6542", "shown", when, channel="21")
        react(api, answer, "6543", "shown", when, channel="21")
    assert offerings(ask(api, query(party="p-chan", at=now))) == ["7301"]          # both dropped on the app
    web = offerings(ask(api, on(query(party="p-chan", at=now), "22")))
    assert "6542" in web and "6543" not in web, web      # P1 counts the web shop's own (none); P2 counts all

    # one impression of the insurance (category services) drops it; one of the case (accessories) does not
    when = now - dt.timedelta(hours=3)
    answer = ask(api, query(party="p-cat", at=when))
    react(api, answer, "7301", "shown", when)
    react(api, answer, "6542", "shown", when)
    assert offerings(ask(api, query(party="p-cat", at=now))) == ["6542", "6543"]
