"""The recommendation engine: YAML catalog, versioned YAML rule sets compiled to
durable-rules, and the demo policies. Knows nothing of HTTP or Flask.

    from app.rules import RuleService, Context
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    svc.poll()                         # before each request: a clock read; reloads in the background
    result = svc.recommend(Context(time=..., channels=["21"], cart=["6547"]))
    result.items[0].offering, .priority, .rule_ids, result.ruleset_version

Where things live (each subpackage's docstring says more):

    model/       what the files mean: YAML with positions, catalog, rule sets,
                 conditions, facts, problems
    engine/      the rule set compiled to durable-rules, and the policies
    repository/  the file layout: where versions, cases, lock and pointer files live
    service/     which version serves, reload, swap
    authoring/   lint, analysis, cases, contexts, diff, lock files, reports
                 (tools for rule writers; the runtime never imports them)

Rule authors: see rules/README.md.
"""
from .engine import Engine
from .engine.policies import Recommendation, RecommendedItem
from .model.catalog import Catalog, Offering, load_catalog
from .model.errors import Problem, RuleSetError
from .model.facts import Context, Facts, build_facts
from .model.ruleset import Rule, RuleSet, load_ruleset
from .service import RuleService

__all__ = [
    "Catalog", "Context", "Engine", "Facts", "Offering", "Problem", "Recommendation",
    "RecommendedItem", "Rule", "RuleService", "RuleSet", "RuleSetError", "build_facts",
    "load_catalog", "load_ruleset",
]
