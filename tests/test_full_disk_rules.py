"""A full disk under the rules folder or the data directory (a small tmpfs,
filled; tests/store/test_storage_faults.py): every file the product writes is
replaced atomically (app/atomicfile.py), so a failed save, keep, lock or
activation leaves nothing behind (no cut kept copy, no temp file, the same
working copy, pointer and history), the API and the Studio answer 507
INSUFFICIENT_STORAGE, and `flask rules` prints one clear line, no
traceback. When space comes back the same request succeeds."""
from __future__ import annotations

import os
import shutil
import sys

import pytest
import requests

import cliprocess
from helpers import DEMO_CATALOG, DEMO_RULES, PATIENCE, ROOT, Client, assert_tmf_error, wait_until, if_match
from test_storage_faults import fill, small_disk  # noqa: F401 - the fixture

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
FILES = "files of the rules folder and data directory; PostgreSQL's member is the last test"


def snapshot(folder) -> dict:
    """name -> bytes of every file under `folder` except the test's filler
    and the TinyDB store's empty lock files (made when a collection is first
    opened, the activation history's among them: they hold no data)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "filler"
            and not (p.suffix == ".lock" and p.parent.name == "data" and p.stat().st_size == 0)}


def bumped(rules) -> str:
    return (rules / "telco-demo.yaml").read_text().replace('version: "1.0.0"', 'version: "1.0.1"', 1) \
        .replace('channel: "23"', 'channel: ["22", "23"]')


def flask(*args, data_dir, rules_dir):
    environ = {**os.environ, "RECO_DATA_DIR": str(data_dir), "RECO_RULES_DIR": str(rules_dir),
               "RECO_CATALOG_DIR": str(DEMO_CATALOG), "NO_COLOR": "1"}
    return cliprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "wsgi.py"), "rules", *args],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)


@pytest.mark.backends("tinydb", reason=FILES)
def test_a_save_on_a_full_disk_is_507_and_leaves_nothing_behind(small_disk, make_server):  # noqa: F811
    rules = small_disk
    for item in DEMO_RULES.iterdir():
        shutil.copy(item, rules / item.name)
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    text = bumped(rules)
    fill(small_disk)
    before = snapshot(rules)
    answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", json={"text": text}, headers=if_match(api, AUTH))
    error = assert_tmf_error(answer, 507)
    assert error["code"] == "INSUFFICIENT_STORAGE" and "No space left" in error["message"]
    assert str(rules) not in answer.text                    # no path of the host in the answer
    assert snapshot(rules) == before                        # no cut kept copy, no temp file
    status = api.get("/admin/rules", headers=AUTH).json()
    assert status["version"] == "1.0.0" and not status["errors"], status
    assert status["pinned"] is False                        # the save's pin is taken back with it
    assert api.get("/admin/rules/activations", headers=AUTH).json() == []

    (small_disk / "filler").unlink()
    answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", json={"text": text}, headers=if_match(api, AUTH))
    assert answer.status_code == 200, answer.text
    assert (rules / "versions" / "telco-demo@1.0.0.yaml").read_text().endswith(before["telco-demo.yaml"]
                                                                              .decode().split("\n", 1)[1])
    assert (rules / "telco-demo.yaml").read_text() == text


@pytest.mark.backends("tinydb", reason=FILES)
def test_an_activation_on_a_full_data_directory_is_507_and_changes_nothing(small_disk, make_server):  # noqa: F811
    server = make_server(data_dir=small_disk, env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    fill(small_disk)
    before = snapshot(small_disk)
    answer = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"}, headers=AUTH)
    assert assert_tmf_error(answer, 507)["code"] == "INSUFFICIENT_STORAGE"
    assert snapshot(small_disk) == before
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is False
    assert api.get("/admin/rules/activations", headers=AUTH).json() == []
    # the Studio's form: the same refusal as a page
    browser = requests.Session()
    page = browser.get(server.url + "/studio/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    (small_disk / "filler").unlink()
    assert browser.post(server.url + "/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY},
                        allow_redirects=False).status_code == 302
    page = browser.get(server.url + "/studio/").text
    token = page.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]     # the logged-in one
    fill(small_disk)
    form = browser.post(server.url + "/studio/activate", allow_redirects=False,
                        data={"rulesetId": "telco-demo", "version": "1.0.0", "csrf_token": token})
    assert form.status_code == 507 and "No space left" in form.text and "Traceback" not in form.text

    (small_disk / "filler").unlink()
    done = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"}, headers=AUTH)
    assert done.status_code == 200, done.text
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is True


@pytest.mark.backends("tinydb", reason=FILES)
def test_the_cli_says_the_disk_is_full_and_changes_nothing(small_disk, backend):  # noqa: F811
    """`flask rules keep`, `lock` (rules folder full) and `activate` (data
    directory full): one line, exit code 1, nothing changed."""
    rules = small_disk / "rules"
    data = small_disk / "data"
    shutil.copytree(DEMO_RULES, rules)
    working = rules / "telco-demo.yaml"
    working.write_text(working.read_text().replace('version: "1.0.0"', 'version: "1.1.0"', 1))
    assert flask("versions", data_dir=data, rules_dir=rules).returncode == 0     # the data directory exists
    fill(small_disk)
    before = snapshot(small_disk)
    for args in (("keep", "telco-demo"), ("lock",), ("activate", "telco-demo", "1.1.0")):
        done = flask(*args, data_dir=data, rules_dir=rules)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "No space left on device" in done.stderr, (args, done.stderr)
        assert "Nothing was changed" in done.stderr
        assert snapshot(small_disk) == before, args
    (small_disk / "filler").unlink()
    assert flask("keep", "telco-demo", data_dir=data, rules_dir=rules).returncode == 0
    assert (rules / "versions" / "telco-demo@1.1.0.yaml").read_text().endswith("\n")


@pytest.mark.backends("postgresql", reason="the pointer is in the database there; TinyDB's members are above")
def test_an_activation_on_a_full_database_is_503_and_changes_nothing(make_server, full_disk):
    server = make_server(env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    full_disk.fill(server, "rulesetActivation")
    answer = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"}, headers=AUTH)
    assert assert_tmf_error(answer, 503)["code"] == "STORE_UNAVAILABLE"
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is False
    assert api.get("/admin/rules/activations", headers=AUTH).json() == []
    full_disk.free()
    assert api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"},
                    headers=AUTH).status_code == 200


@pytest.mark.backends("tinydb", reason="the embedded decision log's JSON Lines files; PostgreSQL's table is "
                                       "tests/decisions/test_decision_log_faults.py")
def test_a_decision_batch_cut_by_a_full_disk_is_taken_back_and_every_answer_is_kept(small_disk,  # noqa: F811
                                                                                     make_server):
    """The decision log appends a batch per write: a full disk cut one short
    (a few records' bytes fitted in the file's last page). The cut bytes must
    not stay: the batch's retry, once there is room, glued its first record
    to them, and that answer's href was a 404 for ever."""
    from test_decision_log import R, instant_query, metric

    server = make_server(data_dir=small_disk, env={"RECO_WORKERS": "1", "RECO_DECISION_FLUSH_SECONDS": "0.5"})
    api = Client(server.url)
    hrefs = [api.post(R, json=instant_query()).json()["href"] for _ in range(3)]
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total") >= 3, PATIENCE)
    fill(small_disk)
    for _ in range(40):                              # more than the last page's room, in one batch or more
        answer = api.post(R, json=instant_query())
        assert answer.status_code == 200, answer.text
        hrefs.append(answer.json()["href"])
    assert wait_until(lambda: metric(api, "reco_decision_log_flush_failures_total") >= 1, PATIENCE)
    for day in (small_disk / "decisions").glob("*.jsonl"):     # nothing of a failed batch stays
        assert day.read_bytes().endswith(b"\n")
    (small_disk / "filler").unlink()
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total") >= len(hrefs), PATIENCE), \
        (metric(api, "reco_decisions_recorded_total"), metric(api, "reco_decision_log_pending"))
    missing = [href for href in hrefs if api.get(href).status_code != 200]
    assert missing == []
    lines = b"".join(day.read_bytes() for day in sorted((small_disk / "decisions").glob("*.jsonl"))).splitlines()
    assert len(lines) == len(hrefs) == len({line for line in lines})


@pytest.mark.backends("tinydb", reason="the session secret is a file of the data directory on both stores; "
                                       "TinyDB's data directory is the one tmpfs here")
def test_a_data_directory_full_at_first_start_stops_only_the_studio(small_disk, make_server):  # noqa: F811
    """The Studio's session secret is made once in the data directory: with
    no room for it, every `flask` command (even a read-only lint) and every
    worker's start was a traceback. Now the CLI runs, the API serves, the
    Studio answers 507 until there is room, then works."""
    fill(small_disk)
    done = flask("lint", data_dir=small_disk / "cli", rules_dir=DEMO_RULES)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert not (small_disk / "cli" / "studio-session-secret").exists()

    server = make_server(data_dir=small_disk, workers=2, env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    assert api.get("/admin/rules", headers=AUTH).status_code == 200          # keys in headers need no session
    browser = requests.Session()
    page = browser.get(server.url + "/studio/login")
    assert page.status_code == 507 and "No space left" in page.text and "Traceback" not in page.text
    assert str(small_disk) not in page.text

    (small_disk / "filler").unlink()
    page = browser.get(server.url + "/studio/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert browser.post(server.url + "/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY},
                        allow_redirects=False).status_code == 302
    for _ in range(4):                                      # every worker accepts the one secret made
        assert browser.get(server.url + "/studio/", allow_redirects=False).status_code == 200


@pytest.mark.backends("tinydb", reason=FILES)
def test_a_failed_save_takes_back_the_pin_it_made(small_disk, make_server, tmp_path):  # noqa: F811
    """A save pins the version in service first (so a higher saved version
    does not serve at once). When the write of the working copy then failed
    (the rules folder full), the pin stayed: a later valid higher version
    no longer served, although nothing was saved."""
    rules = small_disk
    for item in DEMO_RULES.iterdir():
        if item.is_file():
            shutil.copy(item, rules / item.name)
    text = (rules / "telco-demo.yaml").read_text()
    (rules / "versions").mkdir(exist_ok=True)
    (rules / "versions" / "telco-demo@1.0.0.yaml").write_text(text)
    fixed = text.replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    (rules / "telco-demo.yaml").write_text(fixed.replace('offering: "7301"', 'offering: "NO-SUCH-OFFERING"', 1))
    server = make_server(rules_dir=rules, data_dir=tmp_path / "state", env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    status = api.get("/admin/rules", headers=AUTH).json()
    assert status["version"] == "1.0.0" and status["pinned"] is False, status      # 1.1.0 is broken
    fill(small_disk)
    answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", json={"text": fixed}, headers=if_match(api, AUTH))
    assert assert_tmf_error(answer, 507)["code"] == "INSUFFICIENT_STORAGE"
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is False
    assert api.get("/admin/rules/activations", headers=AUTH).json() == []

    (small_disk / "filler").unlink()
    answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", json={"text": fixed}, headers=if_match(api, AUTH))
    assert answer.status_code == 200, answer.text
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is True
    assert [a["action"] for a in api.get("/admin/rules/activations", headers=AUTH).json()] == ["pin-before-save"]
