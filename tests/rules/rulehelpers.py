"""Helpers for the rules engine tests: context builders and rule file text."""
from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path


from app.rules.model.yamlload import dump_text

from app.rules import Context

from helpers import DEMO_CATALOG, DEMO_RULES, PRODUCT_CATALOG, PRODUCT_RULES, ROOT  # noqa: F401


def at(text: str) -> dt.datetime:
    """'2026-10-01' or a full ISO date-time -> aware UTC datetime."""
    if "T" not in text:
        text += "T00:00:00"
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def customer(segment: str | None = None, **characteristics) -> dict:
    chars = [{"name": "segment", "value": segment}] if segment else []
    chars += [{"name": k, "value": v} for k, v in characteristics.items()]
    return {"id": "C1", "characteristic": chars}


def products(*offerings: str, status: str = "active") -> list[dict]:
    return [{"id": f"P{i}", "status": status, "productOffering": {"id": o}} for i, o in enumerate(offerings)]


def ctx(time="2026-10-01", channels=(), cart=(), customer=None, products=(), places=(), categories=(),
        orders=()) -> Context:
    return Context(time=at(time) if isinstance(time, str) else time, channels=list(channels), cart=list(cart),
                   customer=customer, products=list(products), places=list(places),
                   categories=list(categories), product_orders=list(orders))


def ruleset_text(rules: list[dict], **header) -> str:
    doc = {"id": header.pop("id", "test-set"), "version": header.pop("version", "1.0.0"),
           "status": header.pop("status", "test"), "description": header.pop("description", "test rules"),
           "limit": header.pop("limit", 4), **header, "rules": rules}
    return dump_text(doc)


def rule(rid: str, when: dict, *recs, kind: str = "cross-sell", **extra) -> dict:
    return {"id": rid, "kind": kind, "description": f"rule {rid}", **extra, "when": when,
            "recommend": [{"offering": o, "priority": p} for o, p in recs]}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path
