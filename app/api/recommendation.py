"""TMF680 Recommendation Management v4.0.0.

Served at /tmf-api/recommendationManagement/v4: the spec's basePath
`/customer/v4/` is a known error in the published document.
"""
from __future__ import annotations

from ..errors import TMFError
from ..jsonbody import read_json_object
from ..recommend import RecommenderUnavailable
from ..recommend.items import ruleset_headers, tmf_items
from ..recommend.query import KIND, URL_PREFIX, schemas
from ..decisions.recording import record_answer
from .tmf import base_url, created, json_response, resource_blueprint, services


def _create_recommendation():
    reco = services()
    service = reco.resources[KIND.collection]
    # recommendationItem, id and href are server-owned: new_resource refuses them.
    # An instant answer is not stored as a resource: it gets its id and href
    # from the decision log, which records it in the background.
    resource, facts = service.checked_new_resource(read_json_object(), base_url(), stored=False,
                                                   text_checked=True)
    if resource.get("instantSyncRecommendation"):
        contexts = [] if reco.decisions is not None else None
        try:
            result = reco.recommender.recommend(resource, contexts=contexts, facts=facts)
        except RecommenderUnavailable as exc:
            # the rule files' problems name server paths: for the log only
            raise TMFError(503, "No valid rule set is active; the service cannot recommend "
                                "now, retry later", code="RULESET_UNAVAILABLE",
                           headers={"Retry-After": "30"}, log_detail=str(exc)) from None
        if reco.decisions is not None:
            resource = record_answer(reco.decisions, resource, result, contexts[0],
                                     KIND.base_path, base_url())
        resource["state"] = "done"
        if result.experiment:
            resource["experiment"] = dict(result.experiment)
        resource["recommendationItem"] = tmf_items(result, base_url())
        return json_response(resource, 200, ruleset_headers(result))
    resource = {**service.identify({}, base_url()), **resource, "state": "accepted"}
    reco.jobs.enqueue(resource["id"], base_url())
    stored = service.insert(resource)
    reco.jobs.wake()
    return created(stored)


blp = resource_blueprint(
    "recommendationManagement", KIND, schemas, url_prefix=URL_PREFIX,
    description="TMF680 Recommendation Management",
    patchable=False, create_handler=_create_recommendation,
    create_responses={"200": {
        "description": "instantSyncRecommendation: the ranked items, state done, with the id "
                       "and href under which the decision log keeps the answer",
        "content": {"application/json": {"schema": KIND.resource_schema}}}})
