"""The arguments and answers of /admin/rules (app/api/rules_admin.py) as
marshmallow schemas: flask-smorest parses each request with the argument
schemas and generates the OpenAPI document's request bodies, parameters
and answers from them (fields and refusals: app/schemas/admin.py).

The answer schemas document what the authoring functions build
(app/rules/authoring/: workbench, saving, governance): the attributes a
client reads, with nested reports as objects."""
from __future__ import annotations

from marshmallow import INCLUDE, fields, validate

from ..decisions.impact import MAX_RECORDED
from ..schemas.admin import (AdminAnswer, AdminArguments, Object, Text, TextList, TrueFalse, WholeNumber,
                             optional)

MAX_RECENT = 1000
FORMATS = ("json", "text")
_RULESET = "The rule set (default: the one in service)"


def _doc(description: str, **more) -> dict:
    return {"metadata": {"description": description, **more}}


# --------------------------------------------------------------------------- arguments
class RulesetQuery(AdminArguments):
    rulesetId = optional(Text, **_doc(_RULESET))


class ExplainQuery(AdminArguments):
    version = optional(Text, **_doc("A loaded version (default: the one in service)"))
    rulesetId = optional(Text, **_doc(_RULESET))
    format = Text(load_default="json", refusal=f"`format` is one of {', '.join(FORMATS)}",
                  validate=validate.OneOf(FORMATS, error=f"`format` is one of {', '.join(FORMATS)}"),
                  **_doc("text: as `flask rules explain` prints it"))


class ExplainBody(AdminArguments):
    """A case context ({"cart": ["6547"], "channel": "21", "time": ...}), a
    whole case ({name, context}) or a TMF680 QueryProductRecommendation
    body: read by the authoring functions, which name what is wrong."""

    class Meta:
        unknown = INCLUDE


class LintBody(AdminArguments):
    text = Text(required=True, **_doc("The rule set file's text (YAML)"))
    rulesetId = optional(Text, **_doc("Lint as if saved as rules/<rulesetId>.yaml (default: the one in service)"))


class CasesBody(AdminArguments):
    rulesetId = optional(Text, **_doc(_RULESET))
    version = optional(Text, **_doc("A loaded version (default: the one in service)"))
    filter = optional(Text, **_doc("Only the cases whose name holds this text"))


class NewCaseBody(AdminArguments):
    name = Text(required=True, **_doc("The case's name, unique in the file"))
    context = Object(required=True, **_doc("The situation, in the case format (as explain answers it)"))
    expect = TextList(required=True, item_refusal="`expect` must be a list of offering ids (text)",
                      **_doc("The offering ids expected, in order"))
    description = optional(Text)


class ImpactBody(AdminArguments):
    rulesetId = optional(Text, **_doc(_RULESET))
    old = Text(required=True, **_doc("A loaded version"))
    new = Text(required=True, **_doc("A loaded version"))
    recent = optional(WholeNumber, validate=validate.Range(0, MAX_RECENT, error=f"`recent` must be 0 to {MAX_RECENT}"),
                      **_doc("Compare on the latest N stored TMF680 queries"))
    cases = TrueFalse(load_default=True, allow_none=True, **_doc("Compare on the regression cases (null: true)"))
    contexts = optional(Text, **_doc("An uploaded JSON Lines file of contexts, its text"))
    contextsName = optional(Text, **_doc("That file's name, for the report"))
    recorded = optional(WholeNumber, refusal=f"`recorded` must be a whole number 0 to {MAX_RECORDED}",
                        validate=validate.Range(0, MAX_RECORDED,
                                                error=f"`recorded` must be a whole number 0 to {MAX_RECORDED}"),
                        **_doc("Replay the last N recorded answers (decision log), weighted"))
    recordedSince = optional(Text, **_doc(f"Replay the answers recorded since (at most the last {MAX_RECORDED:,})",
                                          format="date-time"))
    recordedUntil = optional(Text, **_doc("... and before", format="date-time"))
    recordedChannel = optional(Text, **_doc("... only of this channel"))


class WorkingCopyBody(AdminArguments):
    text = Text(required=True, **_doc("The new text of rules/<id>.yaml"))


class ActivateBody(AdminArguments):
    rulesetId = Text(required=True)
    version = optional(Text, **_doc("null: unpin (the highest valid version serves)"))


class ApproveBody(AdminArguments):
    rulesetId = Text(required=True)
    version = Text(required=True)
    note = optional(Text, **_doc("Kept in the history (at most 500 characters)"))


class RulesetBody(AdminArguments):
    rulesetId = Text(required=True)


# --------------------------------------------------------------------------- answers
def _text(description: str = "", **metadata):
    """A text that may be null (e.g. no version serves)."""
    if description:
        metadata["description"] = description
    return fields.String(allow_none=True, metadata=metadata)


class RuleSetStatus(AdminAnswer):
    ok = fields.Boolean()
    rulesetId = _text("The rule set in service")
    version = _text()
    hash = _text("Its content hash")
    file = _text()
    pinned = fields.Boolean(allow_none=True)
    loadedAt = _text(format="date-time")
    rules = fields.Integer(allow_none=True)
    chunks = fields.Integer(allow_none=True)
    catalog = fields.Dict(allow_none=True, metadata={"description": "hash, offerings"})
    rulesets = fields.List(fields.String(), metadata={"description": "Every rule set in the rules folder"})
    versions = fields.List(fields.Dict(), metadata={"description": "status, active, pinned, lock state"})
    errors = fields.List(fields.Raw(), metadata={"description": "The rule files' problems"})
    buildFailure = _text("Why durable-rules refused this process's build")


class Overview(AdminAnswer):
    status = fields.Nested(RuleSetStatus)
    rulesets = fields.List(fields.Dict(), metadata={"description": "Per rule set: versions, lock state, activations"})
    lint = fields.Dict(metadata={"description": "files, errors, warnings, problems (file:line:column, rule, "
                                                "check, fix), acknowledged"})


class HistoryEntry(AdminAnswer):
    id = fields.String()
    rulesetId = fields.String()
    action = fields.String(metadata={"description": "save, record, approve, activate, rollback, unpin, "
                                                    "pin-before-save, experiment-..."})
    version = _text()
    fromVersion = _text()
    hash = _text()
    by = _text("Who: the admin key's fingerprint or the Studio login")
    at = fields.String(metadata={"format": "date-time"})


class Vocabulary(AdminAnswer):
    keys = fields.List(fields.Dict(), metadata={"description": "Property names of the rule set JSON Schema"})
    offerings = fields.List(fields.Dict())
    categories = fields.List(fields.String())
    channels = fields.List(fields.Dict())


class Explained(AdminAnswer):
    ruleset = fields.Dict(metadata={"description": "id, version, hash, file, limit"})
    facts = fields.Dict(metadata={"description": "The facts the rules saw"})
    rules = fields.List(fields.Dict(), metadata={"description": "Every rule: fired, or the condition that "
                                                                "failed with its line"})
    policies = fields.List(fields.Dict(), metadata={"description": "Every policy step"})
    items = fields.List(fields.Dict(), metadata={"description": "The final items"})
    engine = fields.Dict()
    context = fields.Dict(metadata={"description": "The context in the case format"})
    offerings = fields.Dict(metadata={"description": "The catalog details of the offerings, by id"})
    channels = fields.Dict()
    experiment = fields.Dict(metadata={"description": "A TMF680 query in a running experiment (no version "
                                                      "asked for): id, arm, holdout; its arm's version explains"})


class LintReport(AdminAnswer):
    file = fields.String()
    errors = fields.Integer()
    warnings = fields.Integer()
    problems = fields.List(fields.Dict(), metadata={"description": "line, column, rule, check (`code`), "
                                                                   "fix (`hint`), severity"})
    acknowledged = fields.Integer()


class CasesReport(AdminAnswer):
    cases = fields.String(metadata={"description": "The cases file"})
    ruleset = fields.Dict()
    results = fields.List(fields.Dict(), metadata={"description": "Per case: passed, expected vs actual, why"})
    coverage = fields.List(fields.Dict())
    coveragePercent = fields.Float()
    passed = fields.Integer()
    failed = fields.Integer()


class CaseAdded(AdminAnswer):
    file = fields.String()
    name = fields.String()
    line = fields.Integer()


class ImpactReport(AdminAnswer):
    old = fields.Dict()
    new = fields.Dict()
    rules = fields.List(fields.Dict(), metadata={"description": "The rules added, removed and changed"})
    contexts = fields.List(fields.Dict(), metadata={"description": "Per situation: items gained, lost, reordered"})
    summary = fields.Dict()
    offerings = fields.List(fields.Dict())
    names = fields.Dict()
    sources = fields.List(fields.Dict())
    skippedQueries = fields.Integer()
    recordedTraffic = fields.Dict(metadata={"description": "answers, changed, situations, offerings, skipped, line"})


class WorkingCopy(AdminAnswer):
    rulesetId = fields.String()
    file = fields.String()
    text = fields.String()
    etag = fields.String(metadata={"description": "Send it back in If-Match when saving"})


class Saved(AdminAnswer):
    file = fields.String()
    version = _text()
    hash = _text()
    etag = fields.String()
    done = fields.List(fields.String())
    lint = fields.Nested(LintReport)


class Activation(AdminAnswer):
    status = fields.Nested(RuleSetStatus)
    activation = fields.Nested(HistoryEntry, allow_none=True,
                               metadata={"description": "null: the version was already pinned"})


class LockReport(AdminAnswer):
    lockFile = fields.String()
    changes = fields.List(fields.Dict())
    refused = fields.List(fields.String())
