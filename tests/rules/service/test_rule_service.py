"""RuleService: versions side by side, activation and rollback without restart,
hot reload, broken files never replacing a working version, worker convergence,
fork safety, and concurrent evaluation while versions change."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from app.rules import RuleService, RuleSetError
from rulehelpers import DEMO_RULES, ctx, customer, write

E1 = dict(time="2026-10-01", cart=["6547"], channels=["21"])
DEMO_TEXT = (DEMO_RULES / "telco-demo.yaml").read_text()


def variant(version: str, **changes) -> str:
    """The demo rule set under another version, with small edits."""
    text = DEMO_TEXT.replace('version: "1.0.0"', f'version: "{version}"')
    for old, new in changes.items():
        assert old.replace("_", " ") in text or old in text
        text = text.replace(old, new)
    return text


SWAPPED = {'{offering: "6542", priority: 20}': '{offering: "6542", priority: 31}'}   # E1: 6543, 6542, 7301
LIMIT2 = {"limit: 4": "limit: 2"}                                                      # E1: 6542, 6543


def answer(result):
    return result.ruleset_version, result.ruleset_hash, tuple(i.offering_id for i in result.items)


def ids(svc, **kw):
    return [i.offering_id for i in svc.recommend(ctx(**kw)).items]


def test_default_is_the_only_rule_set_at_its_highest_version(service):
    status = service.status()
    assert status["ok"] and status["rulesetId"] == "telco-demo" and status["version"] == "1.0.0"
    assert status["errors"] == [] and status["catalog"]["offerings"] == 13 and len(status["hash"]) == 16
    assert ids(service, **E1) == ["6542", "6543", "7301"]


def test_versions_side_by_side_activate_rollback_unpin(tree):
    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **SWAPPED))
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    assert [v["version"] for v in svc.versions("telco-demo")] == ["0.9.0", "1.0.0"]
    assert svc.status()["version"] == "1.0.0"                      # highest by default

    status = svc.activate("telco-demo", "0.9.0")                  # roll back
    assert status["version"] == "0.9.0" and status["pinned"]
    assert ids(svc, **E1) == ["6543", "6542", "7301"]
    pointer = json.loads((state_dir / "active-rulesets.json").read_text())
    assert pointer["rulesets"]["telco-demo"]["version"] == "0.9.0"
    assert sorted(p.name for p in state_dir.iterdir()) == ["active-rulesets.json",   # no temp file left
                                                           "rule-files.checks.json", "rules-activated.stamp"]

    svc.activate("telco-demo", "1.0.0")
    assert ids(svc, **E1) == ["6542", "6543", "7301"] and svc.status()["pinned"]
    svc.activate("telco-demo", None)                               # unpin: follow the highest
    assert svc.status()["version"] == "1.0.0" and not svc.status()["pinned"]


def test_other_workers_converge_on_the_activated_version(tree):
    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **SWAPPED))
    worker_a = RuleService(rules_dir, catalog_dir, state_dir)
    worker_b = RuleService(rules_dir, catalog_dir, state_dir)
    worker_a.activate("telco-demo", "0.9.0")
    assert worker_b.status()["version"] == "1.0.0", worker_b.status()  # until its next refresh()
    worker_b.refresh()
    assert worker_b.status()["version"] == "0.9.0"
    assert RuleService(rules_dir, catalog_dir, state_dir).status()["version"] == "0.9.0"   # a new worker too


def test_activate_refuses_unknown_or_broken_versions(tree):
    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.8.0.yaml",
          variant("0.8.0", **{'{offering: "6542", priority: 20}': '{offering: "9999", priority: 20}'}))
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    with pytest.raises(RuleSetError, match="no version '2.0.0'"):
        svc.activate("telco-demo", "2.0.0")
    with pytest.raises(RuleSetError) as info:
        svc.activate("telco-demo", "0.8.0")
    assert any("telco-demo@0.8.0.yaml:22:" in str(p) and "unknown offering '9999'" in str(p)
               for p in info.value.problems)
    with pytest.raises(RuleSetError, match="unknown rule set"):
        svc.activate("nope", "1.0.0")
    assert not (state_dir / "active-rulesets.json").exists()
    assert svc.status()["version"] == "1.0.0"
    assert any("unknown offering '9999'" in e for e in svc.status()["errors"])


def test_hot_reload_of_a_new_version_and_broken_edits_keep_serving(tree):
    rules_dir, catalog_dir, state_dir = tree
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    working = rules_dir / "telco-demo.yaml"
    working.write_text(variant("1.1.0", **LIMIT2))
    svc.refresh()
    assert svc.status()["version"] == "1.1.0" and ids(svc, **E1) == ["6542", "6543"]

    working.write_text(variant("1.2.0", **LIMIT2).replace("cart: \"6547\"\n      segment", "cart: [\"6547\"\n      segment"))
    svc.refresh()
    status = svc.status()
    assert status["ok"] and status["version"] == "1.1.0"          # the old one keeps serving
    assert ids(svc, **E1) == ["6542", "6543"]
    assert any(e.startswith(f"{working}:") and "invalid YAML" in e for e in status["errors"]), status["errors"]

    working.write_text(variant("1.2.0", **SWAPPED))
    svc.refresh()
    assert svc.status()["version"] == "1.2.0" and svc.status()["errors"] == []
    assert ids(svc, **E1) == ["6543", "6542", "7301"]


def test_refresh_is_a_no_op_when_nothing_changed(service):
    engine = service.engine
    for _ in range(3):
        service.refresh()
    assert service.engine is engine


def test_a_broken_catalog_keeps_the_last_good_one(tree):
    rules_dir, catalog_dir, state_dir = tree
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    (catalog_dir / "channels.yaml").write_text("channels: [{id: 21}, {id: 21}]\n")
    svc.refresh()
    status = svc.status()
    assert status["ok"] and status["version"] == "1.0.0"
    assert any("duplicate channel id '21'" in e for e in status["errors"])
    assert ids(svc, **E1) == ["6542", "6543", "7301"]


def test_no_rule_set_means_not_ok_and_a_lookup_error(tmp_path, tree):
    _rules_dir, catalog_dir, state_dir = tree
    empty = tmp_path / "empty-rules"
    empty.mkdir()
    svc = RuleService(empty, catalog_dir, state_dir)
    assert svc.status()["ok"] is False
    with pytest.raises(LookupError):
        svc.recommend(ctx(**E1))


def test_a_broken_only_file_is_reported_with_its_line(tree):
    rules_dir, catalog_dir, state_dir = tree
    (rules_dir / "telco-demo.yaml").write_text(DEMO_TEXT.replace('cart: "6547"', 'cart: "0000"'))
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    status = svc.status()
    assert status["ok"] is False
    assert f"{rules_dir / 'telco-demo.yaml'}:30:13: rule R2: unknown offering '0000'" in status["errors"]


def test_which_rule_set_is_served(tree):
    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "alpha.yaml", DEMO_TEXT.replace("id: telco-demo", "id: alpha"))
    assert RuleService(rules_dir, catalog_dir, state_dir).status()["rulesetId"] == "telco-demo"
    assert RuleService(rules_dir, catalog_dir, state_dir, ruleset_id="alpha").status()["rulesetId"] == "alpha"
    (rules_dir / "telco-demo.yaml").rename(rules_dir / "beta.yaml")
    (rules_dir / "beta.yaml").write_text(DEMO_TEXT.replace("id: telco-demo", "id: beta"))
    status = RuleService(rules_dir, catalog_dir, state_dir).status()
    assert status["rulesetId"] == "alpha" and "several rule sets" in status["note"]


def test_cases_files_are_not_rule_sets(tree):
    rules_dir, catalog_dir, state_dir = tree
    (rules_dir / "telco-demo.cases.yaml").write_text((DEMO_RULES / "telco-demo.cases.yaml").read_text())
    (rules_dir / "README.md").write_text("# docs\n")
    assert RuleService(rules_dir, catalog_dir, state_dir).status()["errors"] == []


def test_explain_through_the_service(service):
    report = service.explain(ctx(**E1))
    assert [i["offering"]["id"] for i in report["items"]] == ["6542", "6543", "7301"]
    assert report["ruleset"]["version"] == "1.0.0"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_workers_evaluate_safely(service):
    assert ids(service, **E1) == ["6542", "6543", "7301"]           # state exists before the fork
    results = []
    for _ in range(2):
        read, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:                                                  # child: like a gunicorn worker
            try:
                got = [ids(service, **E1) for _ in range(50)][-1]
                os.write(write_end, json.dumps(got).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read) as handle:
            results.append(json.loads(handle.read() or "null"))
        os.waitpid(pid, 0)
    assert results == [["6542", "6543", "7301"]] * 2
    assert ids(service, **E1) == ["6542", "6543", "7301"]


def test_hot_reload_under_concurrent_load_never_mixes_versions(tree):
    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **SWAPPED))
    working = rules_dir / "telco-demo.yaml"
    texts = {"1.0.0": DEMO_TEXT, "1.0.1": variant("1.0.1", **LIMIT2)}
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    premium = dict(E1, customer=customer("premium"))
    # every (version, hash) a request may see, with its full expected answer for both contexts
    expected = {}
    for version, text in [("0.9.0", None), ("1.0.0", texts["1.0.0"]), ("1.0.1", texts["1.0.1"])]:
        if text is not None:
            working.write_text(text)
        svc.reload()
        if version == "0.9.0":
            svc.activate("telco-demo", "0.9.0")
        r1, r2 = svc.recommend(ctx(**E1)), svc.recommend(ctx(**premium))
        expected[(r1.ruleset_version, r1.ruleset_hash)] = (answer(r1), answer(r2))
        svc.activate("telco-demo", None)
    assert len({v for v in expected.values()}) == 3                 # three distinct full answers

    errors, seen, stop = [], set(), threading.Event()

    def client():
        while not stop.is_set():
            try:
                svc.refresh()
                a = svc.recommend(ctx(**E1))
                b = svc.recommend(ctx(**premium))
                for r, slot in ((a, 0), (b, 1)):
                    key = (r.ruleset_version, r.ruleset_hash)
                    if key not in expected or expected[key][slot] != answer(r):
                        errors.append(("mixed", answer(r)))
                    seen.add(key)
            except Exception as exc:                                 # pragma: no cover - reported below
                errors.append(("error", repr(exc)))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 6
        step = 0
        while time.monotonic() < deadline:
            step += 1
            if step % 3 == 0:
                svc.activate("telco-demo", "0.9.0")
            elif step % 3 == 1:
                svc.activate("telco-demo", None)
            else:
                working.write_text(texts["1.0.1" if step % 2 else "1.0.0"])   # plain, non-atomic rewrite
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert len(seen) >= 2


def test_poll_builds_a_new_version_in_the_background(tree):
    """The request path calls poll(): it returns at once, the watcher thread
    loads the change, and meanwhile the old version answers."""
    rules_dir, catalog_dir, state_dir = tree
    svc = RuleService(rules_dir, catalog_dir, state_dir, check_interval=0.0)
    write(rules_dir / "versions" / "telco-demo@1.1.0.yaml", variant("1.1.0", **LIMIT2))
    answers = set()
    deadline = time.time() + 30
    while time.time() < deadline:
        svc.poll()
        result = svc.recommend(ctx(**E1))
        answers.add((result.ruleset_version, tuple(i.offering_id for i in result.items)))
        if result.ruleset_version == "1.1.0":
            break
        time.sleep(0.01)
    assert answers <= {("1.0.0", ("6542", "6543", "7301")), ("1.1.0", ("6542", "6543"))}
    assert ("1.1.0", ("6542", "6543")) in answers


def test_unchanged_files_are_not_parsed_again(tree, monkeypatch):
    import app.rules.service.source as module

    rules_dir, catalog_dir, state_dir = tree
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    parsed = []
    real = module.read_ruleset_file
    monkeypatch.setattr(module, "read_ruleset_file", lambda path, catalog: parsed.append(path.name) or
                        real(path, catalog))
    monkeypatch.setattr(module, "load_catalog", lambda folder: pytest.fail("the catalog did not change"))
    write(rules_dir / "versions" / "telco-demo@1.1.0.yaml", variant("1.1.0", **LIMIT2))
    svc.refresh()
    assert parsed == ["telco-demo@1.1.0.yaml"] and svc.status()["version"] == "1.1.0"


def test_retired_versions_count_against_the_recycle_budget(tree):
    rules_dir, catalog_dir, state_dir = tree
    svc = RuleService(rules_dir, catalog_dir, state_dir, retired_budget=10)
    rules_per_version = svc.status()["rules"]
    assert svc.retired_rules == 0 and not svc.recycle_wanted
    write(rules_dir / "versions" / "telco-demo@1.1.0.yaml", variant("1.1.0", **LIMIT2))
    svc.refresh()
    assert svc.retired_rules == rules_per_version and svc.recycle_wanted == (rules_per_version > 10)
    write(rules_dir / "versions" / "telco-demo@1.2.0.yaml", variant("1.2.0"))
    svc.refresh()
    assert svc.retired_rules == 2 * rules_per_version and svc.recycle_wanted


def test_versions_not_serving_keep_no_parse_and_are_read_again_when_activated(tree, monkeypatch):
    """A worker keeps the parsed rule set of the version that serves only (a kept
    version is ~3 MiB per 1,000 rules, and every activation adds one); the others
    are listed from what their check found and read again when activated."""
    import app.rules.service.source as module

    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **SWAPPED))
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    listed = svc.versions("telco-demo")
    svc.reload()
    svc.reload()                                     # two reloads later: 0.9.0's parse is released
    assert svc.versions("telco-demo") == listed and listed[0]["valid"] and listed[0]["hash"]
    parsed = []
    real = module.read_ruleset_file
    monkeypatch.setattr(module, "read_ruleset_file", lambda path, catalog: parsed.append(path.name) or
                        real(path, catalog))
    svc.refresh()
    assert parsed == []                              # nothing changed: nothing read
    assert svc.activate("telco-demo", "0.9.0")["version"] == "0.9.0"
    assert parsed == ["telco-demo@0.9.0.yaml"]       # read again once, to compile it
    assert ids(svc, **E1) == ["6543", "6542", "7301"]
    assert svc.status()["hash"] == listed[0]["hash"]


def test_a_released_version_changed_behind_the_services_back_is_refused(tree):
    """Read again, a released version must be what was checked (same hash)."""
    rules_dir, catalog_dir, state_dir = tree
    kept = rules_dir / "versions" / "telco-demo@0.9.0.yaml"
    write(kept, variant("0.9.0", **SWAPPED))
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    svc.reload()
    svc.reload()
    stat = kept.stat()
    kept.write_text(variant("0.9.0", **LIMIT2))
    os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    if kept.stat().st_size != stat.st_size:       # the stat signature would see it: nothing to check here
        pytest.skip("the edit changed the size")
    with pytest.raises(RuleSetError, match="changed since it was checked"):
        svc.engine_of("0.9.0")


def test_what_the_master_parsed_before_the_fork_is_used_only_while_the_files_match(tree, monkeypatch):
    """gunicorn's master parses and checks the files once (gunicorn.conf.py
    when_ready); a worker compiles what still matches its files and parses the rest."""
    import app.rules.service.source as module

    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **SWAPPED))
    module.prepare_before_fork(rules_dir, catalog_dir)
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **LIMIT2) + "\n")   # changed since
    parsed = []
    real = module.read_ruleset_file
    monkeypatch.setattr(module, "read_ruleset_file", lambda path, catalog: parsed.append(path.name) or
                        real(path, catalog))
    monkeypatch.setattr(module, "load_catalog", lambda folder: pytest.fail("the master's catalog matches"))
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    assert parsed == ["telco-demo@0.9.0.yaml"]                     # telco-demo.yaml came from the master
    assert svc.status()["version"] == "1.0.0" and ids(svc, **E1) == ["6542", "6543", "7301"]
    assert svc.activate("telco-demo", "0.9.0")["version"] == "0.9.0"
    assert ids(svc, **E1) == ["6542", "6543"]                      # the changed file, not the master's parse
    assert module._PREFORK_FILES == {} and module._PREFORK_CATALOG == []   # taken once, then the worker's own


def test_a_fresh_worker_parses_only_the_version_it_serves(tree, monkeypatch):
    """What checking found is recorded per file (stat, catalog hash) for the
    other processes of the host: a replacement worker reads back the summary of
    every kept version and parses only the one it compiles. A broken file is not
    recorded: it is checked again, and its errors listed."""
    import app.rules.service.source as module

    rules_dir, catalog_dir, state_dir = tree
    write(rules_dir / "versions" / "telco-demo@0.9.0.yaml", variant("0.9.0", **SWAPPED))
    write(rules_dir / "versions" / "telco-demo@0.8.0.yaml", variant("0.8.0", **LIMIT2))
    write(rules_dir / "versions" / "telco-demo@0.7.0.yaml", "id: telco-demo\nversion: \"0.7.0\"\nrules: 3\n")
    first = RuleService(rules_dir, catalog_dir, state_dir)
    parsed = []
    real = module.read_ruleset_file
    monkeypatch.setattr(module, "read_ruleset_file", lambda path, catalog: parsed.append(path.name) or
                        real(path, catalog))
    second = RuleService(rules_dir, catalog_dir, state_dir)
    assert sorted(parsed) == ["telco-demo.yaml", "telco-demo@0.7.0.yaml"]    # served, and the broken one
    assert second.versions("telco-demo") == first.versions("telco-demo")
    assert second.activate("telco-demo", "0.9.0")["version"] == "0.9.0"
    assert ids(second, **E1) == ["6543", "6542", "7301"]
    assert parsed[-1] == "telco-demo@0.9.0.yaml"                            # read (and hashed) to compile it


def test_a_version_seen_by_the_watcher_then_activated_is_parsed_once(tree, monkeypatch):
    """The usual deploy: the file is written, the watcher's reload parses it,
    then it is activated; the activation compiles that parse, not a second one."""
    import app.rules.service.source as module

    rules_dir, catalog_dir, state_dir = tree
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    svc.activate("telco-demo", "1.0.0")
    parsed = []
    real = module.read_ruleset_file
    monkeypatch.setattr(module, "read_ruleset_file", lambda path, catalog: parsed.append(path.name) or
                        real(path, catalog))
    write(rules_dir / "versions" / "telco-demo@1.1.0.yaml", variant("1.1.0", **LIMIT2))
    svc.refresh()                                    # the watcher's look: pinned, so 1.0.0 still serves
    assert svc.status()["version"] == "1.0.0"
    assert svc.activate("telco-demo", "1.1.0")["version"] == "1.1.0"
    assert parsed == ["telco-demo@1.1.0.yaml"] and ids(svc, **E1) == ["6542", "6543"]
