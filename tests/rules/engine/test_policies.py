"""The five policies of telco-demo.md apply to every rule set; explain shows each step."""
from __future__ import annotations

from app.rules import Catalog, Offering
from app.rules.model.common import parse_time
from rulehelpers import at, ctx, customer, products, rule


def ids(result):
    return [item.offering_id for item in result.items]


def test_policy1_owned_and_in_cart_are_never_recommended(build):
    engine = build([rule("A", {"channel": "21"}, ("6542", 1), ("7002", 2), ("6543", 3))])
    result = engine.recommend(ctx(channels=["21"], cart=["6542"], customer=customer("standard"),
                                  products=products("7002") + products("6543", status="terminated")))
    assert ids(result) == ["6543"]


def test_policy2_inactive_or_out_of_validity_offerings_are_dropped(build):
    engine = build([rule("A", {"channel": "21"}, ("7401", 1), ("7202", 2), ("7402", 3))])
    assert ids(engine.recommend(ctx(time="2026-10-01", channels=["21"]))) == ["7402"]          # 7202 not yet
    assert ids(engine.recommend(ctx(time="2026-11-01", channels=["21"]))) == ["7202", "7402"]  # start inclusive
    assert ids(engine.recommend(ctx(time="2027-01-01", channels=["21"]))) == ["7402"]          # end exclusive


def test_policy2_rules_outside_their_validity_or_deprecated_do_not_fire(build):
    window = {"startDateTime": "2026-11-15T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}
    engine = build([
        rule("W", {"channel": "21"}, ("6542", 1), validFor=window),
        rule("D", {"channel": "21"}, ("6543", 2), status="deprecated"),
        rule("X", {"channel": "21"}, ("7301", 3), status="disabled"),
        rule("E", {"channel": "21"}, ("7402", 4), status="experimental"),
    ])
    assert ids(engine.recommend(ctx(time="2026-11-14T23:59:59Z", channels=["21"]))) == ["7402"]
    assert ids(engine.recommend(ctx(time="2026-11-15", channels=["21"]))) == ["6542", "7402"]
    assert ids(engine.recommend(ctx(time="2027-01-01", channels=["21"]))) == ["7402"]


def test_policy3_one_item_per_offering_with_best_priority_and_every_rule(build):
    engine = build([
        rule("A", {"channel": "21"}, ("6542", 30), kind="cross-sell"),
        rule("B", {"channel": "21"}, ("6542", 10), ("6543", 20), kind="up-sell"),
        rule("C", {"channel": "22"}, ("6542", 1)),
    ])
    result = engine.recommend(ctx(channels=["21"]))
    assert ids(result) == ["6542", "6543"]
    first = result.items[0]
    assert first.rule_priority == 10 and first.rule_ids == ["B", "A"] and first.kinds == ["up-sell", "cross-sell"]
    assert first.priority == 1 and result.items[1].priority == 2


def test_policy4_sort_by_priority_then_rule_order_then_list_order_and_limit(build):
    engine = build([
        rule("A", {"channel": "21"}, ("7402", 5), ("7301", 5)),
        rule("B", {"channel": "21"}, ("6542", 5), ("6543", 1)),
        rule("C", {"channel": "21"}, ("7002", 5)),
    ], limit=3)
    result = engine.recommend(ctx(channels=["21"]))
    assert ids(result) == ["6543", "7402", "7301"]
    assert [item.priority for item in result.items] == [1, 2, 3]


def test_policy5_items_say_why_and_carry_the_offering_reference(build):
    engine = build([rule("R1", {"cart": "6547"}, ("6542", 20))], href_base="https://shop.example/",
                   version="2.3.4")
    result = engine.recommend(ctx(cart=["6547"]))
    item = result.items[0]
    assert item.offering == {"id": "6542", "name": "TMFone Case", "@referredType": "ProductOffering",
                             "href": "https://shop.example/tmf-api/productCatalogManagement/v4/productOffering/6542"}
    assert item.rule_ids == ["R1"] and item.kind == "cross-sell"
    assert (result.ruleset_id, result.ruleset_version) == ("test-set", "2.3.4") and len(result.ruleset_hash) == 16


def test_relative_href_by_default(build):
    result = build([rule("R1", {"cart": "6547"}, ("6542", 20))]).recommend(ctx(cart=["6547"]))
    assert result.items[0].offering["href"] == "/tmf-api/productCatalogManagement/v4/productOffering/6542"


def test_offering_validity_helpers():
    offering = Offering("1", "x", "Active", parse_time("2026-01-01T00:00:00Z"), None, (), {})
    assert not offering.valid_at(at("2025-12-31T23:59:59Z")) and offering.valid_at(at("2030-01-01"))
    assert Catalog().get("nope") is None


def test_explain_rules_conditions_policies_and_final_list(build):
    window = {"startDateTime": "2026-11-15T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}
    engine = build([
        rule("R1", {"cart": ["6547", "6550"]}, ("6542", 20), ("6543", 30)),
        rule("R2", {"cart": "6547", "segment": "premium"}, ("6550", 10)),
        rule("R3", {"owns": "7101"}, ("7202", 25), validFor=window),
        rule("R4", {"cart": "6547"}, ("6542", 40)),
        rule("R5", {"cart": "6547"}, ("7401", 1), ("7301", 50)),
        rule("R6", {"cart": "6547"}, ("7402", 60), status="deprecated"),
    ], limit=1)
    report = engine.explain(ctx(time="2026-10-01", cart=["6547", "6543"], customer=customer("standard"),
                                products=products("7101")))
    rules = {r["id"]: r for r in report["rules"]}
    assert rules["R1"]["fired"] and rules["R4"]["fired"] and rules["R5"]["fired"]
    assert not rules["R2"]["fired"]
    assert rules["R2"]["failed"] == ["segment is one of [premium]: segment is 'standard'"]
    assert rules["R3"]["reason"].startswith("outside its validFor [2026-11-15T00:00:00Z, 2027-01-01T00:00:00Z)")
    assert rules["R6"]["reason"] == "status deprecated: the rule does not fire"
    steps = {step["step"]: step for step in report["policies"]}
    assert [d["offering"] for d in steps["owned-or-in-cart"]["dropped"]] == ["6543"]
    assert steps["owned-or-in-cart"]["dropped"][0]["reason"] == "in-cart"
    assert [(d["offering"], d["reason"]) for d in steps["inactive-or-out-of-validity"]["dropped"]] == \
        [("7401", "not-active")]
    assert [(d["offering"], d["rule"], d["reason"]) for d in steps["one-per-offering"]["dropped"]] == \
        [("6542", "R4", "duplicate")]
    assert [(d["offering"], d["reason"]) for d in steps["limit"]["dropped"]] == [("7301", "over-limit")]
    assert [item["offering"]["id"] for item in report["items"]] == ["6542"]
    assert report["engine"]["consistent"] is True
    assert report["facts"]["owns"] == ["7101"] and report["facts"]["customer"] == "known"


def test_requests_rank_exactly_as_the_traced_policies_of_explain(tmp_path):
    """Requests rank only the best `limit` offerings (no trace); explain runs
    every step with its trace: the items must be the same, on generated rules
    that fire many proposals per request."""
    import random

    from app.rules.engine.engine import Engine
    from app.rules.model.catalog import load_catalog
    from app.rules.model.ruleset import load_ruleset
    from rulegen import context_of, dump, make_ruleset, random_context
    catalog_data, ruleset_data = make_ruleset(1000, 300, seed=17)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.yaml").write_text(dump(catalog_data))
    (tmp_path / "rules.yaml").write_text(dump(ruleset_data))
    catalog = load_catalog(tmp_path / "catalog")
    engine = Engine(load_ruleset(tmp_path / "rules.yaml", catalog), catalog)
    rng = random.Random(4)
    ranked = 0
    for _ in range(150):
        context = context_of(random_context(rng, 300))
        items = [item.as_dict() for item in engine.recommend(context).items]
        assert items == engine.explain(context)["items"]
        ranked += len(items)
    assert ranked > 150 * 3
