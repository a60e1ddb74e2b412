"""X-Ruleset-Hash and the catalog hash fingerprint what the files say, as the
lock file does, not their bytes: a kept copy whose editor-schema comment line
points one directory further up, a re-indent or a comment edit in the catalog
change neither (a version is its rules, not its layout). A changed value still does."""
from __future__ import annotations

import json
import shutil

from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES

R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
QUERY = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
         "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
             {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
MODELINE = "# yaml-language-server: $schema=../app/rules/schemas/ruleset.schema.json"


def _answer(tmp_path, name, rules_dir, catalog_dir):
    app = create_app(data_dir=tmp_path / name, rules_dir=rules_dir, catalog_dir=catalog_dir,
                     background_workers=False)
    client = app.test_client()
    response = client.post(R, json=QUERY)
    assert response.status_code == 200, response.get_json()
    return response.headers["X-Ruleset-Hash"], client.get("/admin/rules").get_json()


def _demo_copy(tmp_path):
    rules_dir, catalog_dir = tmp_path / "rules", tmp_path / "catalog"
    (rules_dir / "versions").mkdir(parents=True)
    shutil.copytree(DEMO_CATALOG, catalog_dir)
    return rules_dir, catalog_dir


def test_kept_copy_comment_and_layout_do_not_change_the_hashes(tmp_path):
    shipped_hash, shipped = _answer(tmp_path, "shipped", DEMO_RULES, DEMO_CATALOG)
    lock = json.loads((DEMO_RULES / "telco-demo.lock.json").read_text())
    assert shipped_hash == lock["versions"]["1.0.0"]

    rules_dir, catalog_dir = _demo_copy(tmp_path)
    text = (DEMO_RULES / "telco-demo.yaml").read_text()
    assert MODELINE in text
    kept = text.replace(MODELINE, MODELINE.replace("=../", "=../../")).replace(
        "limit: 4", "limit:   4   # at most four items")
    (rules_dir / "versions" / "telco-demo@1.0.0.yaml").write_text(kept)
    offerings = catalog_dir / "offerings.yaml"
    offerings.write_text("# edited by product management\n" + offerings.read_text())

    kept_hash, kept_status = _answer(tmp_path, "kept", rules_dir, catalog_dir)
    assert kept_status["file"].endswith("versions/telco-demo@1.0.0.yaml")
    assert kept_hash == shipped_hash
    assert kept_status["catalog"]["hash"] == shipped["catalog"]["hash"]


def test_a_changed_value_changes_the_hashes(tmp_path):
    shipped_hash, shipped = _answer(tmp_path, "shipped", DEMO_RULES, DEMO_CATALOG)
    rules_dir, catalog_dir = _demo_copy(tmp_path)
    text = (DEMO_RULES / "telco-demo.yaml").read_text()
    (rules_dir / "telco-demo.yaml").write_text(text.replace("limit: 4", "limit: 3"))
    offerings = catalog_dir / "offerings.yaml"
    catalog_text = offerings.read_text()
    assert "    name: TMFone Case\n" in catalog_text
    offerings.write_text(catalog_text.replace("    name: TMFone Case\n", "    name: TMFone Cover\n"))
    changed_hash, changed = _answer(tmp_path, "changed", rules_dir, catalog_dir)
    assert changed_hash != shipped_hash
    assert changed["catalog"]["hash"] != shipped["catalog"]["hash"]
