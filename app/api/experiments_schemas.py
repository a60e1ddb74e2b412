"""The arguments and answers of /admin/experiments (app/api/experiments.py)
as marshmallow schemas: flask-smorest parses each request with the
argument schemas and generates the OpenAPI document from them (fields and
refusals: app/schemas/admin.py). The answer schemas document what
app/experiments/service.py builds."""
from __future__ import annotations

from marshmallow import fields, validate

from ..schemas.admin import AdminAnswer, AdminArguments, Text, WholeNumber, optional

FORMATS = ("json", "text")
STATUSES = ("draft", "running", "stopped", "completed")
METRICS = ("shown", "clicked", "leads", "accepted")
_RULESET = {"description": "The rule set (default: the one in service)"}


# --------------------------------------------------------------------------- arguments
class RulesetQuery(AdminArguments):
    rulesetId = optional(Text, metadata=_RULESET)


class ReportQuery(RulesetQuery):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS, error="format={input!r}: json or text"),
                           metadata={"description": "text: as `flask experiments report` prints it"})


class ChangeBody(AdminArguments):
    """A change's body, which may be left out (an empty body)."""

    body_optional = True

    rulesetId = optional(Text, metadata=_RULESET)
    fileVersion = optional(WholeNumber, metadata={
        "description": "The experiments file's version read: a change made since is refused (409)"})


class WeightsBody(ChangeBody):
    # the arms are the experiment's: app/experiments/service.py checks the
    # names, the range and the sum, and names the arms in its refusal
    weights = fields.Raw(load_default=None, metadata={
        "type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 100},
        "description": "Every arm's percentage of the experiment's traffic (two decimals at most, 100 in all)"})


class PromoteBody(ChangeBody):
    arm = Text(required=True, refusal="`arm` must name the arm to promote",
               metadata={"description": "The arm whose version is activated"})


# --------------------------------------------------------------------------- answers
class Arm(AdminAnswer):
    name = fields.String()
    version = fields.String(allow_none=True)
    holdout = fields.Boolean()
    weight = fields.Float(metadata={"description": "percent of the experiment's traffic"})


class Experiment(AdminAnswer):
    id = fields.String()
    name = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    start = fields.String(allow_none=True, metadata={"format": "date-time"})
    end = fields.String(allow_none=True, metadata={"format": "date-time"})
    channels = fields.List(fields.String())
    primaryMetric = fields.String(validate=validate.OneOf(METRICS))
    control = fields.String()
    promoted = fields.String(allow_none=True)
    arms = fields.List(fields.Nested(Arm))


class Listing(AdminAnswer):
    rulesetId = fields.String()
    file = fields.String(metadata={"description": "The experiments file"})
    version = fields.Integer(allow_none=True, metadata={"description": "Its version (send as fileVersion)"})
    experiments = fields.List(fields.Nested(Experiment))
    running = fields.List(fields.Raw(), metadata={"description": "The experiments that serve in this worker"})
    problems = fields.List(fields.Dict(), metadata={"description": "The experiments file's problems (file:line)"})


class Changed(AdminAnswer):
    experiment = fields.Nested(Experiment)
    fileVersion = fields.Integer(metadata={"description": "The experiments file's version now"})
    history = fields.List(fields.Dict(), metadata={"description": "The audit history's new entries (who, when)"})


class Interval(AdminAnswer):
    decisions = fields.Integer()
    rate = fields.Float()
    low = fields.Float()
    high = fields.Float()


class Uplift(AdminAnswer):
    difference = fields.Float()
    low = fields.Float()
    high = fields.Float()
    pValue = fields.Float()
    significant = fields.Boolean()


class Rates(AdminAnswer):
    shown = fields.Nested(Interval)
    clicked = fields.Nested(Interval)
    leads = fields.Nested(Interval)
    accepted = fields.Nested(Interval)


class ArmReport(Arm):
    control = fields.Boolean()
    decisions = fields.Integer()
    items = fields.Integer()
    shown = fields.Integer()
    clicked = fields.Integer()
    leads = fields.Integer()
    accepted = fields.Integer()
    rates = fields.Nested(Rates, metadata={"description": "per metric: decisions with such an item per decision, "
                                                          "95 % Wilson interval"})
    uplift = fields.Nested(Uplift, allow_none=True, metadata={
        "description": "primary metric's rate minus the control's, always-valid 95 % interval and p-value (mSPRT)"})


class SampleRatio(AdminAnswer):
    chiSquare = fields.Float()
    df = fields.Integer()
    pValue = fields.Float()
    mismatch = fields.Boolean()
    warning = fields.String(allow_none=True)
    unexpectedArms = fields.List(fields.String(), metadata={
        "description": "arms at weight 0 that received decisions (a mismatch)"})


class Report(AdminAnswer):
    id = fields.String()
    rulesetId = fields.String()
    status = fields.String()
    primaryMetric = fields.String()
    control = fields.String()
    generatedAt = fields.String(metadata={"format": "date-time"})
    arms = fields.List(fields.Nested(ArmReport))
    sampleRatio = fields.Nested(SampleRatio)
    method = fields.String(metadata={"description": "the statistics used, in words"})
