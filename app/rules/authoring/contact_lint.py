"""Lint's own checks of a rule set's contact policies (warnings; the
loader's errors, model/contact.py, come with their code and fix already):

- `contact-policy-unused`: a policy scoped to an offering or category that
  no rule recommends: it can never suppress anything (a typo'd scope, or a
  rule removed);
- `contact-policy-never`: maxImpressions with `count: 0` or maxOffersPerDay
  with `count: 0`: every offering in scope is suppressed for every known
  customer, which is a rule status `disabled` in disguise."""
from __future__ import annotations

from ..model.errors import Problem
from ..model.ruleset import RuleSet


def contact_policy_findings(ruleset: RuleSet | None, catalog) -> list[Problem]:
    """Warnings with file:line and a fix for the policies of a rule set that loaded."""
    if ruleset is None or catalog is None or not ruleset.contact_policies:
        return []
    recommended = {rec.offering for rule in ruleset.rules for rec in rule.recommend}
    found = []
    for policy in ruleset.contact_policies:
        if (policy.offering or policy.category) and not any(
                policy.applies_to(offering, catalog) for offering in recommended):
            found.append(Problem(ruleset.file, policy.line, 5,
                                 f"applies to {policy.scope_text}, which no rule "
                                 "recommends: it never suppresses anything", policy.id, "warning",
                                 "contact-policy-unused",
                                 "scope it to an offering or category the rules recommend, or remove it",
                                 "policy"))
        if policy.count == 0:
            found.append(Problem(ruleset.file, policy.line, 5,
                                 f"count 0 suppresses {policy.scope_text} "
                                 "for every known customer", policy.id, "warning", "contact-policy-never",
                                 "give a count of at least 1, or set the rules' status to disabled", "policy"))
    return found
