"""A full rules folder during the steps that write into it besides their
main change, on both stores (the pointer and the history are in the store):

- an activation of the working copy's version keeps its cases
  (rules/versions/<id>@<version>.cases.yaml). Before: the version was
  pinned, served and recorded in the history first, then the cases' write
  failed, and the answer was 507 "nothing was saved or changed" although
  the activation had happened (and the version's cases were never kept);
- a save that changes the version keeps the old working copy and its
  cases. Before: with room for the kept copy but not for the cases, the
  save was 507 and the kept copy stayed behind.

A full disk refuses the whole step: 507 INSUFFICIENT_STORAGE, nothing
served, pinned, recorded or written; with room again the same request
succeeds."""
from __future__ import annotations

import shutil

from helpers import DEMO_RULES, Client, assert_tmf_error, if_match
from test_full_disk_rules import AUTH, KEY, bumped, snapshot
from test_storage_faults import fill, small_disk  # noqa: F401 - the fixture


def _rules_on(disk):
    for item in DEMO_RULES.iterdir():
        if item.is_file():
            shutil.copy(item, disk / item.name)
    return disk


def test_an_activation_that_cannot_keep_its_cases_changes_nothing(small_disk, make_server, tmp_path):  # noqa: F811
    rules = _rules_on(small_disk)
    server = make_server(rules_dir=rules, data_dir=tmp_path / "state", env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is False
    fill(small_disk)
    before = snapshot(rules)
    answer = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"}, headers=AUTH)
    assert assert_tmf_error(answer, 507)["code"] == "INSUFFICIENT_STORAGE"
    assert snapshot(rules) == before                              # no kept cases, no temp file
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is False
    assert api.get("/admin/rules/history", headers=AUTH).json() == []

    (small_disk / "filler").unlink()
    answer = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["activation"]["version"] == "1.0.0"
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is True
    assert (rules / "versions" / "telco-demo@1.0.0.cases.yaml").is_file()
    assert [h["action"] for h in api.get("/admin/rules/history", headers=AUTH).json()] == ["activate"]


def test_a_save_with_room_for_the_kept_copy_but_not_its_cases_leaves_nothing(small_disk, make_server,  # noqa: F811
                                                                              tmp_path):
    rules = _rules_on(small_disk)
    server = make_server(rules_dir=rules, data_dir=tmp_path / "state", env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    text = bumped(rules)
    headers = if_match(api, AUTH)
    fill(small_disk)
    # room for the kept copy of the working copy (and its folder), not for its cases
    room = (rules / "telco-demo.yaml").stat().st_size + 4096
    with open(small_disk / "filler", "r+b") as filler:
        filler.truncate(filler.seek(0, 2) - room)
    assert (rules / "telco-demo.cases.yaml").stat().st_size > room - (rules / "telco-demo.yaml").stat().st_size
    before = snapshot(rules)
    answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", json={"text": text}, headers=headers)
    assert assert_tmf_error(answer, 507)["code"] == "INSUFFICIENT_STORAGE"
    assert snapshot(rules) == before                              # no kept copy left behind
    assert api.get("/admin/rules/history", headers=AUTH).json() == []

    (small_disk / "filler").unlink()
    answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", json={"text": text}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert (rules / "versions" / "telco-demo@1.0.0.yaml").is_file()
    assert (rules / "versions" / "telco-demo@1.0.0.cases.yaml").is_file()
