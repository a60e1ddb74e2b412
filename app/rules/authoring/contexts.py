"""Contexts written by people: the `context` of a regression case, as JSON or
YAML, for `flask rules explain CONTEXT.json`, `flask rules diff --contexts
FILE.jsonl` and `POST /admin/rules/explain`.

    {"customer": {"segment": "premium"}, "owns": ["7002"], "cart": ["6547"],
     "channel": "22", "time": "2026-10-01T00:00:00Z"}

A whole case (`{"name": ..., "context": {...}}`) is accepted too, so a case
can be explained as it is. `context_to_case()` goes the other way: any
Context (e.g. one built from a TMF680 query) as a case context, ready to be
pasted into a cases file or appended to a JSONL file of recorded contexts;
`explain_as_case()` explains a Context and gives it in the case format with
the history its contact policies read, so that the case reproduces what
they suppressed.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

from .cases import CONTEXT_FIELDS, REACTION_TYPES, parse_context
from ..engine.contact import History
from ..model.common import Checker, iso
from ..model.errors import Problem, RuleSetError
from ..model.facts import Context, characteristics
from ..model.yamlload import PosDict, PosList, load_text, read_text_file

# Keys that only a TMF680 QueryProductRecommendation has (the case format has
# `places`, `categories`, `product_orders`, `owns`, `cart`, `customer`, `time`).
TMF680_KEYS = {"relatedParty", "shoppingCart", "validFor", "instantSyncRecommendation", "productOrder",
               "place", "category", "recommendationType", "@type", "@baseType", "@schemaLocation",
               "recommendationItem", "state", "name", "description", "href", "id"}
CASE_KEYS = set(CONTEXT_FIELDS) - {"channel"}


def is_tmf680_query(data) -> bool:
    """Does this JSON object look like a TMF680 query rather than a case context?"""
    if not isinstance(data, dict):
        return False
    keys = set(data)
    if "context" in keys or keys & CASE_KEYS:
        return False
    channel = data.get("channel")
    return bool(keys & TMF680_KEYS) or (isinstance(channel, list) and any(isinstance(c, dict) for c in channel))


def _positioned(value, line_offset: int = 0):
    """Plain JSON values as PosDict/PosList (positions unknown: line 1)."""
    if isinstance(value, dict):
        out = PosDict({k: _positioned(v, line_offset) for k, v in value.items()})
        out.pos = (1 + line_offset, 1)
        return out
    if isinstance(value, list):
        out = PosList([_positioned(v, line_offset) for v in value])
        out.pos = (1 + line_offset, 1)
        out.item_pos = [(1 + line_offset, 1)] * len(value)
        return out
    return value


def parse_document(text: str, file: str):
    """JSON or YAML text -> PosDict/PosList (with positions when the YAML reader can read it)."""
    try:
        return load_text(text, file)
    except RuleSetError as yaml_error:
        try:
            return _positioned(json.loads(text))
        except ValueError as exc:
            if text.lstrip().startswith(("{", "[")):
                raise RuleSetError(f"cannot read {file}", [Problem(
                    file, getattr(exc, "lineno", 1), getattr(exc, "colno", 1), f"invalid JSON: {exc.msg}")]) from None
            raise yaml_error from None


def with_time(raw: PosDict, when: dt.datetime) -> PosDict:
    copy = PosDict(raw)
    copy.pos, copy.key_pos, copy.value_pos = raw.pos, dict(raw.key_pos), dict(raw.value_pos)
    copy["time"] = iso(when)
    return copy


def read_context(raw, file: str, default_time: dt.datetime | None = None) -> tuple[str | None, Context]:
    """(name, Context) from a case context, or from a case ({name, context}).
    `default_time` is used when the context has no `time`."""
    if not isinstance(raw, dict):
        raise RuleSetError(f"{file} has errors", [Problem(file, 1, 1, "a context must be a JSON object like "
                                                          '{"cart": ["6547"], "channel": "21", '
                                                          '"time": "2026-10-01T00:00:00Z"}')])
    name = None
    if "context" in raw:
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        raw = raw["context"]
        if not isinstance(raw, dict):
            raise RuleSetError(f"{file} has errors", [Problem(file, 1, 1, "`context` must be an object")])
    if not isinstance(raw, PosDict):
        raw = _positioned(raw)
    if "time" not in raw and default_time is not None:
        raw = with_time(raw, default_time)
    check = Checker(file)
    check.unknown_keys(raw, CONTEXT_FIELDS, "a context")
    context = parse_context(raw, check, name or "context")
    errors = [p for p in check.problems if p.severity == "error"]
    if context is None or errors:
        raise RuleSetError(f"{file} has errors", errors)
    return name, context


def load_context_file(path: Path, default_time: dt.datetime | None = None):
    """The JSON (or YAML) object in a file: (raw document, name, Context), or
    (raw document, None, None) when it is a TMF680 query (the caller resolves it)."""
    name, text = read_text_file(path)
    doc = parse_document(text, name)
    if is_tmf680_query(doc):
        return doc, None, None
    case_name, context = read_context(doc, name, default_time)
    return doc, case_name, context


def load_contexts_jsonl(path: Path, default_time: dt.datetime | None = None) -> list[tuple[str, Context]]:
    """One context (or case) per line; blank lines and lines starting with # are skipped."""
    name, text = read_text_file(path)
    lines = text.splitlines()
    out, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            problems.append(Problem(name, number, getattr(exc, "colno", 1), f"invalid JSON: {exc.msg}"))
            continue
        try:
            case_name, context = read_context(_positioned(data, number - 1), name, default_time)
        except RuleSetError as exc:
            problems.extend(exc.problems)
            continue
        out.append((case_name or f"{path.name}:{number}", context))
    if problems:
        raise RuleSetError(f"{name} has errors", problems)
    return out


class ReadRecorder:
    """A Context's history source that keeps what the contact policies
    read through it (`read`'s History, every read merged), for the case
    format. Anything else is the source's own (whatever else it offers)."""

    def __init__(self, source):
        self.source = source
        self.history: History | None = None

    def read(self, *args, **kwargs):
        found = self.source.read(*args, **kwargs)
        if self.history is None:
            self.history = History()
        self.history.reactions += [r for r in found.reactions if r not in self.history.reactions]
        self.history.offers += [o for o in found.offers if o not in self.history.offers]
        return found

    def __getattr__(self, name):
        return getattr(self.source, name)


def explain_as_case(engine, ctx: Context) -> tuple[dict, dict]:
    """(engine.explain(ctx), ctx in the case format with the history the
    rule set's contact policies read for its party, if they read any)."""
    recorder = ReadRecorder(ctx.history) if ctx.history is not None else None
    explained = engine.explain(replace(ctx, history=recorder) if recorder is not None else ctx)
    return explained, context_to_case(ctx, recorder.history if recorder is not None else None)


def ago(delta: dt.timedelta) -> str:
    """A case history's `ago` for a time `delta` before the context's time:
    whole weeks, days, hours or minutes as such ("2d"), else minutes to the
    microsecond ("90.5m"), which the case reader turns back into `delta`."""
    micros = max(0, round(delta / dt.timedelta(microseconds=1)))
    for unit, size in (("w", 604_800_000_000), ("d", 86_400_000_000), ("h", 3_600_000_000),
                       ("m", 60_000_000)):
        if micros % size == 0 and micros:
            return f"{micros // size}{unit}"
    return f"{micros / 60_000_000:.10f}".rstrip("0").rstrip(".") + "m"


def history_to_case(history: History, when: dt.datetime) -> list[dict]:
    """A History as a case's `history:` items, oldest first (the inverse of
    cases.read_history)."""
    items = []
    for reaction in history.reactions:
        if reaction.type not in REACTION_TYPES:        # no policy counts it, and a case cannot state it
            continue
        item = {"reaction": reaction.type, "offering": reaction.offering, "ago": ago(when - reaction.time)}
        if reaction.channel is not None:
            item["channel"] = reaction.channel
        items.append((reaction.time, item))
    for offer in history.offers:
        item = {"offered": offer.offering, "ago": ago(when - offer.time)}
        if offer.channel is not None:
            item["channel"] = offer.channel
        items.append((offer.time, item))
    return [item for _time, item in sorted(items, key=lambda pair: pair[0])]


def context_to_case(ctx: Context, history: History | None = None) -> dict:
    """A Context in the case format (the inverse of the case reader). A
    party that is no customer is `customer: none` with `party: <id>`;
    `history` (what the policies read for the party) becomes `history:`."""
    out: dict = {}
    if ctx.customer is None:
        out["customer"] = "none"
        if ctx.party_id is not None:
            out["party"] = str(ctx.party_id)
    else:
        chars = characteristics(ctx.customer)
        customer: dict = {}
        if ctx.customer.get("id") is not None:
            customer["id"] = str(ctx.customer["id"])
        if "segment" in chars:
            customer["segment"] = chars.pop("segment")
        if chars:
            customer["characteristics"] = chars
        out["customer"] = customer
    owns = []
    for product in ctx.products or []:
        offering = (product.get("productOffering") or {}).get("id") if isinstance(product, dict) else None
        if offering is None:
            continue
        status = str(product.get("status") or "")
        owns.append(str(offering) if status.lower() == "active" else {"offering": str(offering), "status": status})
    if owns:
        out["owns"] = owns
    if ctx.cart:
        out["cart"] = list(ctx.cart)
    if ctx.channels:
        out["channel"] = ctx.channels[0] if len(ctx.channels) == 1 else list(ctx.channels)
    out["time"] = iso(ctx.time) if isinstance(ctx.time, dt.datetime) else str(ctx.time)
    if ctx.places:
        out["places"] = list(ctx.places)
    if ctx.categories:
        out["categories"] = list(ctx.categories)
    if ctx.product_orders:
        out["product_orders"] = list(ctx.product_orders)
    if history is not None and (history.reactions or history.offers) and isinstance(ctx.time, dt.datetime):
        out["history"] = history_to_case(history, ctx.time)
    return out
