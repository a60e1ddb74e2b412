"""Routes shared by every TMF resource API: the collection, the item and the
hub. Schemas come from the spec definitions, which both validate requests
(in ResourceService) and describe them in the served OpenAPI document."""
from __future__ import annotations

from flask import current_app, jsonify, request
from flask_smorest import Blueprint

from ..errors import TMFError
from ..jsonbody import MERGE_PATCH_TYPES, read_json_object
from ..resources.query import parse_fields
from ..resources.service import ResourceKind, ResourceService

ERROR_CODES = ("400", "404", "405", "413", "415", "500")


def services():
    return current_app.extensions["reco"]


def base_url() -> str:
    configured = services().settings.public_base_url
    return (configured or request.host_url).rstrip("/")


def json_response(body, status: int = 200, headers: dict | None = None):
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_responses(schemas) -> dict:
    return {code: {"description": "TMF Error", "content": {
        "application/json": {"schema": schemas["Error"]}}} for code in ERROR_CODES}


def list_parameters() -> list[dict]:
    return [
        {"in": "query", "name": "fields", "schema": {"type": "string"},
         "description": "Comma-separated first-level attributes to return (id, href, @type always kept)"},
        {"in": "query", "name": "offset", "schema": {"type": "integer", "minimum": 0},
         "description": "Index of the first item to return"},
        {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 0},
         "description": "Maximum number of items to return"},
        {"in": "query", "name": "sort", "schema": {"type": "string"},
         "description": "Comma-separated attributes; a leading '-' sorts descending"},
    ]


def list_resources(service: ResourceService):
    page, total, query = service.list(request.args, services().settings.max_page_size)
    partial = len(page) < total
    return json_response(page, 206 if partial else 200, {
        "X-Total-Count": str(total), "X-Result-Count": str(len(page))})


def created(resource: dict):
    return json_response(resource, 201, {"Location": resource["href"]})


def add_hub_routes(blp: Blueprint, api: str, schemas) -> None:
    """`POST /hub` and `GET|DELETE /hub/{id}` of the TMF notification pattern."""
    hub_doc = {"responses": {"201": {"description": "Listener registered", "content": {
        "application/json": {"schema": schemas["EventSubscription"]}}}, **error_responses(schemas)},
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": schemas["EventSubscriptionInput"]}}}}

    @blp.route("/hub", methods=["POST"], endpoint="register_listener")
    @blp.doc(summary="Register a listener", **hub_doc)
    def register_listener():
        body = read_json_object()
        unknown = set(body) - {"callback", "query"}
        if unknown:
            raise TMFError(400, f"Unknown attribute(s) in hub: {', '.join(sorted(unknown))}")
        hub = services().events.register_hub(api, body.get("callback"), body.get("query"))
        location = f"{base_url()}{blp.url_prefix}/hub/{hub['id']}"
        return json_response(hub, 201, {"Location": location})

    @blp.route("/hub/<hub_id>", methods=["GET"], endpoint="get_listener")
    @blp.doc(summary="Retrieve a listener", responses={"200": {"description": "The listener", "content": {
        "application/json": {"schema": schemas["EventSubscription"]}}}, **error_responses(schemas)})
    def get_listener(hub_id):
        hub = services().events.get_hub(api, hub_id)
        if hub is None:
            raise TMFError(404, f"No hub with id {hub_id!r}", code="NOT_FOUND")
        return json_response(hub)

    @blp.route("/hub/<hub_id>", methods=["DELETE"], endpoint="unregister_listener")
    @blp.doc(summary="Unregister a listener", responses={"204": {"description": "Deleted"},
                                                         **error_responses(schemas)})
    def unregister_listener(hub_id):
        if not services().events.unregister_hub(api, hub_id):
            raise TMFError(404, f"No hub with id {hub_id!r}", code="NOT_FOUND")
        return "", 204


def resource_blueprint(name: str, kind: ResourceKind, schemas, *, url_prefix: str,
                       description: str, patchable: bool = True,
                       create_handler=None, create_responses: dict | None = None) -> Blueprint:
    """A complete TMF API for one managed entity: list, create, retrieve and,
    where the spec lists them, PATCH (merge patch) and DELETE; plus the hub.
    `create_handler` replaces the plain create where creation is a task."""
    blp = Blueprint(name, __name__, url_prefix=url_prefix, description=description)
    segment = kind.base_path.rsplit("/", 1)[-1]
    resource_content = {"application/json": {"schema": kind.resource_schema}}
    errors = error_responses(schemas)

    def service() -> ResourceService:
        return services().resources[kind.collection]

    @blp.route(f"/{segment}", methods=["GET"], endpoint="list")
    @blp.doc(summary=f"List or find {kind.type_name} objects", parameters=list_parameters(),
             responses={"200": {"description": "Success", "content": {"application/json": {
                 "schema": {"type": "array", "items": kind.resource_schema}}}},
                 "206": {"description": "Partial page"}, **errors})
    def list_view():
        return list_resources(service())

    @blp.route(f"/{segment}", methods=["POST"], endpoint="create")
    @blp.doc(summary=f"Create a {kind.type_name}",
             requestBody={"required": True, "content": {"application/json": {"schema": kind.create_schema}}},
             responses={"201": {"description": "Created", "content": resource_content},
                        **(create_responses or {}), **errors})
    def create_view():
        if create_handler is not None:
            return create_handler()
        return created(service().create(read_json_object(), base_url()))

    @blp.route(f"/{segment}/<resource_id>", methods=["GET"], endpoint="retrieve")
    @blp.doc(summary=f"Retrieve a {kind.type_name} by id", parameters=list_parameters()[:1],
             responses={"200": {"description": "Success", "content": resource_content}, **errors})
    def retrieve_view(resource_id):
        selected = parse_fields(request.args, kind.known_attributes)
        return json_response(service().get_selected(resource_id, selected))

    if patchable:
        @blp.route(f"/{segment}/<resource_id>", methods=["PATCH"], endpoint="patch")
        @blp.doc(summary=f"Update partially a {kind.type_name} (JSON merge patch)",
                 requestBody={"required": True, "content": {
                     content_type: {"schema": kind.update_schema or kind.create_schema}
                     for content_type in MERGE_PATCH_TYPES}},
                 responses={"200": {"description": "Updated", "content": resource_content}, **errors})
        def patch_view(resource_id):
            return json_response(service().patch(resource_id, read_json_object(MERGE_PATCH_TYPES)))

        @blp.route(f"/{segment}/<resource_id>", methods=["DELETE"], endpoint="delete")
        @blp.doc(summary=f"Delete a {kind.type_name}",
                 responses={"204": {"description": "Deleted"}, **errors})
        def delete_view(resource_id):
            service().delete(resource_id)
            return "", 204

    add_hub_routes(blp, kind.api, schemas)
    return blp
