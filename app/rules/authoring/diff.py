"""`flask rules diff OLD NEW`: what a rule change would change.

Both versions answer the same contexts (the regression cases, and recorded
contexts if given); per context the report lists the items gained, lost and
reordered, and the items whose reasons (rule ids) changed. It also lists the
rules added, removed and changed between the two files.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..engine.engine import Engine
from ..model.facts import Context
from ..model.ruleset import Rule, RuleSet


@dataclass
class ItemChange:
    offering: str
    name: str
    old_rank: int | None
    new_rank: int | None
    old_rules: list[str] = field(default_factory=list)
    new_rules: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"offering": self.offering, "name": self.name, "oldRank": self.old_rank, "newRank": self.new_rank,
                "oldRules": self.old_rules, "newRules": self.new_rules}


@dataclass
class ContextDiff:
    name: str
    source: str                      # "case" or "recorded"
    old: list[str]
    new: list[str]
    gained: list[ItemChange] = field(default_factory=list)
    lost: list[ItemChange] = field(default_factory=list)
    reordered: list[ItemChange] = field(default_factory=list)
    reasons: list[ItemChange] = field(default_factory=list)   # same item, other rules

    @property
    def changed(self) -> bool:
        return bool(self.gained or self.lost or self.reordered or self.reasons)

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "old": self.old, "new": self.new,
                "changed": self.changed, "gained": [c.as_dict() for c in self.gained],
                "lost": [c.as_dict() for c in self.lost], "reordered": [c.as_dict() for c in self.reordered],
                "reasonsChanged": [c.as_dict() for c in self.reasons]}


@dataclass
class RuleChange:
    rule: str
    change: str                      # added | removed | changed
    fields: list[str] = field(default_factory=list)
    line: int | None = None

    def as_dict(self) -> dict:
        return {"rule": self.rule, "change": self.change, "fields": self.fields, "line": self.line}


@dataclass
class DiffReport:
    old: dict                        # {id, version, file, hash}
    new: dict
    rules: list[RuleChange]
    contexts: list[ContextDiff]

    @property
    def changed(self) -> list[ContextDiff]:
        return [c for c in self.contexts if c.changed]

    def as_dict(self) -> dict:
        return {"old": self.old, "new": self.new, "rules": [r.as_dict() for r in self.rules],
                "contexts": [c.as_dict() for c in self.contexts],
                "summary": summary(self)}


def _label(ruleset: RuleSet) -> dict:
    return {"id": ruleset.id, "version": ruleset.version, "file": ruleset.file, "hash": ruleset.hash}


def _rule_signature(rule: Rule) -> dict:
    return {
        "name": rule.name, "kind": rule.kind, "description": rule.description, "status": rule.status,
        "validFor": (rule.valid_from, rule.valid_to), "when": rule.when.describe(),
        "recommend": [(r.offering, r.priority) for r in rule.recommend],
    }


def rule_changes(old: RuleSet, new: RuleSet) -> list[RuleChange]:
    def rule_fields(before, after) -> list[str]:
        a, b = _rule_signature(before), _rule_signature(after)
        return [key for key in a if a[key] != b[key]]

    out = _changes(old.rules, new.rules, lambda rule_id: rule_id, rule_fields)
    if old.limit != new.limit:
        out.append(RuleChange("(rule set)", "changed", [f"limit {old.limit} -> {new.limit}"]))
    # the contact policies decide what a version answers, like its rules and
    # limit; the first policy that suppresses an offering names it, so their
    # order counts too
    return out + _changes(old.contact_policies, new.contact_policies, lambda policy_id: f"policy {policy_id}",
                          lambda before, after: [name for name, attr in _POLICY_FIELDS.items()
                                                 if getattr(before, attr) != getattr(after, attr)])


#: what a contact policy's answer depends on, by its name in the rule file
_POLICY_FIELDS = {"kind": "kind", "count": "count", "days": "days", "perChannel": "per_channel",
                  "scope": "scope_text", "description": "description"}


def _changes(old_items, new_items, label, fields_of) -> list[RuleChange]:
    """The items (rules, contact policies: each with `id` and `line`, in file
    order) added, changed (`fields_of(before, after)`, plus "order" when the
    items both versions hold are in another order and this one moved) or
    removed, each named `label(id)`."""
    out = []
    before_all = {item.id: item for item in old_items}
    after_all = {item.id: item for item in new_items}
    reordered = [i for i in before_all if i in after_all] != [i for i in after_all if i in before_all]
    old_position = {item_id: n for n, item_id in enumerate(before_all)}
    new_position = {item_id: n for n, item_id in enumerate(after_all)}
    for item in new_items:
        before = before_all.get(item.id)
        if before is None:
            out.append(RuleChange(label(item.id), "added", line=item.line))
            continue
        fields = fields_of(before, item)
        if reordered and old_position[item.id] != new_position[item.id]:
            fields.append("order")
        if fields:
            out.append(RuleChange(label(item.id), "changed", fields, item.line))
    for item in old_items:
        if item.id not in after_all:
            out.append(RuleChange(label(item.id), "removed", line=item.line))
    return out


def compare(name: str, source: str, old_engine: Engine, new_engine: Engine, ctx: Context) -> ContextDiff:
    before = old_engine.recommend(ctx)
    after = new_engine.recommend(ctx)
    old_items = {item.offering_id: item for item in before.items}
    new_items = {item.offering_id: item for item in after.items}
    diff = ContextDiff(name, source, before.offering_ids, after.offering_ids)

    def change(offering: str) -> ItemChange:
        o, n = old_items.get(offering), new_items.get(offering)
        label = (n or o).offering.get("name", "")
        return ItemChange(offering, label, o.priority if o else None, n.priority if n else None,
                          list(o.rule_ids) if o else [], list(n.rule_ids) if n else [])

    diff.gained = [change(o) for o in after.offering_ids if o not in old_items]
    diff.lost = [change(o) for o in before.offering_ids if o not in new_items]
    common_old = [o for o in before.offering_ids if o in new_items]
    common_new = [o for o in after.offering_ids if o in old_items]
    if common_old != common_new:
        diff.reordered = [change(o) for o in common_new if common_old.index(o) != common_new.index(o)]
    diff.reasons = [change(o) for o in common_new if old_items[o].rule_ids != new_items[o].rule_ids]
    return diff


def diff_engines(old_engine: Engine, new_engine: Engine, contexts: Iterable[tuple[str, str, Context]]) -> DiffReport:
    """contexts: (name, source, Context) triples, e.g. ("E1-...", "case", ctx),
    iterated once (a progress bar may wrap them)."""
    return DiffReport(
        old=_label(old_engine.ruleset), new=_label(new_engine.ruleset),
        rules=rule_changes(old_engine.ruleset, new_engine.ruleset),
        contexts=[compare(name, source, old_engine, new_engine, ctx) for name, source, ctx in contexts],
    )


def summary(report: DiffReport) -> dict:
    changed = report.changed
    return {
        "contexts": len(report.contexts), "changed": len(changed),
        "gained": sum(len(c.gained) for c in changed), "lost": sum(len(c.lost) for c in changed),
        "reordered": sum(1 for c in changed if c.reordered),
        "reasonsChanged": sum(1 for c in changed if c.reasons),
    }
