"""Routes shared by every TMF resource API: the collection, the item and the
hub. Schemas come from the spec definitions, which both validate requests
(in ResourceService) and describe them in the served OpenAPI document."""
from __future__ import annotations

import copy
import re

import orjson

from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import current_app, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from ..errors import TMFError
from ..jsonbody import MERGE_PATCH_TYPES, read_json_object
from ..resources.query import OPERATORS
from ..resources.service import ResourceKind, ResourceService
from ..schemas.spec import DateTimeString, OneOrMany, TmfSchema
from ..services import services
from ..storable import CODE as UNSUPPORTED_CHARACTER, why_unstorable

ERROR_CODES = ("400", "404", "405", "413", "415", "500")


class ErrorSchema(Schema):
    """The body of every error this service sends: the TMF Error, always with
    code, reason, message, status and @type, plus `details` (per-field
    messages of a validation error) where there are any."""

    class Meta:
        title = "Error"
        description = ("TMF Error (code, reason, message, status, @type: Error); validation "
                       "errors add `details` with the messages per attribute")

    code = fields.String(required=True)
    reason = fields.String(required=True)
    message = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "HTTP status code"})
    type_ = fields.String(data_key="@type", required=True, validate=validate.OneOf(["Error"]))
    details = fields.Raw(metadata={"description": "Per-attribute messages (validation errors)"})
    referenceError = fields.String()


def _case_insensitive(name: str) -> str:
    """A regex matching `name` in any case (ASCII, plus the Kelvin sign that
    Python lower-cases to k), for JSON Schema, which has no flags."""
    out = []
    for char in name:
        if char.isalpha():
            extra = "\u212a" if char.lower() == "k" else ""
            out.append(f"[{char.upper()}{char.lower()}{extra}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


class _TmfConverter(OpenAPIConverter):
    """TMF objects are open for polymorphism (app/schemas/spec.py, TmfSchema):
    an unknown attribute is refused unless the object's @type names a subclass
    or it carries @schemaLocation, and then extension attributes are kept and
    returned (e.g. ExplainedRecommendationItem). The document says exactly
    that, with an anyOf, instead of a blanket `additionalProperties: false`."""

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        schema_cls = resolve_schema_cls(schema)
        if not issubclass(schema_cls, TmfSchema):
            return jsonschema
        if schema_cls.document_constraints:
            jsonschema["allOf"] = [*jsonschema.get("allOf", []), *schema_cls.document_constraints]
        if not schema_cls.polymorphic:
            return jsonschema
        jsonschema.pop("additionalProperties", None)
        names = list(jsonschema.get("properties", {}))
        own_types = "|".join(_case_insensitive(name) for name in sorted(schema_cls.tmf_types))
        jsonschema["anyOf"] = [
            {"title": "known attributes only",
             "properties": {name: {} for name in names}, "additionalProperties": False},
            {"title": "extension: @schemaLocation given",
             "required": ["@schemaLocation"],
             "properties": {"@schemaLocation": {"type": "string", "minLength": 1}}},
            {"title": "extension: @type names a subclass",
             "required": ["@type"],
             "properties": {"@type": {"type": "string", "not": {"pattern": f"^({own_types})$"}}}},
        ]
        jsonschema["description"] = (
            (jsonschema.get("description") or "").rstrip()
            + " Unknown attributes are refused unless @type names a subclass or"
              " @schemaLocation is given (TMF polymorphism).").lstrip()
        return jsonschema

    def field2property(self, field):
        ret = super().field2property(field)
        if isinstance(field, OneOrMany) and ret.get("type") == "array":
            # the TMF680 user guide sends one object where the spec has an array
            item = ret.pop("items")
            ret.pop("type")
            ret["anyOf"] = [{"type": "array", "items": item}, item]
        return ret


class TmfMarshmallowPlugin(MarshmallowPlugin):
    Converter = _TmfConverter


class ListLimitPlugin(BasePlugin):
    """Documents the configured largest page (`limit`), which is a setting and
    so unknown when the blueprints are declared."""

    def __init__(self, max_page_size: int):
        super().__init__()
        self.max_page_size = max_page_size

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if isinstance(parameter, dict) and parameter.get("in") == "query" \
                        and parameter.get("name") == "limit":
                    parameter["schema"]["maximum"] = self.max_page_size


def install_doc_fields(api) -> None:
    """Field classes of app.schemas that the generator must know."""
    api.register_field(DateTimeString, "string", "date-time")


def base_url() -> str:
    """What stored links start with: RECO_PUBLIC_BASE_URL when set (e.g.
    `https://api.example.com`), else "" so that links are stored relative
    (`/tmf-api/...`, resolved by a client against the URL it used, RFC 3986
    section 5). Never the request's Host or port: a link is stored once and
    read by everyone, so a client-chosen `Host: attacker.example` (or the
    port a resource happened to be created through) must not end up in it."""
    return (services().settings.public_base_url or "").rstrip("/")


def json_response(body, status: int = 200, headers: dict | None = None):
    """`body` as an application/json response, encoded by orjson (an instant
    recommendation's answer: about 25-55 µs against 160-280 µs for Flask's
    jsonify, measured with timeit). What orjson does not encode as Flask
    would (an integer beyond 64 bits, a datetime, a non-string key) goes
    through jsonify, so every body is answered as before."""
    try:
        response = current_app.response_class(
            orjson.dumps(body, option=orjson.OPT_PASSTHROUGH_DATETIME), mimetype="application/json")
    except TypeError:        # orjson.JSONEncodeError
        response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_responses(schemas=None) -> dict:
    """The TMF Error response for every error status an operation can give
    (`schemas` is accepted for the callers that pass their API's schemas)."""
    return {code: {"description": "TMF Error", "content": {
        "application/json": {"schema": ErrorSchema}}} for code in ERROR_CODES}


def selection_schema(schema_cls: type[TmfSchema]) -> type[TmfSchema]:
    """The resource as GET returns it: `fields=` may leave out any attribute
    but id, href and @type, so the answer's schema requires none (the full
    definition's `required` would make `?fields=name` non-conforming)."""
    copies = {}
    for name, field in schema_cls._declared_fields.items():
        copy_ = copy.copy(field)
        copy_.required = False
        copies[name] = copy_
    copies["__doc__"] = (f"{schema_cls.__doc__ or ''} As returned by GET: with `fields=`, only "
                         "the selected attributes and id, href, @type.").strip()
    return type(f"{schema_cls.__name__}_Selection", (schema_cls,), copies)


def _names(known_attributes) -> str:
    return "|".join(re.escape(name) for name in sorted(known_attributes))


def fields_parameter(known_attributes) -> dict:
    # Items are trimmed and empty ones skipped: `fields=` returns id, href, @type.
    return {"in": "query", "name": "fields", "style": "form", "explode": False,
            "schema": {"type": "array", "items": {
                "type": "string", "pattern": rf"^\s*({_names(known_attributes)})?\s*$"}},
            "description": "Comma-separated first-level attributes to return "
                           "(id, href, @type always kept); an unknown attribute is a 400. "
                           "The attributes of a stored subclass (@type/@schemaLocation "
                           "extension) can be selected too"}


#: How deep the document spells the sortable paths out (deeper ones are
#: accepted too; the document need not list every path of a recursive type).
SORT_PATH_DEPTH = 3


def _sort_paths(schema, depth: int = SORT_PATH_DEPTH) -> str:
    """A regex of the dotted paths below `schema` (a marshmallow schema
    instance) that `sort` accepts, as app/resources/query.py checks them:
    an attribute, then a sub-attribute of an object or of an array's
    objects, and anything after a TMF `Any` value or an object of free keys
    (never a comma or a NUL). Empty steps (`name.`) are dropped by the
    service, so dots may repeat."""
    alternatives = []
    for name in sorted(schema.fields):
        field = schema.fields[name]
        while isinstance(field, fields.List):
            field = field.inner
        if isinstance(field, fields.Nested):
            below = _sort_paths(field.schema, depth - 1) if depth > 1 else ""
            suffix = rf"(\.+({below}))?" if below else ""
        elif isinstance(field, (fields.String, fields.Number, fields.Boolean)):
            suffix = ""
        else:                                    # Raw (TMF Any), Dict
            suffix = r"(\.[^,\x00]*)?"
        alternatives.append(re.escape(name) + suffix)
    return "|".join(alternatives)


def list_parameters(known_attributes, schema=None) -> list[dict]:
    """The list operation's parameters; with the resource's `schema` (an
    instance), `sort` documents exactly the dotted paths it accepts."""
    names = _names(known_attributes)
    sort_item = rf"^\s*([+-]*({names})(\.[^,\x00]*)?)?\s*$"
    if schema is not None:
        others = _names(set(known_attributes) - set(schema.fields))
        paths = _sort_paths(schema) + (f"|{others}" if others else "")
        sort_item = rf"^\s*([+-]*({paths})\.*)?\s*$"
    return [
        fields_parameter(known_attributes),
        {"in": "query", "name": "offset", "schema": {"type": "integer", "minimum": 0},
         "description": "Index of the first item to return"},
        {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 0},
         "description": "Maximum number of items to return (at most RECO_MAX_PAGE_SIZE)"},
        {"in": "query", "name": "sort", "style": "form", "explode": False,
         "schema": {"type": "array", "items": {
             "type": "string", "pattern": sort_item}},
         "description": "Comma-separated attributes (dotted paths allowed); a leading '-' "
                        "sorts descending; an unknown attribute is a 400"},
    ]


MERGE_PATCH_DESCRIPTION = (
    "A JSON merge patch (RFC 7396): objects are merged, a null removes the attribute. "
    "Values and nulls follow the same rule at every depth: an object takes the attributes of "
    "its definition, and any other only when it is a subclass, declared by its @type or "
    "@schemaLocation in the patch or, not sent again, by the stored object's; a null for "
    "a name the object cannot have is a 400 like any unknown attribute.")

FILTER_DESCRIPTION = (
    "Any other query parameter filters: `attr=value`, dotted paths into objects and arrays "
    f"(`relatedParty.id=34`), a comma for OR, `.{'/.'.join(OPERATORS)}` suffixes. A filter "
    "on an unknown attribute is a 400.")


def list_resources(service: ResourceService):
    page, total, query = service.list(request.args, services().settings.max_page_size)
    partial = len(page) < total
    return json_response(page, 206 if partial else 200, {
        "X-Total-Count": str(total), "X-Result-Count": str(len(page))})


# Query parameters per endpoint; None: any (the list filters by attribute,
# the conversion report checks its own). Every other operation takes none.
QUERY_PARAMETERS = {"list": None, "conversion_report": None, "retrieve": {"fields"}}


SINGLE_PARAMETERS = ("fields", "offset", "limit", "sort")


def check_query_syntax() -> None:
    """What the document says of `fields`, `offset`, `limit` and `sort`: each
    at most once (`offset=0&offset=5` is not two pages), and `offset`/`limit`
    integers (`offset=` is none). No name or value may hold a character no
    store holds (app/storable.py: `name=a%00b` is a 400 on every store, not
    an empty list on one and a match on the other)."""
    for name, value in request.args.items(multi=True):
        why = why_unstorable(name) or why_unstorable(value)
        if why:
            raise TMFError(400, f"Query parameter {name!r} holds {why}, which this service "
                                "accepts in no text", code=UNSUPPORTED_CHARACTER)
    for name in SINGLE_PARAMETERS:
        values = request.args.getlist(name)
        if len(values) > 1:
            raise TMFError(400, f"Query parameter {name!r} is given {len(values)} times; "
                                "give it once", code="INVALID_QUERY")
        if name in ("offset", "limit") and values and not values[0].strip():
            raise TMFError(400, f"Query parameter {name!r} is empty; it takes a whole number",
                           code="INVALID_QUERY")


def refuse_unknown_parameters():
    """A query parameter an operation does not define is a 400, not ignored:
    `GET /customer/{id}?feilds=name` must not quietly return everything.
    A request without a query string (every create, an instant
    recommendation) has nothing to check: 12 -> 1 µs of thread CPU a
    request, without parsing the empty `args` into its NFC copy."""
    if not request.query_string:
        return None
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    allowed = QUERY_PARAMETERS.get(endpoint, set())
    check_query_syntax()
    if allowed is None:
        return None
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        known = f"; it takes {', '.join(sorted(allowed))}" if allowed else "; it takes none"
        raise TMFError(400, f"Unknown query parameter(s) {', '.join(map(repr, unknown))} "
                            f"for this operation{known}", code="INVALID_QUERY")
    return None


def operation_links(path: str, parameter: str, methods, what: str) -> dict:
    """OpenAPI links (OpenAPI 3.0.3 section 4.7.20) from a 201 to the
    operations on the created resource, its `id` as the path parameter: they
    tell clients, and schemathesis' stateful phase, how calls chain."""
    pointer = "#/paths/" + path.replace("~", "~0").replace("/", "~1")
    verbs = {"get": "Retrieve", "patch": "Patch", "delete": "Delete"}
    return {f"{verbs[method]}{what}": {
        "operationRef": f"{pointer}/{method}",
        "parameters": {parameter: "$response.body#/id"},
        "description": f"{verbs[method]} the created {what} by its id"} for method in methods}


def created(resource: dict):
    return json_response(resource, 201, {"Location": resource["href"]})


def add_hub_routes(blp: Blueprint, api: str, schemas) -> None:
    """`POST /hub` and `GET|DELETE /hub/{id}` of the TMF notification pattern."""
    hub_links = operation_links(f"{blp.url_prefix}/hub/{{hub_id}}", "hub_id", ("get", "delete"),
                                "Listener")
    hub_doc = {"responses": {"201": {"description": "Listener registered", "links": hub_links,
                                     "content": {"application/json": {
                                         "schema": schemas["EventSubscription"]}}},
                             **error_responses(schemas)},
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": schemas["EventSubscriptionInput"]}}}}

    @blp.route("/hub", methods=["POST"], endpoint="register_listener")
    @blp.doc(summary="Register a listener", **hub_doc)
    def register_listener():
        body = read_json_object()
        if "id" in body:     # as for every resource: the server names the hub
            raise TMFError(400, "id is set by the server; do not send it (the registered "
                                "hub is in the answer, its href in Location)",
                           code="SERVER_OWNED_ATTRIBUTE")
        unknown = set(body) - {"callback", "query"}
        if unknown:
            raise TMFError(400, f"Unknown attribute(s) in hub: {', '.join(sorted(unknown))}",
                           code="UNKNOWN_ATTRIBUTE")
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
                       create_handler=None, create_responses: dict | None = None,
                       item_methods: tuple[str, ...] | None = None) -> Blueprint:
    """A complete TMF API for one managed entity: list, create, retrieve and,
    where the spec lists them, PATCH (merge patch) and DELETE; plus the hub.
    `create_handler` replaces the plain create where creation is a task;
    `item_methods` are the methods on `/{id}` when the API adds its own."""
    blp = Blueprint(name, __name__, url_prefix=url_prefix, description=description)
    blp.before_request(refuse_unknown_parameters)
    segment = kind.base_path.rsplit("/", 1)[-1]
    resource_content = {"application/json": {"schema": kind.resource_schema}}
    selected = selection_schema(kind.resource_schema)
    selected_content = {"application/json": {"schema": selected}}
    errors = error_responses(schemas)
    list_content = {"application/json": {"schema": {"type": "array", "items": selected}}}

    def service() -> ResourceService:
        return services().resources[kind.collection]

    @blp.route(f"/{segment}", methods=["GET"], endpoint="list")
    @blp.doc(summary=f"List or find {kind.type_name} objects", description=FILTER_DESCRIPTION,
             parameters=list_parameters(kind.known_attributes, kind.resource_schema()),
             responses={"200": {"description": "Success", "content": list_content},
                        "206": {"description": "Partial page (see X-Total-Count)",
                                "content": list_content}, **errors})
    def list_view():
        return list_resources(service())

    item_methods = item_methods or (("get", "patch", "delete") if patchable else ("get",))
    links = operation_links(f"{url_prefix}/{segment}/{{resource_id}}", "resource_id",
                            item_methods, kind.type_name)

    @blp.route(f"/{segment}", methods=["POST"], endpoint="create")
    @blp.doc(summary=f"Create a {kind.type_name}",
             requestBody={"required": True, "content": {"application/json": {"schema": kind.create_schema}}},
             responses={"201": {"description": "Created", "content": resource_content, "links": links},
                        **(create_responses or {}), **errors})
    def create_view():
        if create_handler is not None:
            return create_handler()
        return created(service().create(read_json_object(), base_url(), text_checked=True))

    @blp.route(f"/{segment}/<resource_id>", methods=["GET"], endpoint="retrieve")
    @blp.doc(summary=f"Retrieve a {kind.type_name} by id",
             parameters=[fields_parameter(kind.known_attributes)],
             responses={"200": {"description": "Success", "content": selected_content}, **errors})
    def retrieve_view(resource_id):
        return json_response(service().get_selected(resource_id, request.args))

    if patchable:
        @blp.route(f"/{segment}/<resource_id>", methods=["PATCH"], endpoint="patch")
        @blp.doc(summary=f"Update partially a {kind.type_name} (JSON merge patch)",
                 description=MERGE_PATCH_DESCRIPTION,
                 requestBody={"required": True, "content": {
                     content_type: {"schema": kind.update_schema or kind.create_schema}
                     for content_type in MERGE_PATCH_TYPES}},
                 responses={"200": {"description": "Updated", "content": resource_content}, **errors})
        def patch_view(resource_id):
            return json_response(service().patch(resource_id, read_json_object(MERGE_PATCH_TYPES),
                                                 text_checked=True))

        @blp.route(f"/{segment}/<resource_id>", methods=["DELETE"], endpoint="delete")
        @blp.doc(summary=f"Delete a {kind.type_name}",
                 responses={"204": {"description": "Deleted"}, **errors})
        def delete_view(resource_id):
            service().delete(resource_id)
            return "", 204

    add_hub_routes(blp, kind.api, schemas)
    return blp
