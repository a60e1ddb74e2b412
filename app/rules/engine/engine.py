"""One rule set version compiled for durable-rules, ready to evaluate contexts.

An `Engine` is built completely (every durable ruleset created) before anyone
can use it, and is never modified afterwards: the service swaps whole engines.
"""
from __future__ import annotations

from ..model.catalog import Catalog
from ..model.common import iso
from .compiler import (MAX_RULE_WEIGHT, FactKeys, anchors, context_atoms, durable_fact, plan_chunks,
                       rule_expression, share_identical)
from ..model.conditions import explain_detail as explain_condition
from .durable_runtime import DurableError, DurableRulesets
from .faults import injected_build_failure
from ..model.errors import Problem, RuleSetError
from ..model.facts import Context, Facts, build_facts
from .contact import ContactVerdict, evaluate as evaluate_contact
from .policies import PolicyTrace, RankingTables, Recommendation, apply_policies
from ..model.ruleset import RuleSet


MAX_CHARACTERISTICS = 12


class EngineBuildError(RuleSetError):
    """durable-rules refused to create the rulesets of a version that compiled
    without problems. Unlike a problem of the rule files, this happens in one
    process and may not happen again (memory pressure, a heap state: the
    sporadic error 102 of durable-rules 2.0.28 was one), so the rule service
    retries the build and a worker that cannot build at all is replaced."""


def compile_rules(ruleset: RuleSet) -> tuple[FactKeys, dict[int, dict], list, list[Problem]]:
    """The durable expression of every rule that can fire, without creating
    durable rulesets: (keys, expressions by rule index, chunk entries, problems).
    Problems are the limits of the engine (too complex, too many characteristics)."""
    keys = FactKeys()
    problems: list[Problem] = []
    entries = []
    compiled: dict[int, dict] = {}
    for rule in ruleset.rules:
        if not rule.fires_by_status:
            continue
        node = rule_expression(rule.when, keys,
                               rule.valid_from.timestamp() if rule.valid_from else None,
                               rule.valid_to.timestamp() if rule.valid_to else None)
        if node.weight > MAX_RULE_WEIGHT:
            problems.append(Problem(ruleset.file, rule.line, 1,
                                    f"condition too complex: {node.weight} alternatives can hold at once "
                                    f"(at most {MAX_RULE_WEIGHT}); use any_of/none_of lists or split the rule",
                                    rule.id, code="too-complex"))
            continue
        compiled[rule.index] = node.expr
        entries.append((rule.index, node, anchors(rule.when)))
    if len(keys.chars) > MAX_CHARACTERISTICS:
        problems.append(Problem(ruleset.file, 1, 1, f"the rule set reads {len(keys.chars)} different "
                                f"customer characteristics; at most {MAX_CHARACTERISTICS} are supported",
                                code="too-complex"))
    return keys, compiled, entries, problems


class Engine:
    def __init__(self, ruleset: RuleSet, catalog: Catalog, href_base: str = ""):
        self.ruleset = ruleset
        self.catalog = catalog
        self.href_base = href_base
        # The durable expressions are not kept once durable has its rulesets:
        # 17 MiB of Python dicts at 10,000 rules that nothing reads again.
        self.keys, compiled, entries, problems = compile_rules(ruleset)
        if problems:
            raise RuleSetError(f"rule set {ruleset.file} cannot be compiled", problems)
        # rules with identical expressions are one durable rule (compiler.share_identical)
        entries, self._sharing = share_identical(entries)
        self.plans = plan_chunks(entries)
        del entries
        definitions = [{f"r{index}": {"all": [{"m": compiled[index]}]} for index in plan.rules}
                       for plan in self.plans]
        chunk_keys = [sorted(plan.keys) for plan in self.plans]
        for plan in self.plans:
            plan.keys = None             # not needed once the chunks are built
        del compiled
        prefix = f"{ruleset.id}@{ruleset.version}#{ruleset.hash[:8]}"
        try:
            fault = injected_build_failure()
            if fault is not None:
                raise DurableError(fault)
            self.durable = DurableRulesets(prefix, definitions, chunk_keys)
        except Exception as exc:  # durable refused the definition: report, never crash
            raise EngineBuildError(f"rule set {ruleset.file} cannot be compiled",
                               [Problem(ruleset.file, 1, 1, f"durable-rules refused the rule set: {exc}")]) from None
        self.by_index = {rule.index: rule for rule in ruleset.rules}
        self.ranking = RankingTables(ruleset.rules, catalog)
        # which chunks a request must ask, indexed now rather than tested per request
        self._always = [i for i, plan in enumerate(self.plans) if plan.always]
        self._by_atom: dict = {}
        for i, plan in enumerate(self.plans):
            if not plan.always:
                for atom in plan.atoms:
                    self._by_atom.setdefault(atom, []).append(i)

    # ------------------------------------------------------------------ evaluation
    def facts(self, ctx: Context) -> Facts:
        return build_facts(ctx, self.catalog)

    def chunks_for(self, facts: Facts) -> list[int]:
        """Indexes of the chunks holding a rule these facts can fire (an
        unanchored rule, or one whose anchor is among the facts), in order."""
        chosen = set(self._always)
        by_atom = self._by_atom
        for atom in context_atoms(facts):
            found = by_atom.get(atom)
            if found:
                chosen.update(found)
        return sorted(chosen)

    def fired_indexes(self, facts: Facts) -> set[int]:
        """Indexes of the rules durable fires for these facts."""
        chunks = self.chunks_for(facts)
        if not chunks:
            return set()
        names = self.durable.fire(durable_fact(facts, self.keys), chunks)
        fired = {int(name[1:]) for name in names}
        if self._sharing:
            for index in fired & self._sharing.keys():
                fired.update(self._sharing[index])
        return fired

    def recommend(self, ctx: Context) -> Recommendation:
        facts = self.facts(ctx)
        fired_idx = self.fired_indexes(facts)
        fired = [self.by_index[index] for index in sorted(fired_idx)]
        if self.ruleset.contact_policies:
            contact = self.contact(ctx, facts, fired)
            items = apply_policies(self.ruleset, self.catalog, facts, fired, self.href_base,
                                   tables=self.ranking, suppressed=contact.suppressed)
            items = contact.cut(items)[0]
        else:
            items = apply_policies(self.ruleset, self.catalog, facts, fired, self.href_base,
                                   tables=self.ranking)
        return Recommendation(items=items, ruleset_id=self.ruleset.id, ruleset_version=self.ruleset.version,
                              ruleset_hash=self.ruleset.hash, catalog_hash=self.catalog.hash,
                              fired_rules=[rule.id for rule in fired])

    def explain(self, ctx: Context) -> dict:
        """Every rule (fired or not, and why not), each policy step, the final list."""
        facts = self.facts(ctx)
        fired_idx = self.fired_indexes(facts)
        evaluated = self.chunks_for(facts)
        rules_out = []
        fired = []
        consistent = True
        for rule in self.ruleset.rules:
            entry = {"id": rule.id, "name": rule.name, "kind": rule.kind, "line": rule.line,
                     "status": rule.status, "fired": rule.index in fired_idx, "reason": None, "failed": [],
                     "recommend": [{"offering": r.offering, "priority": r.priority} for r in rule.recommend]}
            holds, failed_at = explain_condition(rule.when, facts)
            failed = [text for _cond, text in failed_at]
            if rule.index in fired_idx:
                fired.append(rule)
                entry["reason"] = "all conditions hold"
                if not holds or not rule.valid_at(facts.time) or not rule.fires_by_status:
                    consistent = False
                    entry["reason"] = "fired by durable-rules, but the Python check disagrees"
            elif not rule.fires_by_status:
                entry["reason"] = f"status {rule.status}: the rule does not fire"
            elif not rule.valid_at(facts.time):
                entry["reason"] = (f"outside its validFor [{_t(rule.valid_from)}, {_t(rule.valid_to)}) "
                                   f"at {iso(facts.time)}")
            elif not holds:
                entry["reason"] = "a condition failed"
                entry["failed"] = failed
                entry["failedAt"] = [{"condition": text, "line": cond.pos[0], "column": cond.pos[1]}
                                     for cond, text in failed_at]
            else:
                consistent = False
                entry["reason"] = "conditions hold in the Python check, but durable-rules did not fire it"
            rules_out.append(entry)
        trace = PolicyTrace()
        contact = self.contact(ctx, facts, fired) if self.ruleset.contact_policies else None
        items = apply_policies(self.ruleset, self.catalog, facts, fired, self.href_base, trace,
                               suppressed=contact.suppressed if contact else None)
        if contact is not None:
            items, cut = contact.cut(items)
            trace.dropped[5].extend({"offering": item.offering_id, "rule": item.rule_ids[0],
                                     "priority": item.rule_priority, "reason": "contact-policy",
                                     "detail": contact.cap_reason} for item in cut)
            trace.contact_step = {"policies": [p.id for p in self.ruleset.contact_policies],
                                  **({"skipped": contact.skipped} if contact.skipped else {})}
        return {
            "ruleset": {"id": self.ruleset.id, "version": self.ruleset.version, "hash": self.ruleset.hash,
                        "file": self.ruleset.file, "limit": self.ruleset.limit},
            "facts": facts_summary(facts),
            "rules": rules_out,
            "policies": trace.steps(self.ruleset.limit),
            "items": [item.as_dict() for item in items],
            "engine": {"chunks": len(self.plans), "chunksEvaluated": len(evaluated), "consistent": consistent},
        }

    def contact(self, ctx: Context, facts: Facts, fired: list) -> ContactVerdict:
        """The contact policies' verdict on the offerings the fired rules
        propose: one read of the party's history (engine/contact.py)."""
        offerings = dict.fromkeys(rec.offering for rule in fired for rec in rule.recommend)
        channel = facts.channel[0] if facts.channel else None
        return evaluate_contact(self.ruleset.contact_policies, ctx.party_id, ctx.history, facts.time,
                                channel, offerings, self.catalog)

    def close(self) -> None:
        """Stop using this engine. Its durable rulesets are NOT deleted: on this
        machine durable-rules' delete_ruleset made a later create_ruleset fail
        now and then (error 102, about once in 300 reloads), a sign of memory
        corruption, so compiled versions are kept for the life of the process
        (the service compiles a version only when its files change)."""
        self.durable.closed = True


def _t(when) -> str:
    return iso(when) if when else "…"


def facts_summary(facts: Facts) -> dict:
    return {"time": iso(facts.time), "cart": facts.cart, "cartCategory": facts.cart_category,
            "owns": facts.owns, "ownsCategory": facts.owns_category, "channel": facts.channel,
            "place": facts.place, "category": facts.category, "segment": facts.segment,
            "customer": "known" if facts.known else "anonymous",
            "characteristics": {k: v for k, v in facts.characteristics.items()
                                if isinstance(v, (str, int, float, bool)) or v is None},
            "counts": dict(facts.counts)}
