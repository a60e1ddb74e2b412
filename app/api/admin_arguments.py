"""How the admin blueprints (/admin/rules, /admin/experiments) take their
arguments through flask-smorest: `@blp.arguments(Schema)` parses the body
(or `location="query"`, the query string) with a marshmallow schema and
documents it in the OpenAPI document, as flask-smorest intends; this module
makes that parsing answer as the rest of this service does.

- The body is read by app/jsonbody.py, as every body of this service:
  Content-Type application/json (else 415 UNSUPPORTED_MEDIA_TYPE), the one
  size limit (413), content codings, strict JSON (no NaN, duplicate keys,
  lone surrogates; 400 INVALID_JSON), an object (400 INVALID_BODY), not
  webargs' own lenient reader (which takes any content type as no body).
  A schema with `body_optional = True` takes an empty body as {}.
- A refused attribute is a 400 TMF Error, not flask-smorest's default 422
  `{"code", "status", "errors"}`: INVALID_BODY (INVALID_QUERY for the
  query string) with the message of the first refused attribute in the
  schema's declared order (app/schemas/admin.py), as these endpoints have
  always answered. (app/error_handlers.py turns any other smorest 422 into
  a generic 400 INVALID_BODY; these messages are more precise.)
- `key_always`: the changes that need an admin key even when none is
  configured for reading ask for it before the body is parsed, so nothing
  about a body is answered to a caller without a key.
- `tmf_errors`: the TMF Error body documented for the error statuses.
"""
from __future__ import annotations

import functools

from flask_smorest import Blueprint
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

from ..auth import require_admin
from ..errors import TMFError
from ..jsonbody import read_json_object
from ..schemas.admin import first_refusal
from .tmf import ErrorSchema

#: the locations whose refusals are INVALID_QUERY; any other, INVALID_BODY
QUERY_LOCATIONS = ("query", "querystring")
#: webargs' status for a refused argument, documented for each operation
#: that takes arguments (app/factory.py: TmfApi documents it as the TMF Error)
REFUSED = 400


class AdminArgumentsParser(FlaskParser):
    """webargs' Flask parser with this service's body reader and errors."""

    DEFAULT_VALIDATION_STATUS = REFUSED

    def load_json(self, req, schema):
        if schema.body_optional and not req.get_data(cache=True):
            return {}
        return read_json_object()

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        (location, messages), = error.messages.items()   # webargs: {location: messages}
        code = "INVALID_QUERY" if location in QUERY_LOCATIONS else "INVALID_BODY"
        raise TMFError(REFUSED, first_refusal(schema, messages), code=code)


class AdminBlueprint(Blueprint):
    """A blueprint whose `arguments` parse with AdminArgumentsParser."""

    ARGUMENTS_PARSER = AdminArgumentsParser()


def key_always(view):
    """The view gets `who` (the admin key's identity, for the history)
    from require_admin(), asked before anything of the request is parsed:
    403 ADMIN_KEY_REQUIRED without configured keys, 401 without a valid key,
    403 CSRF_FAILED for a Studio session without its token. Put it above
    `@blp.arguments`, so it runs first."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        return view(*args, who=require_admin(), **kwargs)
    return wrapper


def _never_copied(schema: Schema) -> Schema:
    """`schema`, which copy.deepcopy gives back as it is (it looks the hook up
    on the instance): for a schema instance that only documents, which
    neither flask-smorest nor apispec changes."""
    schema.__deepcopy__ = lambda memo: schema
    return schema


#: The ErrorSchema instance of every documented error answer. Given the
#: class, flask-smorest's alt_response builds an instance per status, and
#: every later decorator of the view deep-copies the view's doc to add to it,
#: these instances with their fields too (1,105 schema copies, 90 % of the
#: objects copied, for the 28 admin views at import). The document is the
#: same (the schema's class and options name and describe it; the served
#: document is compared byte for byte with the one before this change).
ERROR_DOC_SCHEMA = _never_copied(ErrorSchema())


def tmf_errors(blp: Blueprint, *statuses: int):
    """Document `statuses` as answered with the TMF Error body."""
    def decorate(view):
        for status in statuses:
            view = blp.alt_response(status, schema=ERROR_DOC_SCHEMA, description="TMF Error")(view)
        return view
    return decorate

