"""A hand-edited TinyDB file: one document with a number a double would
alter (or NaN, or a key that is not its id) is held back, named and
skipped, one document at a time, by `flask store copy` and `flask store
check`, and the running service serves the collection's other documents.

Before: the TinyDB reader read `12345678901234567890.5` as a float, so the
copy into either store silently stored 12345678901234567000 and exited 0
("0 skipped"), while `store load` and the API refuse that number
(INEXACT_NUMBER); NaN and Infinity, which Python's json accepts and JSON
does not, were copied too (as floats no JSON text can carry); and one
document whose key was not its id made the whole collection unreadable:
the copy skipped all of it, the service answered none of it."""
from __future__ import annotations

import json
import os
from decimal import Decimal

from app.exactnumbers import comparable
from helpers import Client, ServiceProcess
from test_store_cli import customer, flask

#: number literals no double keeps exactly, as a hand-edited file holds
#: them: a decimal, an integer beyond 2**53 written with an exponent, an
#: overflow, and the constants Python's json reads but JSON has not
UNHELD = {"crm-2": "12345678901234567890.5", "crm-4": "12345678901234567891e0",
          "crm-5": "1e400", "crm-6": "NaN", "crm-7": "Infinity", "crm-8": "-Infinity"}
#: number literals a double keeps: copied as they are
HELD = {"crm-9": "-0", "crm-10": "1e23", "crm-11": "-0.0", "crm-12": "1.50"}


def _hand_edited_store(source) -> None:
    """customer.json with a number literal per document of UNHELD/HELD,
    crm-13 under the key crm-x, and a hub with 1e400 (another collection)."""
    from app.store import open_store

    with open_store(str(source)) as tiny:
        tiny.insert_many("customer", [
            customer(n, characteristic=[{"name": "iccid", "value": f"@@{n}@@"}])
            for n in range(1, 15)])
        tiny.insert("hubs", {"id": "h1", "api": "customerManagement", "callback": "http://x"})
        tiny.insert("hubs", {"id": "h2", "api": "customerManagement", "callback": "http://y",
                             "weight": "@@h2@@"})
    path = source / "customer.json"
    text = path.read_text()
    for doc_id, number in {**UNHELD, **HELD}.items():
        text = text.replace(f'"@@{doc_id[4:]}@@"', number)
    text = text.replace('"crm-13":{', '"crm-x":{')
    path.write_text(text)
    hubs = source / "hubs.json"
    hubs.write_text(hubs.read_text().replace('"@@h2@@"', "1e400"))


def test_copy_skips_each_document_with_a_number_a_double_would_alter(store_url, tmp_path):
    from app.store import open_store

    source = tmp_path / "tiny"
    _hand_edited_store(source)
    done = flask({"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", str(source))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    reported = {line.split(":")[0]: line for line in done.stderr.splitlines()
                if line.endswith("; skipped")}
    assert set(reported) == {f"customer/'{doc_id}'" for doc_id in UNHELD} | {
        "customer/'crm-x'", "hubs/'h2'"}, done.stderr
    assert "cannot be kept exactly" in reported["customer/'crm-2'"]
    assert "cannot be kept exactly" in reported["customer/'crm-4'"]
    assert "out of range" in reported["customer/'crm-5'"]
    assert "out of range" in reported["hubs/'h2'"]
    assert "NaN is not a JSON number" in reported["customer/'crm-6'"]
    assert "customer: 7 documents, 7 held back" in done.stdout
    assert "is not its key" in reported["customer/'crm-x'"]
    assert "copied 8 documents of 2 collections; 0 already present, 8 skipped" in done.stdout
    with open_store(store_url) as target:
        copied = {doc["id"]: doc["characteristic"][0]["value"] for doc in target.all("customer")}
        assert target.get("hubs", "h1") is not None and target.get("hubs", "h2") is None
    assert set(copied) == {"crm-1", "crm-3", "crm-9", "crm-10", "crm-11", "crm-12", "crm-14"}
    # the number each text says (1e23 is 10**23: PostgreSQL's numeric reads it so)
    assert comparable(copied["crm-9"]) == 0 and comparable(copied["crm-12"]) == Decimal("1.5")
    assert comparable(copied["crm-10"]) == Decimal("1e23")


def test_copy_skips_the_one_document_whose_key_is_not_its_id(store_url, tmp_path):
    from app.store import open_store

    source = tmp_path / "tiny"
    with open_store(str(source)) as tiny:
        tiny.insert_many("customer", [customer(n) for n in range(5)])
    path = source / "customer.json"
    path.write_text(path.read_text().replace('"crm-3":{', '"crm-33":{'))
    done = flask({"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", str(source))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "customer/'crm-33': its 'id' ('crm-3') is not its key ('crm-33'); skipped" \
        in done.stderr, done.stderr
    assert "collection skipped" not in done.stderr
    assert "copied 4 documents of 1 collections; 0 already present, 1 skipped" in done.stdout
    with open_store(store_url) as target:
        assert [doc["id"] for doc in target.all("customer")] == ["crm-0", "crm-1", "crm-2", "crm-4"]


def test_the_service_serves_the_others_and_keeps_the_held_back_documents_as_they_are(tmp_path):
    """TinyDB only (PostgreSQL's jsonb refuses such documents on write):
    the held-back documents are 404 and left out of lists, the others are
    served, and a write to the collection keeps the held-back ones in the
    file as they were read; `store check` names them and exits 1."""
    data = tmp_path / "data"
    _hand_edited_store(data)
    before = (data / "customer.json").read_text()
    held_texts = [before[before.index(f'"{key}":{{'):].split("}]", 1)[0]
                  for key in ("crm-2", "crm-6", "crm-x")]

    check = flask({"RECO_DATA_DIR": str(data), "RECO_STORE_URL": ""}, "check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "customer/'crm-2': number 12345678901234567890.5 cannot be kept exactly" in check.stderr
    assert "hubs/'h2'" in check.stderr and "8 documents are held back" in check.stdout

    service = ServiceProcess(data).start()
    try:
        api = Client(service.url)
        listed = api.get(f"{Client.CUSTOMER}/customer", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        assert sorted(doc["id"] for doc in listed.json()) == sorted(
            ["crm-1", "crm-3", "crm-9", "crm-10", "crm-11", "crm-12", "crm-14"])
        assert api.get(f"{Client.CUSTOMER}/customer/crm-1").status_code == 200
        for doc_id in ("crm-2", "crm-6", "crm-13", "crm-x"):
            assert api.get(f"{Client.CUSTOMER}/customer/{doc_id}").status_code == 404
        made = api.post(f"{Client.CUSTOMER}/customer", json={
            "name": "New", "engagedParty": {"id": "p-new", "@referredType": "Individual"}})
        assert made.status_code == 201, made.text
        changed = api.patch(f"{Client.CUSTOMER}/customer/crm-1", json={"name": "Renamed"},
                            headers={"Content-Type": "application/merge-patch+json"})
        assert changed.status_code == 200, changed.text
    finally:
        service.stop()
    after = (data / "customer.json").read_text()
    assert "Renamed" in after and made.json()["id"] in after
    for text in held_texts:
        assert text in after, text
    assert "12345678901234567890.5" in after and "NaN" in after
    assert json.loads(after)["customer"]["crm-x"]["id"] == "crm-13"
    assert os.path.getsize(data / "customer.json") > len(before)


def test_copy_from_postgresql_skips_each_document_with_a_decimal_a_double_would_alter(
        pg_url, store_url, tmp_path):
    """The other direction: jsonb keeps `12345678901234567890.5` exactly (an
    older version, or SQL by hand, stored it); read through Python's json it
    is 12345678901234567000, and `1e-400` is 0.0. The copy names and skips
    each such document, and copies integers of any size and exact decimals."""
    from app.store import open_store

    literals = {"p1": "12345678901234567890.5", "p2": "1e-400", "p3": "100000000000000000000001.0",
                "p4": "0.1", "p5": "1e23", "p6": "100000000000000000000001", "p7": "1.50",
                "p8": "1e400"}
    with open_store(pg_url) as source:
        source.insert("customer", customer(1))
        with source.connection() as conn:
            for doc_id, literal in literals.items():
                conn.execute("INSERT INTO documents (collection, id, doc) VALUES "
                             "('customer', %s, %s::jsonb)",
                             (doc_id, '{"id": "%s", "name": "n", "engagedParty": {"id": "x"}, '
                                      '"characteristic": [{"name": "v", "value": %s}]}'
                              % (doc_id, literal)))
    done = flask({"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", pg_url)
    assert done.returncode == 1, done.stdout + done.stderr
    reported = [line.split(":")[0] for line in done.stderr.splitlines()
                if line.endswith("; skipped")]
    assert reported == ["customer/'p1'", "customer/'p2'", "customer/'p3'"], done.stderr
    assert "number 12345678901234567890.5 cannot be kept exactly" in done.stderr
    assert "copied 6 documents of 1 collections; 0 already present, 3 skipped" in done.stdout
    with open_store(store_url) as target:
        copied = {doc["id"]: doc["characteristic"][0]["value"] for doc in target.all("customer")
                  if doc["id"] != "crm-1"}
    assert sorted(copied) == ["p4", "p5", "p6", "p7", "p8"]
    assert copied["p6"] == 100000000000000000000001 and copied["p8"] == 10 ** 400
    assert comparable(copied["p7"]) == Decimal("1.5") and comparable(copied["p4"]) == Decimal("0.1")
