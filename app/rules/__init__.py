"""The recommendation engine: YAML catalog, versioned YAML rule sets compiled to
durable-rules, and the demo policies. Knows nothing of HTTP or Flask.

    from app.rules import RuleService, Context
    svc = RuleService(rules_dir, catalog_dir, state_dir)
    svc.refresh()                      # before each request (cheap, stat-based)
    result = svc.recommend(Context(time=..., channels=["21"], cart=["6547"]))
    result.items[0].offering, .priority, .rule_ids, result.ruleset_version

Rule authors: see rules/README.md.
"""
from .catalog import Catalog, Offering, load_catalog
from .cases import Case, CaseResult, coverage, load_cases, run_case, run_cases_file
from .engine import Engine
from .errors import Problem, RuleSetError
from .facts import Context, Facts, build_facts
from .policies import Recommendation, RecommendedItem
from .ruleset import Rule, RuleSet, load_ruleset
from .service import RuleService

__all__ = [
    "Case", "CaseResult", "Catalog", "Context", "Engine", "Facts", "Offering", "Problem", "Recommendation",
    "RecommendedItem", "Rule", "RuleService", "RuleSet", "RuleSetError", "build_facts", "coverage",
    "load_catalog", "load_cases", "load_ruleset", "run_case", "run_cases_file",
]
