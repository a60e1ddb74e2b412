"""An activation on a data directory with room for its first write only
(a small tmpfs filled, then one page freed: what a background writer's
failed write leaves behind on a full disk, as a busy host has). The
activation writes the pointer file, then its history entry in the store:
the pointer fitted, the history did not, and the answer was 503 "nothing
was written" while the version was pinned with no history entry (the full
suite at load 30 met it: the first write was not the one the disk
refused). Now the pin is taken back (without needing room: a rename of the
previous pointer kept as a hard link, or an unlink), the answer is 507
INSUFFICIENT_STORAGE whichever write was refused, and nothing changed."""
from __future__ import annotations

import os

import pytest

from helpers import Client, assert_tmf_error
from test_full_disk_rules import AUTH, FILES, KEY, snapshot
from test_storage_faults import fill, small_disk  # noqa: F401 - the fixture

PAGE = 4096


def fill_but_one_page(disk) -> None:
    """Fill `disk`, then give one page back: room for one small file."""
    fill(disk)
    filler = disk / "filler"
    os.truncate(filler, filler.stat().st_size - PAGE)


def activate(api, version="1.0.0"):
    return api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": version}, headers=AUTH)


@pytest.mark.backends("tinydb", reason=FILES)
@pytest.mark.parametrize("pinned_before", [False, True], ids=["first-activation", "pointer-existed"])
def test_an_activation_whose_history_write_is_refused_takes_back_its_pin(small_disk, make_server,  # noqa: F811
                                                                          pinned_before):
    server = make_server(data_dir=small_disk, env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    if pinned_before:
        assert activate(api).status_code == 200
        assert activate(api, None).status_code == 200          # unpinned again: the pointer file stays
    history = api.get("/admin/rules/history", headers=AUTH).json()
    fill_but_one_page(small_disk)
    before = snapshot(small_disk)
    answer = activate(api)
    error = assert_tmf_error(answer, 507)
    assert error["code"] == "INSUFFICIENT_STORAGE", error
    assert snapshot(small_disk) == before
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is False
    assert api.get("/admin/rules/history", headers=AUTH).json() == history

    (small_disk / "filler").unlink()
    assert activate(api).status_code == 200
    assert api.get("/admin/rules", headers=AUTH).json()["pinned"] is True


@pytest.mark.backends("tinydb", reason=FILES)
def test_an_approval_on_a_full_data_directory_is_507_and_records_nothing(small_disk, make_server):  # noqa: F811
    """An approval writes one history entry, in the store: a full disk
    refused it with 503 STORE_UNAVAILABLE where every other rules change
    says 507 INSUFFICIENT_STORAGE."""
    server = make_server(data_dir=small_disk, env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    history = api.get("/admin/rules/history", headers=AUTH).json()
    fill(small_disk)
    before = snapshot(small_disk)
    answer = api.post("/admin/rules/approve", json={"rulesetId": "telco-demo", "version": "1.0.0"}, headers=AUTH)
    assert assert_tmf_error(answer, 507)["code"] == "INSUFFICIENT_STORAGE"
    assert snapshot(small_disk) == before
    assert api.get("/admin/rules/history", headers=AUTH).json() == history
    (small_disk / "filler").unlink()
    assert api.post("/admin/rules/approve", json={"rulesetId": "telco-demo", "version": "1.0.0"},
                    headers=AUTH).status_code == 200



@pytest.mark.backends("tinydb", reason=FILES)
@pytest.mark.parametrize("refused_write", ["put_text", "append"])
def test_a_save_whose_store_writes_are_refused_leaves_nothing_behind(tmp_path, monkeypatch, refused_write):
    """The rules folder has room, the store (the saved texts, the history)
    refuses a write for a full disk: the save had kept the old version's
    copy and pinned the version in service, then the store refused the text
    (or the history entry, after the working copy was written), and all of it
    stayed behind a 507 that said nothing was saved. The refusal is made at
    the store's write (which disk write a full tmpfs refuses first depends on
    the pages a background writer gives back)."""
    import errno
    import shutil

    from app import create_app
    from app.rules.repository.store_ledger import StoreLedger
    from app.store.base import StoreUnavailable
    from helpers import DEMO_CATALOG, DEMO_RULES, if_match
    from test_full_disk_rules import bumped

    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    app = create_app(data_dir=tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                     background_workers=False, admin_keys=[KEY])
    api = app.test_client()
    text = bumped(rules)
    history = api.get("/admin/rules/history", headers=AUTH).get_json()
    before = snapshot(rules)
    headers = if_match(api, AUTH)

    def full(*_args, **_kwargs):
        raise StoreUnavailable("disk full") from OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(StoreLedger, refused_write, full)
    answer = api.put("/admin/rules/telco-demo/working-copy", json={"text": text}, headers=headers)
    assert answer.status_code == 507 and answer.get_json()["code"] == "INSUFFICIENT_STORAGE", answer.get_json()
    monkeypatch.undo()
    assert snapshot(rules) == before                       # no kept copy, the same working copy
    assert api.get("/admin/rules", headers=AUTH).get_json()["pinned"] is False
    assert api.get("/admin/rules/history", headers=AUTH).get_json() == history

    answer = api.put("/admin/rules/telco-demo/working-copy", json={"text": text}, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert (rules / "telco-demo.yaml").read_text() == text
