"""flask-smorest's Api, with the OpenAPI document built on first need instead
of in every process that builds the app.

flask-smorest (0.47) documents a blueprint as it registers it:
`Api.register_blueprint` calls `Blueprint.register_views_in_doc`, which
deep-copies every operation's doc and has apispec resolve the marshmallow
schemas, then tags the spec. That was about 40 % of create_app's CPU
(cProfile, 0.4 of 1.0 s), paid by every gunicorn worker's boot and every
`flask ...` command, though only /openapi.json, /docs and `flask openapi`
read the document.

`DeferredDocApi.register_blueprint` registers the blueprint's routes at once
(requests are served exactly as before) and queues its documentation; the
first read of `api.spec` (flask-smorest's /openapi.json view, its /docs page,
`flask openapi print|write`, or any caller) documents the queued blueprints
in their registration order, with the same arguments flask-smorest passes,
before it answers. The document is therefore the one the eager build gives,
byte for byte (tests/api/test_deferred_openapi.py compares them).

Thread-safe: gthread workers may serve two first /openapi.json requests at
once; the first documents under a lock, the other waits for it, and no one
reads a half-documented spec (the count of documented blueprints moves
only after each one is complete). Re-entrant: a read of `api.spec` by the
documenting thread itself (a plugin, a doc callback) gets the spec being
built, as under the eager build.
"""
from __future__ import annotations

import threading

from flask_smorest import Api


class DeferredDocApi(Api):
    """An Api whose blueprints are documented on the first read of `spec`.

    Same constructor and methods as flask_smorest.Api; `spec` is the
    apispec.APISpec, complete whenever it is read."""

    def __init__(self, *args, **kwargs):
        self._doc_lock = threading.RLock()
        self._documenting = False
        #: (blueprint, name, parameters) in registration order
        self._doc_queue: list[tuple] = []
        #: how many of _doc_queue are in the spec (moves after each one is complete)
        self._documented = 0
        self._spec = None
        super().__init__(*args, **kwargs)

    @property
    def spec(self):
        """The OpenAPI document (apispec.APISpec) with every registered
        blueprint in it: the queued ones are documented first."""
        if self._documented < len(self._doc_queue):
            with self._doc_lock:
                if not self._documenting:
                    self._document_queued()
        return self._spec

    @spec.setter
    def spec(self, value) -> None:
        # flask-smorest sets it: None in __init__, the APISpec in init_app
        self._spec = value

    def _document_queued(self) -> None:
        """What flask_smorest.Api.register_blueprint does after registering
        the routes, for each queued blueprint, in order (caller holds the lock)."""
        self._documenting = True
        try:
            while self._documented < len(self._doc_queue):
                blp, name, parameters = self._doc_queue[self._documented]
                blp.register_views_in_doc(self, self._app, self._spec,
                                          name=name, parameters=parameters)
                self._spec.tag({"name": name, "description": blp.description})
                self._documented += 1
        finally:
            self._documenting = False

    def register_blueprint(self, blp, *, parameters=None, **options):
        """As flask_smorest.Api.register_blueprint (routes registered now),
        with the blueprint's documentation queued for the first read of
        `spec`."""
        blp_name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][blp_name] = self
        self._app.register_blueprint(blp, **options)
        with self._doc_lock:
            self._doc_queue.append((blp, blp_name, parameters))

    @property
    def documented(self) -> bool:
        """Whether every registered blueprint is in the spec yet (for tests
        and diagnostics: reading it builds nothing)."""
        return self._documented == len(self._doc_queue)
