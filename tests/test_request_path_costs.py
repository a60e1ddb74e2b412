"""The cheaper request-path pieces keep their meaning: decision ids from a
pooled random source stay unique across a fork, the JSON log line renders
what orjson cannot encode as before, and a decision record copies the query
(names dropped) without sharing anything the answer holds."""
from __future__ import annotations

import io
import json
import os

import pytest

from app.decisions.ids import decision_time, new_decision_id
from app.decisions.record import decision_record
from app.rules.engine.policies import Recommendation


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_decision_ids_differ_in_a_forked_child():
    parent_first = new_decision_id(1_700_000_000.0)         # fills this process's pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                            # child: ids from its own pool
        os.close(read)
        os.write(write, "\n".join(new_decision_id(1_700_000_000.0) for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        child = handle.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_decision_id(1_700_000_000.0) for _ in range(50)]
    assert len(set(child)) == 50 and not set(child) & set(parent) and parent_first not in child
    assert all(decision_time(i).timestamp() == 1_700_000_000.0 for i in child + parent)


def test_decision_ids_are_unique_past_the_pool():
    ids = {new_decision_id() for _ in range(2000)}           # 20,000 bytes: several pools
    assert len(ids) == 2000


def test_decision_record_copies_the_query_and_drops_names():
    query = {"instantSyncRecommendation": True,
             "relatedParty": [{"id": "c-1", "role": "customer", "name": "Jane"}],
             "channel": [{"id": "21"}], "note": [{"text": ["a", {"b": 1.5}]}]}
    result = Recommendation(items=[], ruleset_id="r", ruleset_version="1", ruleset_hash="h")
    import datetime as dt
    record = decision_record("id-1", dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc),
                             query, result)
    assert record["decidedAt"] == "2026-01-02T03:04:05.678Z"
    assert record["query"]["relatedParty"] == [{"id": "c-1", "role": "customer"}]
    assert query["relatedParty"][0]["name"] == "Jane"           # the answer keeps it
    record["query"]["note"][0]["text"][1]["b"] = 2
    assert query["note"][0]["text"][1]["b"] == 1.5             # nothing shared


def test_json_log_line_renders_what_orjson_cannot():
    from app.observability import logs

    class Custom:
        def __structlog__(self):
            return "custom-form"

    line = logs._json_text({"event": "x", "big": 2 ** 70, "obj": Custom(), "text": "é\n\u2028"})
    assert "\n" not in line
    assert json.loads(line) == {"event": "x", "big": 2 ** 70, "obj": "custom-form", "text": "é\n\u2028"}
    line = logs._json_text({"event": "x", "other": io.StringIO(), 3: "non-text key"})
    assert json.loads(line)["event"] == "x" and "StringIO" in json.loads(line)["other"]
    assert json.loads(line)["3"] == "non-text key"
