"""Regression cases of a rule set, written in YAML beside it (`rules/<id>.cases.yaml`).

    cases:
      - name: E1-anonymous-phone-in-app
        description: optional text
        context:
          customer: none                 # or {segment: premium, characteristics: {k: v}, id: C1}
          owns: ["7001", {offering: "7002", status: terminated}]
          cart: ["6547"]
          channel: "21"                  # or a list
          time: "2026-10-01T00:00:00Z"
          places: [{id: P1, name: Paris, role: installation}]
          categories: [phones]
          product_orders: [PO-1]
        expect: ["6542", "6543", "7301"] # exactly these items, in this order
        absent: ["7401"]                 # none of these may appear
        expect_rules: {"6542": [R1]}     # optional: the rules that explain an item

    A context may state the customer's history for the rule set's contact
    policies (times before context.time: `ago` in m, h, d or w); a query's
    party that is no customer (a guest id, a relatedParty of another role)
    is `customer: none` with `party: <its id>`, whose history it states:

          history:
            - {reaction: shown, offering: "6542", ago: 2d, channel: "21"}
            - {reaction: rejected, offering: "6543", ago: 10d}
            - {offered: "7301", ago: 3h}     # an item answered to the customer

    Read with the catalog (`flask rules test`, lint, the Studio), a history
    item naming an offering or channel the catalog does not have is an
    error with its line: the policies would never count it, so a case
    expecting an item to come back would pass for the wrong reason.

Used by pytest (tests/rules, one test per case) and by the `flask rules test` CLI.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.contact import FixedHistory, History, Offer, Reaction
from ..engine.engine import Engine
from ..engine.policies import Recommendation
from ..model.catalog import Catalog, load_catalog
from ..model.common import Checker, as_id, id_items, id_problem, parse_time, plain, retyped
from ..model.errors import RuleSetError
from ..model.facts import Context, normalise_value
from ..model.ruleset import load_ruleset
from ..model.yamlload import display_path, load_file, typed_text

REACTION_TYPES = ("shown", "clicked", "accepted", "rejected")
CASE_FIELDS = {"name", "description", "context", "expect", "absent", "expect_rules"}
CONTEXT_FIELDS = {"customer", "owns", "cart", "channel", "time", "places", "categories", "product_orders",
                  "history", "party"}


@dataclass
class Case:
    name: str
    context: Context
    expect: list[str] | None = None
    absent: list[str] = field(default_factory=list)
    expect_rules: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""
    file: str = ""
    line: int = 1


@dataclass
class CaseResult:
    case: Case
    passed: bool
    actual: list[str]
    messages: list[str]
    recommendation: Recommendation | None = None

    @property
    def fired(self) -> list[str]:
        return list(self.recommendation.fired_rules) if self.recommendation else []


def load_cases(path: Path, catalog: Catalog | None = None) -> list[Case]:
    """The cases of a file; RuleSetError lists every problem with its line.
    With `catalog`, the offerings and channels of each history are checked
    against it (errors: see the module's docstring)."""
    path = Path(path)
    name = display_path(path)
    doc = load_file(path)
    check = Checker(name)
    cases: list[Case] = []
    if not check.mapping(doc, (1, 1), "a cases file"):
        raise RuleSetError(f"{name} has errors", check.problems)
    check.unknown_keys(doc, {"ruleset", "cases"}, "a cases file")
    raw = doc.get("cases")
    if not isinstance(raw, list) or not raw:
        check.add(doc.at("cases") if "cases" in doc else doc.pos, "cases must be a non-empty list")
        raise RuleSetError(f"{name} has errors", check.problems)
    names = set()
    for index, item in enumerate(raw):
        where = raw.at(index)
        case = _read_case(item, where, check, catalog)
        if case is None:
            continue
        if case.name in names:
            check.add(where, f"duplicate case name {case.name!r}", code="cases")
            continue
        names.add(case.name)
        case.file, case.line = name, where[0]
        cases.append(case)
    if not check.ok:
        raise RuleSetError(f"{name} has errors", [p for p in check.problems if p.severity == "error"])
    return cases


def _ids(check: Checker, raw, where, what: str) -> list[str] | None:
    if raw is None:
        return []
    good, bad = id_items(raw, where)
    if bad:
        item, pos = bad[0]
        check.add(pos, id_problem(what, item))
        return None
    return [value for value, _pos in good]


def _read_case(item, where, check: Checker, catalog: Catalog | None = None) -> Case | None:
    if not check.mapping(item, where, "a case"):
        return None
    check.unknown_keys(item, CASE_FIELDS, "a case")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        check.add(where, "a case needs a name (text)")
        return None
    ctx_raw = item.get("context")
    if ctx_raw is None:
        ctx_raw = {}
    if not check.mapping(ctx_raw, item.at("context") if "context" in item else where, f"case {name}: context"):
        return None
    check.unknown_keys(ctx_raw, CONTEXT_FIELDS, f"case {name}: context")
    context = parse_context(ctx_raw, check, name, catalog)
    if context is None:
        return None
    expect = None
    if "expect" in item:
        expect = _ids(check, item["expect"] if item["expect"] is not None else [], item.at("expect"),
                      f"case {name}: expect")
        if expect is None:
            return None
    absent = _ids(check, item.get("absent"), item.at("absent"), f"case {name}: absent")
    if absent is None:
        return None
    if expect is None and not absent:
        check.add(where, f"case {name}: give `expect` (items in order) and/or `absent`")
        return None
    expect_rules: dict[str, list[str]] = {}
    if "expect_rules" in item:
        raw = item["expect_rules"]
        if not check.mapping(raw, item.at("expect_rules"), f"case {name}: expect_rules"):
            return None
        for key, value in raw.items():
            ids = _ids(check, value, raw.at(key), f"case {name}: expect_rules")
            if ids is None:
                return None
            expect_rules[str(key)] = ids
    description = item.get("description") if isinstance(item.get("description"), str) else ""
    return Case(name=name.strip(), context=context, expect=expect, absent=absent, expect_rules=expect_rules,
                description=description)


def parse_context(raw, check: Checker, name: str, catalog: Catalog | None = None) -> Context | None:
    what = f"case {name}"
    time_raw = raw.get("time")
    when = parse_time(time_raw) if time_raw is not None else None
    if when is None:
        check.add(raw.at("time") if "time" in raw else raw.pos,
                  f"{what}: context.time must be a date-time like 2026-10-01T00:00:00Z (cases must be repeatable)")
        return None
    customer = None
    cust_raw = raw.get("customer")
    if cust_raw not in (None, "none", "anonymous"):
        if not check.mapping(cust_raw, raw.at("customer"), f"{what}: customer"):
            return None
        check.unknown_keys(cust_raw, {"id", "segment", "characteristics", "name"}, f"{what}: customer")
        chars = []
        extra = cust_raw.get("characteristics") or {}
        if not check.mapping(extra, cust_raw.at("characteristics"), f"{what}: customer.characteristics"):
            return None
        values = [(cust_raw, "segment")] if "segment" in cust_raw else []
        for container, key in values + [(extra, key) for key in extra]:
            value = plain(container[key])
            source = typed_text(container, key)   # `country: NO` must not pass as false
            if source is not None and source != (value if isinstance(value, str) else normalise_value(value)):
                check.add(container.at(key), f"{what}: {key}: {retyped(source, container[key])}")
                return None
            chars.append({"name": str(key), "value": value})
        customer = {"id": str(cust_raw.get("id", "case-customer")), "name": str(cust_raw.get("name", name)),
                    "characteristic": chars, "@type": "Customer"}
    products = []
    owns = raw.get("owns") or []
    if not check.sequence(owns, raw.at("owns"), f"{what}: owns"):
        return None
    for index, entry in enumerate(owns):
        if isinstance(entry, dict):
            offering = as_id(entry.get("offering"))
            status = entry.get("status", "active")
        else:
            offering, status = as_id(entry), "active"
        if offering is None or not isinstance(status, str):
            check.add(owns.at(index), f"{what}: owns items are offering ids or {{offering, status}}")
            return None
        products.append({"id": f"P{index + 1}", "status": status, "productOffering": {"id": offering}})
    if products and customer is None:
        check.add(raw.at("owns"), f"{what}: an anonymous shopper owns nothing; give a customer")
        return None
    cart = _ids(check, raw.get("cart"), raw.at("cart"), f"{what}: cart")
    channels = _ids(check, raw.get("channel"), raw.at("channel"), f"{what}: channel")
    categories = _ids(check, raw.get("categories"), raw.at("categories"), f"{what}: categories")
    orders = _ids(check, raw.get("product_orders"), raw.at("product_orders"), f"{what}: product_orders")
    places = raw.get("places") or []
    if not check.sequence(places, raw.at("places"), f"{what}: places"):
        return None
    if any(v is None for v in (cart, channels, categories, orders)):
        return None
    party = as_id(raw.get("party"))
    if "party" in raw and (party is None or (customer is not None and party != customer["id"])):
        check.add(raw.at("party"), f"{what}: party is the id of a query's party that is no customer "
                                   "(text); a customer's is its `id`")
        return None
    history = None
    if "history" in raw:
        if customer is None and party is None:
            check.add(raw.at("history"), f"{what}: an anonymous shopper has no history; give a customer, "
                                         "or the id of the query's party as `party`")
            return None
        history = read_history(raw["history"], raw.at("history"), when, check, what, catalog)
        if history is None:
            return None
    return Context(time=when, channels=channels, cart=cart, customer=customer, products=products,
                   places=[plain(p) for p in places if isinstance(p, dict)], categories=categories,
                   product_orders=orders, party_id=customer["id"] if customer else party,
                   history=FixedHistory(history) if history is not None else None)


_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*\Z")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def read_history(raw, where, when, check: Checker, what: str, catalog: Catalog | None = None) -> History | None:
    """A case's `history:` list as a History dated back from `when`; with
    `catalog`, its offerings and channels checked against it."""
    if not check.sequence(raw, where, f"{what}: history"):
        return None
    history = History()
    for index, entry in enumerate(raw):
        at = raw.at(index)
        fix = ("history items are {reaction: shown|clicked|accepted|rejected, offering: <id>, ago: 2d"
               "[, channel: <id>]} or {offered: <id>, ago: 3h[, channel: <id>]}")
        if not isinstance(entry, dict):
            check.add(at, f"{what}: {fix}")
            return None
        check.unknown_keys(entry, {"reaction", "offering", "offered", "ago", "channel"}, f"{what}: history item")
        match = _AGO.match(str(entry.get("ago", "")))
        if match is None:
            check.add(entry.at("ago") if "ago" in entry else at,
                      f"{what}: history item needs `ago` like 30m, 3h, 2d or 1w (before context.time)")
            return None
        time = when - dt.timedelta(**{_UNIT[match.group(2)]: float(match.group(1))})
        channel = as_id(entry.get("channel"))
        if "offered" in entry:
            offering = as_id(entry["offered"])
            if offering is None:
                check.add(at, f"{what}: {fix}")
                return None
            _check_refs(entry, "offered", offering, channel, catalog, check, what)
            history.offers.append(Offer(offering, time, channel))
            continue
        kind, offering = entry.get("reaction"), as_id(entry.get("offering"))
        if kind not in REACTION_TYPES or offering is None:
            check.add(at, f"{what}: {fix}")
            return None
        _check_refs(entry, "offering", offering, channel, catalog, check, what)
        history.reactions.append(Reaction(kind, offering, time, channel))
    return history


def _check_refs(entry, key: str, offering: str, channel: str | None, catalog: Catalog | None,
                check: Checker, what: str) -> None:
    """The offering (under `key`) and channel of one history item, checked
    against the catalog: each unknown one is an error at its place (lint
    adds the fix), every one of the file reported at once."""
    if catalog is None:
        return
    if catalog.get(offering) is None:
        check.add(entry.at(key), f"{what}: unknown offering {offering!r} in history", code="unknown-offering")
    if channel is not None and catalog.channels and channel not in catalog.channels:
        check.add(entry.at("channel"), f"{what}: unknown channel {channel!r} in history", code="unknown-channel")


def run_case(engine: Engine, case: Case) -> CaseResult:
    recommendation = engine.recommend(case.context)
    actual = recommendation.offering_ids
    messages = []
    if case.expect is not None and actual != case.expect:
        messages.append(f"expected {case.expect}, got {actual}")
    present = [o for o in case.absent if o in actual]
    if present:
        messages.append(f"must not appear: {present}, got {actual}")
    by_offering = {item.offering_id: item.rule_ids for item in recommendation.items}
    for offering, rules in case.expect_rules.items():
        if by_offering.get(offering) != rules:
            got = by_offering.get(offering)
            messages.append(f"item {offering}: expected rules {rules}, "
                            + (f"got {got}" if got is not None else "but it is not in the answer"))
    return CaseResult(case, not messages, actual, messages, recommendation)


def engine_for(rule_file: Path, catalog_dir: Path, href_base: str = "") -> Engine:
    catalog = load_catalog(catalog_dir)
    return Engine(load_ruleset(rule_file, catalog), catalog, href_base)


def coverage(engine: Engine, results: list[CaseResult]) -> dict[str, int]:
    """How many cases fired each rule (0: the cases never exercise it)."""
    counts = {rule.id: 0 for rule in engine.ruleset.rules}
    for result in results:
        for rule_id in result.fired:
            counts[rule_id] = counts.get(rule_id, 0) + 1
    return counts
