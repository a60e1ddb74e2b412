"""Plain-text reports of lint, case runs, explain and diff, for people.

Every function returns lines. `style(text, role)` may add colour (roles:
ok, fail, warn, bold, dim); the default adds nothing, so the text is the
same in tests, pipes and files. The CLI passes a styler that colours only
on a terminal (and never with NO_COLOR).
"""
from __future__ import annotations

from .cases import CaseResult
from .diff import DiffReport, summary
from ..engine.engine import Engine
from .findings import LintReport

ANSI = {"ok": "32", "fail": "1;31", "warn": "33", "bold": "1", "dim": "2", "error": "1;31"}


def plain(text: str, role: str | None = None) -> str:
    return text


def ansi(text: str, role: str | None = None) -> str:
    code = ANSI.get(role or "")
    return f"\x1b[{code}m{text}\x1b[0m" if code and text else text


def _ids(ids) -> str:
    return ", ".join(ids) if ids else "(nothing)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- lint
def lint_lines(report: LintReport, style=plain, show_acknowledged: bool = False) -> list[str]:
    lines = []
    for p in report.problems:
        severity = style(p.severity, "error" if p.severity == "error" else "warn")
        lines.append(f"{p.file}:{p.line}:{p.column}: {severity}: {p.about}{p.message} [{p.code}]")
        if p.hint:
            lines.append(f"    fix: {p.hint}")
    if show_acknowledged:
        for p in report.acknowledged:
            lines.append(style(f"{p.file}:{p.line}:{p.column}: acknowledged: {p.about}{p.message} [{p.code}]", "dim"))
    errors, warnings = len(report.errors), len(report.warnings)
    text = (f"{_plural(len(report.files), 'file')} checked: {_plural(errors, 'error')}, "
            f"{_plural(warnings, 'warning')}")
    if report.acknowledged:
        text += f" ({len(report.acknowledged)} acknowledged with lint-ignore)"
    lines.append(style(text, "fail" if errors else ("warn" if warnings else "ok")))
    return lines


# --------------------------------------------------------------------------- explain helpers
def offering_label(catalog, offering_id: str) -> str:
    offering = catalog.get(offering_id) if catalog is not None else None
    return f"{offering_id} {offering.name}" if offering else offering_id


def why_item(engine: Engine, offering_id: str, rule_ids: list[str]) -> str:
    """'R4 data-upsell (priority 15): owns has any of [7001]; R8 ...'"""
    parts = []
    for rule_id in rule_ids:
        rule = engine.ruleset.rule(rule_id)
        if rule is None:
            parts.append(rule_id)
            continue
        priority = next((r.priority for r in rule.recommend if r.offering == offering_id), None)
        parts.append(f"{rule.label} (priority {priority}): {rule.when.describe()}")
    return "; ".join(parts)


def why_missing(engine: Engine, explained: dict, offering_id: str) -> str:
    """Why an offering is not in the answer: dropped by a policy, or no rule proposed it."""
    for step in explained["policies"]:
        for dropped in step.get("dropped", []):
            if dropped["offering"] == offering_id:
                return f"proposed by {dropped['rule']}, dropped ({dropped['reason']}): {dropped['detail']}"
    reasons = []
    for entry in explained["rules"]:
        if any(r["offering"] == offering_id for r in entry["recommend"]):
            if entry["fired"]:
                continue
            label = f"{entry['id']} {entry['name']}" if entry.get("name") else entry["id"]
            detail = entry["reason"]
            if entry.get("failedAt"):
                detail = "; ".join(f"{f['condition']} (line {f['line']}:{f['column']})" for f in entry["failedAt"])
            reasons.append(f"{label} did not fire: {detail}")
    return "; ".join(reasons) if reasons else "no rule recommends it"


# --------------------------------------------------------------------------- cases
def case_lines(engine: Engine, cases_file: str, results: list[CaseResult], counts: dict[str, int],
               style=plain, fail_under: float | None = None) -> list[str]:
    rs = engine.ruleset
    lines = [style(f"{rs.id} {rs.version} ({rs.file}): {_plural(len(results), 'case')} from {cases_file}", "bold")]
    width = max([len(r.case.name) for r in results] + [4])
    lines.append(f"  {'RESULT':<6}  {'CASE':<{width}}  ITEMS")
    for result in results:
        mark = style(f"{'pass':<6}", "ok") if result.passed else style(f"{'FAIL':<6}", "fail")
        lines.append(f"  {mark}  {result.case.name:<{width}}  {_ids(result.actual)}")
    for result in results:
        if not result.passed:
            lines.append("")
            lines += failure_lines(engine, result, style)
    lines.append("")
    lines += coverage_lines(engine, counts, style, fail_under)
    failed = sum(1 for r in results if not r.passed)
    passed = len(results) - failed
    lines.append(style(f"{passed} passed, {failed} failed", "fail" if failed else "ok"))
    return lines


def failure_lines(engine: Engine, result: CaseResult, style=plain) -> list[str]:
    case = result.case
    catalog = engine.catalog
    lines = [style(f"FAIL {case.name}", "fail") + f"  ({case.file}:{case.line})"]
    if case.description:
        lines.append(f"  {case.description}")
    if case.expect is not None:
        lines.append(f"  expected  {_ids(case.expect)}")
    lines.append(f"  actual    {_ids(result.actual)}")
    for message in result.messages:
        if not message.startswith("expected ["):          # already shown as expected/actual
            lines.append(f"  problem   {message}")
    if result.recommendation and result.recommendation.items:
        lines.append("  why each actual item:")
        for item in result.recommendation.items:
            lines.append(f"    {item.priority}. {offering_label(catalog, item.offering_id)}: "
                         f"{why_item(engine, item.offering_id, item.rule_ids)}")
    missing = [o for o in (case.expect or []) if o not in result.actual]
    if missing:
        explained = engine.explain(case.context)
        lines.append("  why expected items are missing:")
        for offering in missing:
            lines.append(f"    {offering_label(catalog, offering)}: {why_missing(engine, explained, offering)}")
    return lines


def coverage_lines(engine: Engine, counts: dict[str, int], style=plain, fail_under: float | None = None) -> list[str]:
    rules = [r for r in engine.ruleset.rules if r.fires_by_status]
    skipped = [r for r in engine.ruleset.rules if not r.fires_by_status]
    fired = [r for r in rules if counts.get(r.id, 0) > 0]
    percent = coverage_percent(engine, counts)
    text = f"Coverage: {len(fired)} of {len(rules)} rules fired in at least one case ({percent:.0f}%)"
    ok = fail_under is None or percent >= fail_under
    lines = [style(text, "ok" if len(fired) == len(rules) else ("warn" if ok else "fail"))]
    for rule in rules:
        if counts.get(rule.id, 0) == 0:
            lines.append(f"  never fired: {rule.label} ({engine.ruleset.file}:{rule.line})")
    for rule in skipped:
        lines.append(f"  not counted: {rule.label} (status {rule.status})")
    if not ok:
        lines.append(style(f"Coverage {percent:.0f}% is under --fail-under {fail_under:g}%", "fail"))
    return lines


def coverage_percent(engine: Engine, counts: dict[str, int]) -> float:
    rules = [r for r in engine.ruleset.rules if r.fires_by_status]
    if not rules:
        return 100.0
    return 100.0 * sum(1 for r in rules if counts.get(r.id, 0) > 0) / len(rules)


# --------------------------------------------------------------------------- explain
POLICY_TITLES = {
    "owned-or-in-cart": "1. owned or in the cart",
    "inactive-or-out-of-validity": "2. not Active, or out of validity",
    "one-per-offering": "3. one item per offering",
    "limit": "4. limit",
    "contact-policy": "5. contact policies",
}


def _facts_line(facts: dict) -> list[str]:
    def show(values):
        return ", ".join(values) if values else "-"
    customer = facts["customer"]
    if facts.get("segment"):
        customer += f", segment {facts['segment']}"
    chars = {k: v for k, v in (facts.get("characteristics") or {}).items() if k != "segment"}
    if chars:
        customer += ", " + ", ".join(f"{k}={v}" for k, v in chars.items())
    lines = [f"  time      {facts['time']}",
             f"  channel   {show(facts['channel'])}",
             f"  customer  {customer}",
             f"  cart      {show(facts['cart'])}" + (f"  (categories: {show(facts['cartCategory'])})"
                                                     if facts["cartCategory"] else ""),
             f"  owns      {show(facts['owns'])}" + (f"  (categories: {show(facts['ownsCategory'])})"
                                                     if facts["ownsCategory"] else "")]
    for key, label in (("place", "places"), ("category", "categories")):
        if facts.get(key):
            lines.append(f"  {label:<9} {show(facts[key])}")
    return lines


def explain_lines(explained: dict, catalog=None, style=plain) -> list[str]:
    rs = explained["ruleset"]
    lines = [style(f"Rule set {rs['id']} {rs['version']} ({rs['file']}), limit {rs['limit']}", "bold"),
             style("Context", "bold")]
    lines += _facts_line(explained["facts"])
    lines.append(style("Rules", "bold"))
    for entry in explained["rules"]:
        label = f"{entry['id']} {entry['name']}" if entry.get("name") else entry["id"]
        proposes = ", ".join(f"{r['offering']} ({r['priority']})" for r in entry["recommend"])
        if entry["fired"]:
            lines.append(f"  {style('fired', 'ok')}    {label} (line {entry['line']}): proposes {proposes}")
            continue
        lines.append(f"  {style('no', 'dim')}       {label} (line {entry['line']}): {entry['reason']}")
        for failed in entry.get("failedAt") or []:
            lines.append(f"             failed: {failed['condition']}  (line {failed['line']}:{failed['column']})")
    lines.append(style("Policies", "bold"))
    for step in explained["policies"]:
        if step["step"] == "proposed":
            proposed = ", ".join(f"{p['offering']} ({p['rule']}, {p['priority']})" for p in step["items"])
            lines.append(f"  proposed: {proposed or '(nothing)'}")
            continue
        title = POLICY_TITLES.get(step["step"], step["step"])
        if step["step"] == "limit":
            title += f" {step['limit']}"
        if step.get("skipped"):
            title += f" ({', '.join(step.get('policies') or [])}; not evaluated: {step['skipped']})"
        if not step.get("dropped"):
            lines.append(f"  {title}: nothing dropped")
            continue
        lines.append(f"  {title}:")
        for dropped in step["dropped"]:
            lines.append(f"    dropped {offering_label(catalog, dropped['offering'])} (from {dropped['rule']}): "
                         f"{dropped['reason']}, {dropped['detail']}")
    lines.append(style("Result", "bold"))
    if not explained["items"]:
        lines.append("  (nothing)")
    for item in explained["items"]:
        lines.append(f"  {item['priority']}. {item['offering']['id']} {item['offering'].get('name', '')}: "
                     f"priority {item['rulePriority']}, rules {', '.join(item['ruleIds'])}")
    if not explained.get("engine", {}).get("consistent", True):
        lines.append(style("warning: durable-rules and the Python check disagree (see the rules above)", "warn"))
    return lines


# --------------------------------------------------------------------------- diff
def diff_lines(report: DiffReport, style=plain, show_unchanged: bool = False, details: bool = True,
               limit: int | None = None) -> list[str]:
    """The impact report: what changed in the rules, the summary, then (with
    `details`) each changed context, at most `limit` of them (None: all).
    `show_unchanged` also lists the contexts that do not change."""
    old, new = report.old, report.new
    lines = [style(f"Impact of {old['id']} {old['version']} ({old['file']}) -> "
                   f"{new['id']} {new['version']} ({new['file']})", "bold")]
    if report.rules:
        lines.append("Rules:")
        for change in report.rules:
            detail = f": {', '.join(change.fields)}" if change.fields else ""
            lines.append(f"  {change.rule} {change.change}{detail}")
    else:
        lines.append("Rules: no rule changed")
    s = summary(report)
    sources = {}
    for c in report.contexts:
        sources[c.source] = sources.get(c.source, 0) + 1
    origin = ", ".join(f"{n} {'cases' if src == 'case' else 'recorded'}" for src, n in sources.items())
    lines.append(f"Contexts: {s['contexts']} ({origin or 'none'}); {s['changed']} change, "
                 f"{s['contexts'] - s['changed']} unchanged")
    lines.append(style(f"Summary: {s['changed']} of {s['contexts']} contexts change: "
                       f"{_plural(s['gained'], 'item')} gained, {s['lost']} lost, reordered in {s['reordered']}, "
                       f"reasons changed in {s['reasonsChanged']}", "warn" if s["changed"] else "ok"))
    if not (details or show_unchanged):
        return lines
    listed = [ctx for ctx in report.contexts if ctx.changed or show_unchanged]
    shown = listed if limit is None else listed[:limit]
    for ctx in shown:
        lines.append("")
        lines.append(style(ctx.name, "bold") + ("" if ctx.changed else "  (unchanged)"))
        lines.append(f"  before  {_ids(ctx.old)}")
        lines.append(f"  after   {_ids(ctx.new)}")
        for item in ctx.gained:
            lines.append(style(f"  gained  {item.offering} {item.name} at #{item.new_rank} "
                               f"(rules {', '.join(item.new_rules)})", "ok"))
        for item in ctx.lost:
            lines.append(style(f"  lost    {item.offering} {item.name}, was #{item.old_rank} "
                               f"(rules {', '.join(item.old_rules)})", "fail"))
        for item in ctx.reordered:
            lines.append(style(f"  moved   {item.offering} {item.name}: #{item.old_rank} -> #{item.new_rank}", "warn"))
        for item in ctx.reasons:
            lines.append(f"  reasons {item.offering} {item.name}: rules {', '.join(item.old_rules)} -> "
                         f"{', '.join(item.new_rules)}")
    if len(shown) < len(listed):
        lines.append("")
        lines.append(f"... and {_plural(len(listed) - len(shown), 'more context')} not shown "
                     f"(the first {len(shown)} of {len(listed)}; a higher --limit, or 0 for all)")
    return lines
