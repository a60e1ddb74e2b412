"""Contact policies of a rule set: offer-fatigue limits declared in the rule
set file (top-level `contactPolicies:`), so that a version pins its policies
and its content hash covers them (docs/contact-policies.md).

    contactPolicies:
      - id: P1
        kind: maxImpressions        # at most `count` `shown` reactions of an offering
        count: 3                    #   per party in the last `days` days
        days: 7
        perChannel: true            #   (optional) counted on the request's channel only
        scope: {offering: "6542"}   # or {category: accessories}; absent: every offering
      - id: P2
        kind: pauseAfterRejected    # not again for `days` days after `rejected`
        days: 30
      - id: P3
        kind: stopAfterAccepted     # not again after `accepted` (within `days`,
        days: 365                   #   default 3650; reactions older than the
                                    #   retention window are purged anyway)
      - id: P4
        kind: maxOffersPerDay       # at most `count` items answered to a party in
        count: 5                    #   the 24 hours before the evaluation time

Every problem names file, line and column, with a `code` and a `hint` (the
fix) that lint shows as they are."""
from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches

from .catalog import Catalog
from .common import Checker, as_id, type_name
from .errors import Problem

KINDS = ("maxImpressions", "pauseAfterRejected", "stopAfterAccepted", "maxOffersPerDay")
FIELDS = {"id", "description", "kind", "scope", "count", "days", "perChannel"}
#: which numeric fields each kind needs (True) or admits (False)
KIND_FIELDS = {
    "maxImpressions": {"count": True, "days": True, "perChannel": False, "scope": False},
    "pauseAfterRejected": {"days": True, "scope": False},
    "stopAfterAccepted": {"days": False, "scope": False},
    "maxOffersPerDay": {"count": True},
}
DEFAULT_ACCEPTED_DAYS = 3650
MAX_DAYS = 3650           # ten years: a longer window is a typo, and the read would scan it
MAX_COUNT = 10_000


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    """One declared policy. `days` is the look-back window in days (a
    float: 0.5 is twelve hours); for maxOffersPerDay it is 1. `offering` /
    `category` restrict it to one offering or to the offerings of one
    catalog category; both None: every offering."""

    id: str
    kind: str
    count: int | None = None
    days: float = 1.0
    per_channel: bool = False
    offering: str | None = None
    category: str | None = None
    description: str = ""
    line: int = 1

    def applies_to(self, offering_id: str, catalog: Catalog) -> bool:
        if self.offering is not None:
            return offering_id == self.offering
        if self.category is not None:
            offering = catalog.get(offering_id)
            return offering is not None and self.category in offering.categories
        return True

    @property
    def scope_text(self) -> str:
        if self.offering is not None:
            return f"offering {self.offering}"
        if self.category is not None:
            return f"category {self.category}"
        return "every offering"


def _problem(check: Checker, where, code: str, message: str, hint: str, policy: str | None) -> None:
    line, column = where
    check.problems.append(Problem(check.file, line, column, message, policy, "error", code, hint, "policy"))


def read_contact_policies(raw, where, check: Checker, catalog: Catalog) -> tuple[ContactPolicy, ...]:
    """The `contactPolicies` list of a rule set document (PosList of
    PosDicts), checked against the catalog; problems go to `check`."""
    if not isinstance(raw, list):
        _problem(check, where, "contact-policy", f"contactPolicies must be a list, got {type_name(raw)}",
                 "write a list of policies, each `- id: P1` with a kind", None)
        return ()
    policies: list[ContactPolicy] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        at = raw.at(index)
        if not isinstance(item, dict):
            _problem(check, at, "contact-policy", f"a contact policy must be a mapping, got {type_name(item)}",
                     "write `- id: P1` followed by `kind:` and its fields", None)
            continue
        policy = _read_one(item, at, check, catalog, seen)
        if policy is not None:
            policies.append(policy)
    return tuple(policies)


def _read_one(item, at, check: Checker, catalog: Catalog, seen: dict[str, int]) -> ContactPolicy | None:
    before = len(check.problems)
    policy_id = as_id(item.get("id"))
    label = policy_id or f"at line {at[0]}"
    for key in item:
        if key not in FIELDS and not (isinstance(key, str) and key.startswith("@")):
            _problem(check, item.key_at(key), "contact-policy", f"unknown field {key!r} in a contact policy",
                     "remove it or use one of: " + ", ".join(sorted(FIELDS)), label)
    if policy_id is None:
        _problem(check, at, "contact-policy", "a contact policy needs an id (text), e.g. `id: P1`",
                 "add `id: P<n>`: explanations and reports name the policy by it", None)
    elif policy_id in seen:
        _problem(check, item.at("id"), "duplicate-policy-id",
                 f"duplicate contact policy id {policy_id!r} (first at line {seen[policy_id]})",
                 "give this policy an id of its own; keep released ids unchanged", policy_id)
    else:
        seen[policy_id] = at[0]
    kind = item.get("kind")
    if kind not in KINDS:
        _problem(check, item.at("kind") if "kind" in item else at, "contact-policy",
                 f"contact policy kind must be one of {', '.join(KINDS)}, got {kind!r}",
                 "set `kind:` to one of " + ", ".join(KINDS), label)
        return None
    allowed = KIND_FIELDS[kind]
    for key in ("count", "days", "perChannel", "scope"):
        if key in item and key not in allowed:
            _problem(check, item.key_at(key), "contact-policy",
                     f"{kind} has no {key!r}", f"remove {key!r}" + (
                         " (offers per day count every offering)" if kind == "maxOffersPerDay" else ""), label)
        elif allowed.get(key) and key not in item:
            _problem(check, at, "contact-policy", f"{kind} needs {key!r}",
                     f"add `{key}: ` (a whole number)" if key == "count" else f"add `{key}: ` (days, > 0)", label)
    count = item.get("count")
    if "count" in item and "count" in allowed and (
            isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT):
        _problem(check, item.at("count"), "contact-policy",
                 f"count must be a whole number from 0 to {MAX_COUNT}, got {count!r}",
                 "write e.g. `count: 3`", label)
    days = item.get("days", DEFAULT_ACCEPTED_DAYS if kind == "stopAfterAccepted" else 1)
    if "days" in item and "days" in allowed and (
            isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_DAYS):
        _problem(check, item.at("days"), "bad-window",
                 f"days must be a number of days above 0 and at most {MAX_DAYS}, got {days!r}",
                 "write the look-back window in days, e.g. `days: 7` (0.5 is twelve hours)", label)
    per_channel = item.get("perChannel", False)
    if not isinstance(per_channel, bool):
        _problem(check, item.at("perChannel"), "contact-policy",
                 f"perChannel must be true or false, got {per_channel!r}", "write `perChannel: true`", label)
    offering = category = None
    scope = item.get("scope")
    if "scope" in item and "scope" in allowed:
        offering, category = _scope(scope, item.at("scope"), check, catalog, label)
    description = item.get("description", "")
    if not isinstance(description, str):
        _problem(check, item.at("description"), "contact-policy", "description must be text",
                 "quote it", label)
    if len(check.problems) > before:
        return None
    return ContactPolicy(id=policy_id, kind=kind, count=count if kind != "pauseAfterRejected" else None,
                         days=float(days), per_channel=per_channel, offering=offering,
                         category=category, description=description.strip(), line=at[0])


def _scope(scope, where, check: Checker, catalog: Catalog, label: str) -> tuple[str | None, str | None]:
    if scope == "global":
        return None, None
    if not isinstance(scope, dict) or len(scope) != 1 or not ({"offering", "category"} & set(scope)):
        typed = next(iter(scope), None) if isinstance(scope, dict) and len(scope) == 1 else scope
        close = get_close_matches(str(typed), ["global", "offering", "category"], n=1, cutoff=0.6) \
            if isinstance(typed, str) else []
        _problem(check, where, "contact-policy",
                 f"scope must be `global`, {{offering: <id>}} or {{category: <id or name>}}, got {scope!r}",
                 (f"did you mean {close[0]!r}? " if close else "")
                 + "write e.g. `scope: {offering: \"6542\"}`; leave it out for every offering", label)
        return None, None
    if "offering" in scope:
        offering = as_id(scope["offering"])
        if offering is None or catalog.get(offering) is None:
            hint = "use the id of an offering in catalog/ (ids are text: write them in quotes)"
            close = get_close_matches(str(offering), sorted(catalog.offerings), n=1, cutoff=0.6)
            _problem(check, scope.at("offering"), "unknown-offering", f"unknown offering {offering!r}",
                     (f"did you mean {close[0]!r}? Otherwise, {hint}" if close else hint), label)
            return None, None
        return offering, None
    category = as_id(scope["category"])
    if category is None or category not in catalog.category_tokens:
        known = sorted(catalog.category_tokens)
        close = get_close_matches(str(category), known, n=1, cutoff=0.6)
        _problem(check, scope.at("category"), "unknown-category", f"unknown category {category!r}",
                 (f"did you mean {close[0]!r}? Otherwise, use" if close else "use")
                 + " a category id or name of a catalog offering: " + ", ".join(known), label)
        return None, None
    return None, category
