"""A rule version means one thing forever, over HTTP against a real gunicorn
server, on both stores (the version records, the audit history and, on
PostgreSQL, the active pointer live in the store):

- other content under a recorded version (locked, or activated) is refused
  with the next free version; a kept copy or a working copy changed by hand
  under a recorded version is never activated nor served;
- a save names the working copy it started from (If-Match); a stale one is
  409 with the other person's change as a diff;
- every worker answers with an activated version on the very next request;
- roll back goes to the last different healthy version, never forward, and a
  re-sent activation does nothing;
- four eyes with RECO_RULES_REQUIRE_APPROVAL, and the audit trail in order."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import cliprocess
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, Client, assert_tmf_error

ANA, BEN = "key-of-ana-product-manager", "key-of-ben-reviewer"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
E1 = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
      "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
      "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
          {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
R6_OLD, R6_NEW = 'channel: "23"', 'channel: ["22", "23"]'
WC = "/admin/rules/telco-demo/working-copy"


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Admin:
    """An admin API client with one key."""

    def __init__(self, url: str, key: str):
        self.url, self.headers = url, {"Authorization": f"Bearer {key}"}

    def get(self, path, **kw):
        return requests.get(self.url + path, headers=self.headers, timeout=30, **kw)

    def post(self, path, body):
        return requests.post(self.url + path, json=body, headers=self.headers, timeout=60)

    def working(self) -> tuple[str, str]:
        got = self.get(WC)
        assert got.status_code == 200, got.text
        return got.json()["text"], got.headers["ETag"]

    def save(self, text: str, etag: str | None):
        headers = dict(self.headers)
        if etag is not None:
            headers["If-Match"] = etag
        return requests.put(self.url + WC, json={"text": text}, headers=headers, timeout=60)

    def activate(self, version):
        return self.post("/admin/rules/activate", {"rulesetId": "telco-demo", "version": version})


@pytest.fixture
def project(tmp_path):
    rules, catalog = tmp_path / "rules", tmp_path / "catalog"
    shutil.copytree(DEMO_RULES, rules)
    shutil.copytree(DEMO_CATALOG, catalog)
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    return tmp_path


def start(make_server, project, workers=1, **env):
    return make_server(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                       workers=workers, env={"RECO_ADMIN_KEYS": f"{ANA},{BEN}", **env})


def bump(text: str, version: str, old: str = R6_OLD, new: str = R6_NEW) -> str:
    assert 'version: "1.0.0"' in text and old in text
    return text.replace('version: "1.0.0"', f'version: "{version}"').replace(old, new)


def served(url: str) -> tuple[str, str]:
    response = requests.post(url + R, json=E1, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["X-Ruleset"], response.headers["X-Ruleset-Hash"]


# --------------------------------------------------------------------------- immutable versions
def test_a_recorded_version_is_never_saved_with_other_content(make_server, project):
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    v110 = bump(original, "1.1.0")
    saved = ana.save(v110, tag)
    assert saved.status_code == 200, saved.text
    activated = ana.activate("1.1.0")                      # never locked: activating records it first
    assert activated.status_code == 200, activated.text
    recorded_hash = activated.json()["activation"]["hash"]
    history = ana.get("/admin/rules/history?rulesetId=telco-demo").json()
    assert [h["action"] for h in history][:3] == ["activate", "record", "save"]
    assert history[1]["version"] == "1.1.0" and history[1]["hash"] == recorded_hash
    health = requests.get(service.url + "/health", timeout=10).json()["rules"]
    assert (health["version"], health["hash"]) == ("1.1.0", recorded_hash)
    assert served(service.url) == ("telco-demo@1.1.0", recorded_hash)

    # other content under the activated 1.1.0: refused, next free version offered, nothing written
    text, tag = ana.working()
    changed = text.replace('{offering: "6542", priority: 20}', '{offering: "6542", priority: 45}')
    assert changed != text
    refused = ana.save(changed, tag)
    body = assert_tmf_error(refused, 409)
    assert body["code"] == "VERSION_RECORDED" and body["details"]["nextVersion"] == "1.1.1"
    assert "telco-demo 1.1.0 is already recorded with other content" in body["message"]
    assert (project / "rules" / "telco-demo.yaml").read_text() == v110
    # the same under the next free version is fine
    assert ana.save(changed.replace('version: "1.1.0"', 'version: "1.1.1"'), tag).status_code == 200

    # the locked 1.0.0 (kept when the version changed) cannot take other content either
    text, tag = ana.working()
    refused = ana.save(bump(original, "1.0.0", '{offering: "6542", priority: 20}', '{offering: "6542", priority: 5}'),
                       tag)
    assert assert_tmf_error(refused, 409)["details"]["nextVersion"] == "1.0.1"
    kept = project / "rules" / "versions" / "telco-demo@1.0.0.yaml"
    assert "priority: 20}" in kept.read_text()


def test_a_file_changed_under_a_recorded_version_is_neither_activated_nor_served(make_server, project):
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200
    first = ana.activate("1.1.0").json()["activation"]["hash"]
    text, tag = ana.working()
    assert ana.save(text.replace('version: "1.1.0"', 'version: "1.2.0"'), tag).status_code == 200
    assert ana.activate("1.0.0").status_code == 200
    # the kept copy of 1.1.0 is edited by hand: other content under a recorded version
    kept = project / "rules" / "versions" / "telco-demo@1.1.0.yaml"
    kept.write_text(kept.read_text().replace('{offering: "6542", priority: 20}', '{offering: "6542", priority: 45}'))
    overview = ana.get("/admin/rules/overview").json()["rulesets"][0]["versions"]
    row = next(v for v in overview if v["version"] == "1.1.0")
    assert row["changed"] and row["recordedHash"] == first and row["hash"] != first
    refused = ana.activate("1.1.0")
    assert assert_tmf_error(refused, 409)["code"] == "ACTIVATION_REFUSED"
    assert "is not the content recorded for 1.1.0" in refused.json()["message"]
    assert served(service.url)[0] == "telco-demo@1.0.0"
    # the pinned version's own file changed by hand: the activated content keeps serving
    assert ana.activate("1.2.0").status_code == 200
    pinned_hash = requests.get(service.url + "/health", timeout=10).json()["rules"]["hash"]
    working = project / "rules" / "telco-demo.yaml"
    text = working.read_text()
    assert '{offering: "6543", priority: 30}' in text
    working.write_text(text.replace('{offering: "6543", priority: 30}', '{offering: "6543", priority: 31}'))
    health = ana.get("/health").json()["rules"]       # the errors: for an admin only
    assert (health["version"], health["hash"]) == ("1.2.0", pinned_hash)
    assert any("was activated with hash" in e for e in health["errors"]), health["errors"]
    assert served(service.url) == ("telco-demo@1.2.0", pinned_hash)


# --------------------------------------------------------------------------- lost updates
def test_a_stale_save_is_refused_with_the_other_change_as_a_diff(make_server, project):
    service = start(make_server, project)
    ana, ben = Admin(service.url, ANA), Admin(service.url, BEN)
    original, tag = ana.working()
    _same, ben_tag = ben.working()
    assert ben_tag == tag
    missing = ben.save(bump(original, "1.1.0"), None)
    assert assert_tmf_error(missing, 428)["code"] == "PRECONDITION_REQUIRED"
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200
    ben_text = bump(original, "1.1.0", '{offering: "6542", priority: 20}', '{offering: "6542", priority: 30}')
    stale = ben.save(ben_text, ben_tag)
    body = assert_tmf_error(stale, 409)
    assert body["code"] == "EDIT_CONFLICT" and f"key {fingerprint(ANA)}" in body["message"]
    diff = body["details"]["diff"]
    assert f"-        channel: \"23\"" in diff or '-      channel: "23"' in diff or any(
        line.startswith("-") and R6_OLD in line for line in diff.splitlines())
    assert any(line.startswith("+") and R6_NEW in line for line in diff.splitlines())
    assert (project / "rules" / "telco-demo.yaml").read_text() == bump(original, "1.1.0")   # never overwritten
    assert body["details"]["etag"] == ana.working()[1].strip('"')
    saves = [h for h in ana.get("/admin/rules/history").json() if h["action"] == "save"]
    assert [h["by"] for h in saves] == [f"key {fingerprint(ANA)}"]


# --------------------------------------------------------------------------- activation is true
def _cli(project, service, *args) -> subprocess.CompletedProcess:
    env = {**service.env, "NO_COLOR": "1"}
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_worker_answers_with_the_activated_version_on_the_next_request(make_server, project):
    """Before: `flask rules activate` returned while workers still served the
    old version (10 of 10 first requests after it on an idle server)."""
    service = start(make_server, project, workers=3)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0", '{offering: "6542", priority: 20}',
                         '{offering: "6542", priority: 45}'), tag).status_code == 200
    for _ in range(6):
        assert served(service.url)[0] == "telco-demo@1.0.0"        # every worker has served 1.0.0
    for version, how in (("1.1.0", "api"), ("1.0.0", "cli"), ("1.1.0", "cli"), ("1.0.0", "api")):
        if how == "api":
            assert ana.activate(version).status_code == 200
        else:
            done = _cli(project, service, "activate", "telco-demo", version)
            assert done.returncode == 0, done.stderr
            assert "Every worker of this host answers with it from its next request on" in done.stdout
        # right after: new connections, spread over the workers
        answers = [served(service.url)[0] for _ in range(9)]
        assert answers == [f"telco-demo@{version}"] * 9, (how, answers)


# --------------------------------------------------------------------------- roll back, re-sent forms
def test_rollback_goes_back_never_forward_and_never_to_a_broken_version(make_server, project):
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200
    assert ana.activate("1.1.0").json()["activation"]["fromVersion"] == "1.0.0"
    again = ana.activate("1.1.0")                                  # re-sent (Back button): nothing happens
    assert again.status_code == 200 and again.json()["activation"] is None
    assert ana.get("/admin/rules/overview").json()["rulesets"][0]["rollbackTo"] == "1.0.0"   # not itself
    back = ana.post("/admin/rules/rollback", {"rulesetId": "telco-demo"})
    assert back.json()["activation"]["version"] == "1.0.0"
    assert ana.get("/admin/rules/overview").json()["rulesets"][0]["rollbackTo"] is None      # not forward
    refused = ana.post("/admin/rules/rollback", {"rulesetId": "telco-demo"})
    assert assert_tmf_error(refused, 409)["code"] == "ROLLBACK_REFUSED"
    # 1.1.0 again, then a broken 1.0.0 kept copy: no roll back is offered toward it
    assert ana.activate("1.1.0").status_code == 200
    kept = project / "rules" / "versions" / "telco-demo@1.0.0.yaml"
    kept.write_text(kept.read_text() + "\nrules: [broken\n")
    assert ana.get("/admin/rules/overview").json()["rulesets"][0]["rollbackTo"] is None
    assert served(service.url)[0] == "telco-demo@1.1.0"


def test_after_going_back_on_the_command_line_roll_back_never_offers_the_way_forward(make_server, project):
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200
    assert ana.activate("1.1.0").status_code == 200
    back = _cli(project, service, "activate", "telco-demo", "1.0.0")       # back by hand
    assert back.returncode == 0, back.stderr
    overview = ana.get("/admin/rules/overview").json()["rulesets"][0]
    assert overview["rollbackTo"] is None and overview["activations"][0]["action"] == "rollback"
    assert ana.activate("1.1.0").status_code == 200
    rolled = _cli(project, service, "rollback", "telco-demo")
    assert rolled.returncode == 0, rolled.stderr
    assert "telco-demo 1.0.0 is active again (it was 1.1.0)." in rolled.stdout
    assert served(service.url)[0] == "telco-demo@1.0.0"
    again = _cli(project, service, "rollback", "telco-demo")
    assert again.returncode == 1 and "nothing to roll back" in again.stderr


# --------------------------------------------------------------------------- four eyes, audit trail
def test_audit_trail_two_authors_stale_save_approval_activation_rollback(make_server, project):
    service = start(make_server, project, RECO_RULES_REQUIRE_APPROVAL="1")
    ana, ben = Admin(service.url, ANA), Admin(service.url, BEN)
    original, tag = ana.working()
    _text, ben_tag = ben.working()
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200                    # author 1
    stale = ben.save(bump(original, "1.1.0", '{offering: "6542", priority: 20}',
                          '{offering: "6542", priority: 30}'), ben_tag)
    assert assert_tmf_error(stale, 409)["code"] == "EDIT_CONFLICT"                       # refused, not recorded
    text, tag = ben.working()
    assert ben.save(text.replace('{offering: "6542", priority: 20}', '{offering: "6542", priority: 30}'),
                    tag).status_code == 200                                              # author 2
    unapproved = ana.activate("1.1.0")
    assert assert_tmf_error(unapproved, 409)["code"] == "APPROVAL_REQUIRED"
    same_key = ben.post("/admin/rules/approve", {"rulesetId": "telco-demo", "version": "1.1.0"})
    assert assert_tmf_error(same_key, 409)["code"] == "SAME_KEY"                          # four eyes
    approved = ana.post("/admin/rules/approve", {"rulesetId": "telco-demo", "version": "1.1.0"})
    assert approved.status_code == 200, approved.text                                    # Ana did not save this content
    assert ana.activate("1.1.0").status_code == 200
    assert ana.post("/admin/rules/rollback", {"rulesetId": "telco-demo"}).status_code == 200
    history = ana.get("/admin/rules/history?rulesetId=telco-demo").json()[::-1]          # oldest first
    a, b = f"key {fingerprint(ANA)}", f"key {fingerprint(BEN)}"
    assert [(h["action"], h["version"], h["by"]) for h in history] == [
        ("pin-before-save", "1.0.0", a), ("save", "1.1.0", a), ("save", "1.1.0", b), ("approve", "1.1.0", a),
        ("record", "1.1.0", a), ("activate", "1.1.0", a), ("rollback", "1.0.0", a)]
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)
    assert history[3]["hash"] == history[2]["hash"] == history[4]["hash"]     # approved what was activated
    done = _cli(project, service, "history", "telco-demo")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["WHEN", "(UTC)", "WHO", "WHAT"]
    assert [line.split()[3] for line in lines[2:]] == [
        "rollback", "activate", "record", "approve", "save", "save", "pin-before-save"]


# --------------------------------------------------------------------------- cases belong to a version
def test_a_case_fixed_for_a_new_version_does_not_change_the_verdict_on_the_old(make_server, project):
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    saved = ana.save(bump(original, "1.1.0"), tag)                # R6 now also sells fiber on the web
    assert "kept its cases as" in " ".join(saved.json()["done"])
    cases = project / "rules" / "telco-demo.cases.yaml"
    text = cases.read_text()
    old_case = ('    context: {customer: {segment: standard}, owns: ["7101"], channel: "22", '
                'time: "2026-10-01T00:00:00Z"}\n    expect: []\n')
    assert old_case in text
    cases.write_text(text.replace(old_case, old_case.replace("expect: []", 'expect: ["7102"]')))   # fixed for 1.1.0

    def verdict(version):
        result = ana.post("/admin/rules/cases", {"rulesetId": "telco-demo", "version": version})
        assert result.status_code == 200, result.text
        body = result.json()
        return body["cases"].rsplit("/", 1)[-1], body["passed"], body["failed"]

    assert verdict("1.1.0") == ("telco-demo.cases.yaml", 23, 0)
    assert verdict("1.0.0") == ("telco-demo@1.0.0.cases.yaml", 23, 0)   # judged by its own cases
    assert ana.activate("1.1.0").status_code == 200                    # the working version's cases kept with it
    kept = project / "rules" / "versions" / "telco-demo@1.1.0.cases.yaml"
    assert 'expect: ["7102"]' in kept.read_text()
    assert kept.read_text().startswith("# yaml-language-server: $schema=../../app/rules/schemas/")


# --------------------------------------------------------------------------- attacks on the governance
def studio_session(url: str, name: str, key: str) -> requests.Session:
    """A Studio login (form and CSRF token, as a browser sends them) over HTTP."""
    session = requests.Session()
    page = session.get(url + "/studio/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = session.post(url + "/studio/login", data={"csrf_token": token, "name": name, "key": key},
                        allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text
    meta = session.get(url + "/studio", timeout=30).text
    session.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', meta).group(1)
    return session


def test_four_eyes_a_login_name_cannot_claim_another_key(make_server, project):
    """Before: the key of an approval was the first "key <fingerprint>" in
    `by`, and a Studio login name is free text: the author, logged in with
    her own key as "Ben (key <Ben's fingerprint>)", approved her own version."""
    service = start(make_server, project, RECO_RULES_REQUIRE_APPROVAL="1")
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200
    posing = studio_session(service.url, f"Ben (key {fingerprint(BEN)})", ANA)
    refused = posing.post(service.url + "/admin/rules/approve", json={"rulesetId": "telco-demo", "version": "1.1.0"},
                          timeout=30)
    assert assert_tmf_error(refused, 409)["code"] == "SAME_KEY"
    assert assert_tmf_error(ana.activate("1.1.0"), 409)["code"] == "APPROVAL_REQUIRED"
    # nor can a name hide the author's key when saving: Ana saving as "Ben (key ...)" is still Ana
    text, tag = ana.working()
    saved = posing.put(service.url + WC, json={"text": text.replace('{offering: "6542", priority: 20}',
                                                                    '{offering: "6542", priority: 30}')},
                       headers={"If-Match": tag}, timeout=30)
    assert saved.status_code == 200, saved.text
    assert assert_tmf_error(ana.post("/admin/rules/approve", {"rulesetId": "telco-demo", "version": "1.1.0"}),
                            409)["code"] == "SAME_KEY"
    assert ben_approves(service.url).status_code == 200
    assert [h["action"] for h in ana.get("/admin/rules/history?rulesetId=telco-demo").json()][:2] == ["approve", "save"]


def ben_approves(url: str):
    return Admin(url, BEN).post("/admin/rules/approve", {"rulesetId": "telco-demo", "version": "1.1.0"})


def test_saves_sent_at_once_from_one_base_never_both_succeed(make_server, project):
    """Before: the check that a save starts from the current working copy and
    its write were two steps; saves sent at the same moment from the same
    ETag all passed the check and the last one written won (a lost update)."""
    service = start(make_server, project, workers=2)
    original, tag = Admin(service.url, ANA).working()
    texts = [bump(original, "1.1.0", '{offering: "6542", priority: 20}', f'{{offering: "6542", priority: {p}}}')
             for p in (31, 32, 33, 34, 35, 36)]
    keys = [ANA, BEN] * 3
    barrier = threading.Barrier(len(texts))

    def save(i):
        barrier.wait()
        return Admin(service.url, keys[i]).save(texts[i], tag)

    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(save, range(len(texts))))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 5, [(a.status_code, a.text[:200]) for a in answers]
    assert all(a.json()["code"] == "EDIT_CONFLICT" for a in answers if a.status_code == 409)
    winner = texts[next(i for i, a in enumerate(answers) if a.status_code == 200)]
    assert (project / "rules" / "telco-demo.yaml").read_text() == winner
    saves = [h for h in Admin(service.url, ANA).get("/admin/rules/history").json() if h["action"] == "save"]
    assert len(saves) == 1


def test_if_match_forms(make_server, project):
    """If-Match as clients send it: quoted or not, weak (the tag is the
    text's hash, so W/ names the same text), a list holding the current tag
    (RFC 9110 13.1.1: any one matches); `*` names no working copy (428),
    a stale or unknown tag is 409; nothing is written by a refused one."""
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    bare = tag.strip('"')
    star = ana.save(bump(original, "1.1.0"), "*")
    assert assert_tmf_error(star, 428)["code"] == "PRECONDITION_REQUIRED"
    assert "names no working copy" in star.json()["message"]
    assert (project / "rules" / "telco-demo.yaml").read_text() == original
    listed = ana.save(bump(original, "1.1.0"), f'"0123456789abcdef0123456789abcdef", {tag}')
    assert listed.status_code == 200, listed.text
    text, tag = ana.working()
    weak = ana.save(text.replace('version: "1.1.0"', 'version: "1.2.0"'), f"W/{tag}")
    assert weak.status_code == 200, weak.text
    stale = ana.save(text, f'"{bare}", "0123456789abcdef0123456789abcdef"')      # neither is current
    body = assert_tmf_error(stale, 409)
    assert body["code"] == "EDIT_CONFLICT" and "was changed since you opened it" in body["message"]
    assert 'version: "1.2.0"' in (project / "rules" / "telco-demo.yaml").read_text()


def test_keep_and_lock_refuse_other_content_under_an_activated_version(make_server, project):
    """Before: `flask rules keep` and `flask rules lock` (and the Studio's
    lock) looked only at the lock file, not at what was activated: a working
    copy edited by hand under the activated 1.1.0 was kept as
    rules/versions/telco-demo@1.1.0.yaml (written once: the right content
    could never be kept again) and its hash written to the lock file."""
    service = start(make_server, project)
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0"), tag).status_code == 200
    recorded = ana.activate("1.1.0").json()["activation"]["hash"]
    working = project / "rules" / "telco-demo.yaml"
    good = working.read_text()
    working.write_text(good.replace('{offering: "6542", priority: 20}', '{offering: "6542", priority: 45}'))
    kept = project / "rules" / "versions" / "telco-demo@1.1.0.yaml"
    lock_file = project / "rules" / "telco-demo.lock.json"
    lock_before = lock_file.read_text() if lock_file.exists() else None
    done = _cli(project, service, "keep", "telco-demo")
    assert done.returncode == 1 and "telco-demo 1.1.0 is already recorded with other content" in done.stderr, done
    assert "save it as 1.1.1" in done.stderr and not kept.exists()
    done = _cli(project, service, "lock", "telco-demo")
    assert done.returncode == 1, done
    refused = ana.post("/admin/rules/lock", {"rulesetId": "telco-demo"})
    assert refused.status_code == 200 and refused.json()["refused"] == ["1.1.0"], refused.text
    assert (lock_file.read_text() if lock_file.exists() else None) == lock_before
    # the content that was activated is kept and locked as it is
    working.write_text(good)
    assert _cli(project, service, "keep", "telco-demo").returncode == 0
    assert _cli(project, service, "lock", "telco-demo").returncode == 0
    assert json.loads(lock_file.read_text())["versions"]["1.1.0"] == recorded
    assert kept.read_text().split("version:")[1] == good.split("version:")[1]
