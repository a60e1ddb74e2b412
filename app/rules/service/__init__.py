"""The service: which rule set and version serve requests, reloads when
files change, and the swap from one compiled version to the next."""
from .rule_service import RuleService

__all__ = ["RuleService"]
