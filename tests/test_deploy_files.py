"""deploy/: the Grafana dashboard is valid JSON that Grafana can import, the
alert rules are valid Prometheus rule YAML, and every metric either one
queries is in a real scrape of GET /metrics (a renamed metric would leave
an empty panel or an alert that never fires)."""
from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.observability import metrics
from helpers import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "tmf-recommender.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}
METRIC_RE = re.compile(r"\b([a-z_][a-z0-9_]*)\s*(?=\{|\[|\)|$|\s*[<>=!])")
FUNCTIONS = {"sum", "rate", "increase", "max", "min", "count", "topk", "absent", "histogram_quantile",
             "by", "on", "and", "or", "unless"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, set[str]]:
    """{series name: label names} from GET /metrics of the service."""
    app = create_app(data_dir=tmp_path_factory.mktemp("deploy") / "data", background_workers=False)
    client = app.test_client()
    client.get("/tmf-api/customerManagement/v4/customer/nobody")
    client.post("/tmf-api/customerManagement/v4/customer", json={
        "name": "deploy", "engagedParty": {"id": "p1", "@referredType": "Individual"}})
    # a rule fires (reco_rule_fired_total is made at scrape time: no labels before a sample)
    assert client.post("/tmf-api/recommendationManagement/v4/queryProductRecommendation", json={
        "instantSyncRecommendation": True, "channel": [{"id": "21"}],
        "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
            {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}).get_json()["recommendationItem"]
    text = client.get("/metrics").text
    names: dict[str, set[str]] = {}
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    for family in text_string_to_metric_families(text):
        for suffix in suffixes.get(family.type, [""]):
            names[family.name + suffix] = set()
    for line in text.splitlines():
        match = re.match(r"([a-z_][a-z0-9_]*)\{(.*)\}", line)
        if match and match.group(1) in names:
            names[match.group(1)] |= set(re.findall(r'(\w+)="', match.group(2)))
    # series without a sample yet (no error so far, say): the labels they are declared with
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for name in names:
                if name.startswith(metric._name) and not names[name]:
                    names[name] = set(metric._labelnames)
    return names


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)                         # label values
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    return {name for name in re.findall(r"\b[a-z_][a-z0-9_:]*\b", expr)
            if name not in FUNCTIONS and not name.startswith("__")}


def test_dashboard_is_importable_json():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource"}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_alert_rules_are_prometheus_rules():
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules) >= 10
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_every_metric_used_is_exported(exported):
    used = set()
    for expr in dashboard_exprs() + [rule["expr"] for rule in alert_rules()]:
        used |= metrics_in(expr)
    missing = used - set(exported) - PROMETHEUS_OWN - {"le", "s", "m", "h", "__rate_interval"}
    assert not missing, f"not in GET /metrics: {sorted(missing)}"
    # a sanity check on the parser: the dashboard covers HTTP, rules, events, jobs and the store
    for name in ("reco_http_requests_total", "reco_recommendations_total", "reco_rule_fired_total",
                 "reco_ruleset_info", "reco_event_outbox_pending", "reco_recommendation_jobs_pending",
                 "reco_store_operation_duration_seconds_bucket", "reco_event_circuits_open"):
        assert name in used, name


def test_labels_grouped_by_exist(exported):
    """`sum by (api)` over a metric without an `api` label draws one flat line."""
    for expr in dashboard_exprs() + [rule["expr"] for rule in alert_rules()]:
        for group, inner in re.findall(r"\bby\s*\(([^)]*)\)\s*\(([^()]*\([^()]*\)[^()]*|[^()]*)\)", expr):
            labels = {label.strip() for label in group.split(",")} - {"le"}
            names = metrics_in(inner) & set(exported)
            for name in names:
                known = exported[name] | ({"instance", "job"})
                assert labels <= known, f"{expr}: {name} has no label {labels - known}"
