"""Facts with one home: the cases report (CLI and admin API give the same
JSON), rule file names (app/rules/repository/layout.py), "Z" time stamps
(app/timeutil.py), the ProductOfferingRef (app/rules/model/catalog.py)."""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest

from app import create_app
from app.rules.model.catalog import offering_ref
from app.timeutil import isoformat, isoformat_as_given
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT

APP = ROOT / "app"
KEY = "one-home-admin"


def _sources():
    for path in sorted(APP.rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")


def _lines_matching(pattern: str, skip: set[str]) -> list[str]:
    found = []
    for path, text in _sources():
        if str(path.relative_to(APP)) in skip:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(pattern, line) and not line.lstrip().startswith("#"):
                found.append(f"{path.relative_to(APP)}:{number}: {line.strip()}")
    return found


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DEMO_RULES, tmp_path / "rules")
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    return tmp_path


def test_the_cli_and_the_admin_api_report_a_case_run_alike(project):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False, admin_keys=[KEY])
    run = app.test_cli_runner().invoke(args=["rules", "test", "rules/telco-demo.cases.yaml", "-k", "E1", "--json"])
    assert run.exit_code == 0, run.output
    cli = json.loads(run.output)["files"][0]
    api = app.test_client().post("/admin/rules/cases", json={"filter": "E1"},
                                 headers={"Authorization": f"Bearer {KEY}"}).get_json()
    assert cli == api
    assert set(cli) == {"cases", "ruleset", "results", "coverage", "coveragePercent", "passed", "failed"}
    # -k ignores case, as the Studio's filter (and pytest -k) do
    assert cli["results"] and all("e1" in r["name"].lower() for r in cli["results"])
    assert {"rule", "name", "line", "cases", "counted"} <= set(cli["coverage"][0])


def test_rule_file_names_are_spelled_only_by_the_layout():
    # <id>.yaml, <id>@<version>.yaml, <id>.cases.yaml, <id>.experiments.yaml
    found = _lines_matching(r"""f["'][^"']*\}(@\{[^}]*\})?\.((cases|experiments)\.)?ya?ml["']"""
                            r"""|["']\.(cases|experiments)\.ya?ml["']""",
                            {"rules/repository/layout.py"})
    assert not found, "use app/rules/repository/layout.py:\n" + "\n".join(found)


def test_z_times_are_formatted_only_by_timeutil():
    found = _lines_matching(r"""replace\(["']\+00:00["'],\s*["']Z["']\)|strftime\(["']%Y-%m-%dT""",
                            {"timeutil.py"})
    assert not found, "use app.timeutil.isoformat / isoformat_as_given:\n" + "\n".join(found)


def test_stamps_have_milliseconds_and_written_times_their_own_precision():
    moment = dt.datetime(2026, 3, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert isoformat(moment) == "2026-03-01T09:30:00.000Z"
    assert isoformat(moment.replace(microsecond=123999)) == "2026-03-01T09:30:00.123Z"   # truncated
    assert isoformat_as_given(moment) == "2026-03-01T09:30:00Z"
    assert isoformat_as_given(moment.replace(microsecond=5)) == "2026-03-01T09:30:00.000005Z"


def test_a_product_offering_reference_is_built_in_one_place():
    assert offering_ref("6547", "Gold", "https://reco.example.com/") == {
        "id": "6547", "href": "https://reco.example.com/tmf-api/productCatalogManagement/v4/productOffering/6547",
        "name": "Gold", "@referredType": "ProductOffering"}
    found = _lines_matching(r"""["']@referredType["']:\s*["']ProductOffering["']""", {"rules/model/catalog.py"})
    assert not found, found


def test_cases_kept_with_a_version_are_named_by_the_layout(tmp_path):
    from app.rules.authoring.keptcases import cases_for_version
    from app.rules.repository.layout import UnsafeName, kept_cases_path

    assert kept_cases_path(tmp_path, "shop", "1.0.0") == tmp_path / "versions" / "shop@1.0.0.cases.yaml"
    assert cases_for_version(tmp_path, "shop", "1.0.0") == tmp_path / "shop.cases.yaml"
    with pytest.raises(UnsafeName):
        kept_cases_path(tmp_path, "../shop", "1.0.0")
    assert isinstance(cases_for_version(tmp_path, "shop", None), Path)


def test_what_makes_an_extension_is_decided_in_one_place():
    from app.api import customer
    from app.resources.service import is_extension

    schema = customer.KIND.create_schema()
    for sent, extension in [({"@type": "Customer"}, False), ({"@type": "customer_create"}, False),
                            ({"@type": "ResidentialCustomer"}, True), ({"@schemaLocation": "https://x/s.json"}, True),
                            ({"@schemaLocation": ""}, False), ({}, False)]:
        assert is_extension(sent, customer.KIND) is extension, sent
        assert schema.is_extension(sent) is extension, sent
    found = _lines_matching(r"""\.get\(["']@schemaLocation["']\)""", {"schemas/spec.py", "store/base.py"})
    assert not found, found


def test_a_store_location_is_parsed_in_one_place(tmp_path):
    """open_store and the CLI's `flask store copy` check read store locations
    through app.store.tinydb_directory, which wraps the one parser
    (app/addresses.py, where the settings check RECO_STORE_URL too): two
    parsers drifted apart before."""
    from app.store import tinydb_directory

    assert tinydb_directory(f"tinydb://{tmp_path}") == str(tmp_path)
    assert tinydb_directory(f"tinydb:{tmp_path}") == str(tmp_path)
    assert tinydb_directory(" ~/x ").endswith("/x") and "~" not in tinydb_directory("~/x")
    assert tinydb_directory("postgresql://u@127.0.0.1:5432/db") is None
    found = [line for line in _lines_matching(r"""["']tinydb:|["']postgres(ql)?:""", set())
             if not line.startswith(("store/", "addresses.py:"))]   # the parser; the backends' own URLs
    assert not found, "use app.store.tinydb_directory:\n" + "\n".join(found)
    # nor is a scheme tested by its prefix anywhere but the parser (the store
    # factory did, and missed " postgresql://...": its pool settings were dropped)
    found = _lines_matching(r"""startswith\(\(?["'](tinydb|postgres)""", {"addresses.py"})
    assert not found, "use app.store.tinydb_directory:\n" + "\n".join(found)


def test_a_settings_default_is_written_only_in_the_settings():
    """RECO_MAX_RULE_FILE_BYTES's default was written in app/config.py and
    again in app/rules/model/source.py: changing one left the other."""
    from app.config import Settings
    from app.rules.model.source import DEFAULT_MAX_FILE_BYTES

    assert DEFAULT_MAX_FILE_BYTES == Settings.model_fields["max_rule_file_bytes"].default
    found = _lines_matching(r"""\b10 \* 1024 \* 1024\b""", {"config.py"})
    assert not found, "read the default from app.config.Settings:\n" + "\n".join(found)
