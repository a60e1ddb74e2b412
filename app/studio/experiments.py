"""The Studio's Experiments pages: the rule set's experiments, each one's
report with charts (inline SVG rendered here, no script, no CDN), and the
forms that start, stop, re-weight and promote (CSRF-protected posts behind
an admin key, like activation; recorded in the audit history)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ..auth import require_admin
from ..errors import TMFError
from ..experiments import service
from ..services import services
from . import bp


def _rid() -> str:
    return service.ruleset_id(services(), request.values.get("rulesetId") or None)


@bp.route("/experiments", methods=["GET"])
def experiments():
    rid = _rid()
    listing = service.listing(services(), rid)
    return render_template("studio/experiments.html", listing=listing, report=None, selected=None,
                           status=services().rules.status())


@bp.route("/experiments/<experiment_id>", methods=["GET"])
def experiment(experiment_id):
    rid = _rid()
    listing = service.listing(services(), rid)
    report, error = None, None
    try:
        report = service.report(services(), rid, experiment_id)
    except TMFError as exc:
        if exc.status == 404:
            raise
        error = exc.message
    selected = next((e for e in listing["experiments"] if e["id"] == experiment_id), None)
    return render_template("studio/experiments.html", listing=listing, report=report, selected=selected,
                           error=error, status=services().rules.status(),
                           versions={v["version"]: v for v in services().rules.versions(rid)})


@bp.route("/experiments/<experiment_id>/<action>", methods=["POST"])
def change_experiment(experiment_id, action):
    who = require_admin()
    if action not in service.ACTIONS:
        raise TMFError(404, f"No experiment action {action!r}", code="NOT_FOUND")
    rid = _rid()
    form = request.form
    weights = None
    if action == "weights":
        weights = {}
        for key, value in form.items():
            if key.startswith("weight."):
                try:
                    weights[key[len("weight."):]] = float(value)
                except ValueError:
                    flash(f"Not changed: weight {value!r} of {key[7:]} is not a number.", "error")
                    return redirect(url_for("studio.experiment", experiment_id=experiment_id, rulesetId=rid))
    expected = form.get("fileVersion")
    try:
        done = service.change(services(), rid, experiment_id, action, who, weights=weights,
                              arm=form.get("arm") or None,
                              expected_version=int(expected) if expected and expected.isdigit() else None,
                              activate=service.activation(services()))
    except TMFError as exc:
        if exc.status == 404:
            raise
        problems = (exc.details or {}).get("problems") if isinstance(exc.details, dict) else None
        flash(f"Not done: {exc.message}" + (": " + "; ".join(problems) if problems else ""), "error")
    else:
        experiment_done = done["experiment"]
        arms = ", ".join(f"{a['name']} {a['weight']:g} %" for a in experiment_done["arms"])
        flash(f"{experiment_id}: {action} done, now {experiment_done['status']} ({arms})"
              + (f"; {experiment_done['promoted']} promoted" if action == "promote" else "") + ".", "ok")
    return redirect(url_for("studio.experiment", experiment_id=experiment_id, rulesetId=rid))
