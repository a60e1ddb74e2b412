"""recommendationReaction: this service's TMF680 extension for what happened
to recommended items (app/decisions/reactions.py). Under the TMF680 base
path; its notifications go to the TMF680 hub (`.../recommendationManagement/v4/hub`)."""
from __future__ import annotations

import datetime as dt

from flask import request
from flask_smorest import Blueprint

from ..decisions.reactions import KIND, URL_PREFIX, answered_at, create_reaction
from ..decisions.service import find_recommendation
from ..jsonbody import read_json_object
from ..recommend.query import KIND as QUERY_KIND
from .tmf import (FILTER_DESCRIPTION, base_url, error_responses, fields_parameter, json_response,
                  list_parameters, list_resources, operation_links, refuse_unknown_parameters,
                  selection_schema, services)

blp = Blueprint("recommendationReaction", __name__, url_prefix=URL_PREFIX,
                description="recommendationReaction (this service's TMF680 extension): shown, "
                            "clicked, accepted, rejected, per recommended item")
blp.before_request(refuse_unknown_parameters)

_SEGMENT = KIND.base_path.rsplit("/", 1)[-1]
_SELECTION = selection_schema(KIND.resource_schema)
_SELECTED = {"application/json": {"schema": _SELECTION}}
_LIST = {"application/json": {"schema": {"type": "array", "items": _SELECTION}}}
_ONE = {"application/json": {"schema": KIND.resource_schema}}


def _service():
    return services().resources[KIND.collection]


@blp.route(f"/{_SEGMENT}", methods=["GET"], endpoint="list")
@blp.doc(summary="List or find RecommendationReaction objects", description=FILTER_DESCRIPTION,
         parameters=list_parameters(KIND.known_attributes, KIND.resource_schema()),
         responses={"200": {"description": "Success", "content": _LIST},
                    "206": {"description": "Partial page (see X-Total-Count)", "content": _LIST},
                    **error_responses()})
def list_reactions():
    return list_resources(_service())


@blp.route(f"/{_SEGMENT}", methods=["POST"], endpoint="create")
@blp.doc(summary="Report a reaction to a recommended item",
         description="Idempotent per (recommendation, item, reactionType): the first POST "
                     "answers 201, a repeated one 200 with the same reaction. 404 "
                     "RECOMMENDATION_NOT_FOUND / RECOMMENDATION_ITEM_NOT_FOUND for an unknown "
                     "query or item; 400 for a reactionType outside the list, or a "
                     "reactionDate in the future or before the answer (or the earlier time its "
                     "query was evaluated for; 5 minutes of clock "
                     "skew allowed) or before the retention window.",
         requestBody={"required": True, "content": {"application/json": {
             "schema": KIND.create_schema}}},
         responses={"201": {"description": "Created", "content": _ONE, "links": operation_links(
             f"{URL_PREFIX}/{_SEGMENT}/{{resource_id}}", "resource_id", ("get",), KIND.type_name)},
             "200": {"description": "The same reaction, already reported", "content": _ONE},
             **error_responses()})
def create():
    reco = services()
    queries = reco.resources[QUERY_KIND.collection]
    reaction, made = create_reaction(
        _service(), read_json_object(), base_url(), find_recommendation(reco),
        decided_at=lambda decision_id: answered_at(decision_id, queries.recorded),
        retention=dt.timedelta(days=reco.settings.decision_retention_days))
    return json_response(reaction, 201 if made else 200, {"Location": reaction["href"]})


@blp.route(f"/{_SEGMENT}/<resource_id>", methods=["GET"], endpoint="retrieve")
@blp.doc(summary="Retrieve a RecommendationReaction by id",
         parameters=[fields_parameter(KIND.known_attributes)],
         responses={"200": {"description": "Success", "content": _SELECTED}, **error_responses()})
def retrieve(resource_id):
    return json_response(_service().get_selected(resource_id, request.args))
