"""`flask store load` and `flask store copy` on each backend (the operator's
bulk paths: a CRM export in JSON Lines, a TinyDB store moved to PostgreSQL)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import cliprocess
from helpers import ROOT, Client, ServiceProcess


def flask(env: dict, *args: str) -> subprocess.CompletedProcess:
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "store", *args],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)


def customer(n: int, **extra) -> dict:
    return {"id": f"crm-{n}", "name": f"Customer {n}",
            "engagedParty": {"id": f"party-{n}", "@referredType": "Individual"}, **extra}


def test_load_reports_bad_lines_by_number_and_loads_the_rest(store_url, tmp_path):
    env = {"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "data")}
    lines = [json.dumps(customer(1)), json.dumps(customer(2)), "{not json", "",
             json.dumps({"name": "no party"}), json.dumps(customer(3, status=7)),
             json.dumps(customer(1)), json.dumps(customer(4)), "[1]"]
    (tmp_path / "customers.jsonl").write_text("\n".join(lines) + "\n")
    done = flask(env, "load", "customer", str(tmp_path / "customers.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    where = f"{tmp_path / 'customers.jsonl'}:"
    errors = [line[len(where):] for line in done.stderr.splitlines() if line.startswith(where)]
    assert [line.split(":")[0] for line in errors] == ["3", "5", "6", "9", "7"]
    assert "not JSON" in errors[0] and "engagedParty" in errors[1] and "status" in errors[2]
    assert "already stored" in errors[4]
    assert "3 customer records loaded, 5 lines skipped" in done.stdout
    assert "Traceback" not in done.stderr

    products = tmp_path / "products.jsonl"
    products.write_text("\n".join(json.dumps({
        "status": "active", "name": f"Plan {n}", "productOffering": {"id": "7001"},
        "relatedParty": [{"id": "crm-2", "role": "customer", "@referredType": "Customer"}]})
        for n in range(3)) + "\n")
    loaded = flask(env, "load", "product", str(products))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "3 product records loaded, 0 lines skipped" in loaded.stdout

    service = ServiceProcess(tmp_path / "data", env={"RECO_STORE_URL": store_url}).start()
    try:
        api = Client(service.url)
        got = api.get(f"{Client.CUSTOMER}/customer/crm-2").json()
        assert got["name"] == "Customer 2" and got["href"].endswith("/customer/crm-2")
        owned = api.get(f"{Client.INVENTORY}/product", params={"relatedParty.id": "crm-2"})
        assert owned.headers["X-Total-Count"] == "3"
    finally:
        service.stop()


def test_copy_moves_a_tinydb_store_into_postgresql(pg_url, tmp_path):
    from app.store import open_store

    source = tmp_path / "tiny"
    with open_store(str(source)) as tiny:
        tiny.insert_many("customer", [customer(n) for n in range(2500)])
        tiny.insert("hubs", {"id": "h1", "api": "customerManagement", "callback": "http://x"})
    with open_store(pg_url) as pg:
        pg.insert("customer", customer(7, name="already there"))
    done = flask({"RECO_STORE_URL": pg_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied 2500 documents of 2 collections; 1 already present" in done.stdout
    with open_store(pg_url) as pg:
        assert pg.count("customer") == 2500 and pg.get("hubs", "h1")["callback"] == "http://x"
        assert pg.get("customer", "crm-7")["name"] == "already there"
        assert [d["id"] for d in pg.all("customer")][:3] == ["crm-7", "crm-0", "crm-1"]


def test_upgrade_and_check_on_an_empty_database_say_only_what_is_true(pg_cluster, tmp_path):
    """The command that creates the schema does not log that the service will
    not serve for want of one, and neither command shows alembic's plugin
    set-up lines."""
    name = f"empty_{os.getpid()}"
    pg_cluster.execute(f"CREATE DATABASE {name}")      # no schema (new_database has it)
    env = {"RECO_STORE_URL": pg_cluster.database_url(name), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_LOG_FORMAT": "console"}
    before = flask(env, "check")
    assert before.returncode == 1 and "flask store upgrade" in before.stderr
    # where it is true, a server's log still says it
    server = ServiceProcess(tmp_path / "data", env=env).start()
    server.stop()
    assert "not serving until the store is usable" in server.log_path.read_text()
    done = flask(env, "upgrade")
    after = flask(env, "check")
    assert done.returncode == 0 and after.returncode == 0, done.stderr + after.stderr
    for ran in (before, done, after):
        output = ran.stdout + ran.stderr
        assert "not serving" not in output, output
        assert "rule files have" not in output, output    # the store's fault, not theirs
        assert "setup plugin" not in output, output
    assert "schema upgraded" in done.stdout and "ready" in after.stdout


HREF_PATH = re.compile(r"/tmf-api/[A-Za-z0-9/._~:@-]+")   # RFC 3986 path, nothing to encode


def test_load_refuses_ids_outside_the_id_alphabet_and_every_href_is_a_url_path(store_url, tmp_path):
    """An id ends its href: `/`, a space, `%`, `?`, `#`, non-ASCII letters and
    dot segments are refused per line (app/ids.py), on both stores."""
    env = {"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "data")}
    bad = ["a/b", "a b", "..", "caf\u00e9", "50%25", "q?x", "#7", " crm-9"]
    good = ["crm-1", "urn:crm:7~x_y.z@eu"]
    lines = [json.dumps({**customer(0), "id": value}) for value in bad + good]
    (tmp_path / "customers.jsonl").write_text("\n".join(lines) + "\n")
    done = flask(env, "load", "customer", str(tmp_path / "customers.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    where = f"{tmp_path / 'customers.jsonl'}:"
    errors = [line[len(where):] for line in done.stderr.splitlines() if line.startswith(where)]
    assert [int(line.split(":")[0]) for line in errors] == list(range(1, len(bad) + 1)), errors
    assert all("id" in line for line in errors), errors
    assert f"{len(good)} customer records loaded, {len(bad)} lines skipped" in done.stdout

    products = tmp_path / "products.jsonl"
    products.write_text(json.dumps({"id": "plan/1", "status": "active", "name": "Plan",
                                    "productOffering": {"id": "7001"}}) + "\n")
    refused = flask(env, "load", "product", str(products))
    assert refused.returncode == 1 and f"{products}:1:" in refused.stderr

    service = ServiceProcess(tmp_path / "data", env={"RECO_STORE_URL": store_url}).start()
    try:
        api = Client(service.url)
        listed = api.get(f"{Client.CUSTOMER}/customer").json()
        assert sorted(c["id"] for c in listed) == sorted(good)
        for item in listed:
            assert HREF_PATH.fullmatch(item["href"]), item["href"]
            assert api.get(item["href"]).json()["id"] == item["id"]
        assert api.get(f"{Client.INVENTORY}/product").json() == []
    finally:
        service.stop()


def test_load_refuses_text_and_numbers_no_store_can_hold_on_both_stores(store_url, tmp_path):
    env = {"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "data")}
    lines = [json.dumps(customer(1, name="a\u0000b")),
             json.dumps(customer(2, characteristic=[{"name": "n", "value": "x\ud800"}])),
             json.dumps(customer(3, characteristic=[{"name": "n\u0000", "value": 1}])),
             json.dumps(customer(4)),
             json.dumps(customer(5, characteristic=[{"name": "n", "value": 1}])).replace(
                 '"value": 1', '"value": 12345678901234567890.5'),
             json.dumps(customer(6, characteristic=[{"name": "n", "value": 1}])).replace(
                 '"value": 1', '"value": NaN'),
             json.dumps(customer(7, characteristic=[{"name": "n", "value": 1}])).replace(
                 '"value": 1', '"value": ' + "7" * 5000)]
    (tmp_path / "customers.jsonl").write_text("\n".join(lines) + "\n")
    done = flask(env, "load", "customer", str(tmp_path / "customers.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    where = f"{tmp_path / 'customers.jsonl'}:"
    errors = [line[len(where):] for line in done.stderr.splitlines() if line.startswith(where)]
    assert [line.split(":")[0] for line in errors] == ["1", "2", "3", "5", "6", "7"], errors
    assert "name holds a NUL" in errors[0] and "characteristic[0].value holds an unpaired" in errors[1]
    assert "characteristic[0].name holds a NUL" in errors[2]
    assert "cannot be kept exactly" in errors[3] and "NaN is not a JSON number" in errors[4]
    # Python's own advice (a call to sys.set_int_max_str_digits) is not the operator's
    assert "more than 4300 digits" in errors[5] and "sys." not in errors[5], errors[5]
    assert "1 customer records loaded, 6 lines skipped" in done.stdout
    assert "Traceback" not in done.stderr


def test_copy_reports_and_skips_what_the_target_cannot_hold_and_copies_the_rest(store_url, tmp_path):
    """A TinyDB store may hold documents an older version accepted: a NUL
    (which PostgreSQL cannot hold), a lone surrogate, an id with a `/`. The
    copy names each, skips it, copies the others and gives the counts; the
    same on either target store."""
    from app.store import open_store

    source = tmp_path / "tiny"
    docs = [customer(n) for n in range(2500)]
    docs[3]["name"] = "nul\u0000here"
    docs[1200]["characteristic"] = [{"name": "n", "value": "lone\ud800"}]
    docs[2000]["id"] = "crm/2000"
    docs[2001]["id"] = "crm 2001"
    with open_store(str(source)) as tiny:
        tiny.insert_many("customer", docs)
        tiny.insert("hubs", {"id": "h1", "api": "customerManagement", "callback": "http://x"})
        tiny.insert("hubs", {"id": "h2", "api": "customerManagement", "callback": "http://\u0000"})
    with open_store(store_url) as target:
        target.insert("customer", customer(7, name="already there"))
    done = flask({"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", str(source))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    reported = [line for line in done.stderr.splitlines() if line.endswith("; skipped")]
    assert [line.split(":")[0] for line in reported] == [
        "customer/'crm-3'", "customer/'crm-1200'", "customer/'crm/2000'", "customer/'crm 2001'",
        "hubs/'h2'"], done.stderr
    assert "name holds a NUL" in reported[0] and "surrogate" in reported[1]
    assert "may hold only" in reported[2] and "callback holds a NUL" in reported[4]
    assert "copied 2496 documents of 2 collections; 1 already present, 5 skipped" in done.stdout
    with open_store(store_url) as target:
        assert target.count("customer") == 2496 and target.get("hubs", "h1") is not None
        assert target.get("customer", "crm-3") is None and target.get("hubs", "h2") is None
        assert target.get("customer", "crm-2499")["name"] == "Customer 2499"


def test_copy_stores_text_in_nfc_so_that_filters_find_it(store_url, tmp_path):
    """A TinyDB store written before text was normalised may hold NFD text
    (macOS input): the copy stores it in NFC, as the API does, so that what the
    service compares (stored in NFC) matches it."""
    import unicodedata

    from app.store import open_store

    source = tmp_path / "tiny"
    nfd = unicodedata.normalize("NFD", "Zoë Privé")
    with open_store(str(source)) as tiny:
        tiny.insert("customer", customer(1, name=nfd))
    done = flask({"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(store_url) as target:
        stored = target.get("customer", "crm-1")["name"]
    assert stored == unicodedata.normalize("NFC", "Zoë Privé") and stored != nfd
def test_copy_names_a_source_collection_it_cannot_read_and_exits_1(store_url, tmp_path):
    """A corrupt collection file in the source is not left out in silence:
    the copy names it, copies the rest, and exits 1 (on either target)."""
    from app.store import open_store

    source = tmp_path / "tiny"
    with open_store(str(source)) as tiny:
        tiny.insert_many("customer", [customer(n) for n in range(3)])
        tiny.insert("hubs", {"id": "h1", "api": "customerManagement", "callback": "http://x"})
    (source / "customer.json").write_text('{"customer": {"crm-0": ')
    done = flask({"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")},
                 "copy", str(source))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "customer: cannot be read" in done.stderr and "Traceback" not in done.stderr
    assert "copied 1 documents of 1 collections" in done.stdout
    with open_store(store_url) as target:
        assert target.get("hubs", "h1") is not None


def test_copy_from_a_source_that_is_not_there_is_refused(store_url, tmp_path):
    """A mistyped source directory, or a database that does not answer, is
    an error (exit 1, saying so), not "copied 0 documents"; the copy makes
    no directory at the mistyped path."""
    env = {"RECO_STORE_URL": store_url, "RECO_DATA_DIR": str(tmp_path / "d")}
    missing = tmp_path / "no-such-store"
    for source in (str(missing), f"tinydb://{missing}",
                   "postgresql://reco@127.0.0.1:1/nothing?connect_timeout=1"):
        done = flask(env, "copy", source)
        assert done.returncode == 1, source + done.stdout + done.stderr
        assert "cannot read the source" in done.stderr, done.stderr
        assert "copied 0 documents" not in done.stdout and "Traceback" not in done.stderr
    assert not missing.exists()
