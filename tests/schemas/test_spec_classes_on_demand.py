"""SpecSchemas (app/schemas/spec.py) builds a definition's schema class when
it is first asked for, not every definition of the file at import; one class
per name, also when threads ask at once (two classes of one name would be
two components in the OpenAPI document)."""
from __future__ import annotations

import threading

import pytest

from app.schemas.spec import SpecSchemas

SPEC = "TMF629-Customer-v4.0.0.swagger.json"


def test_classes_are_built_when_asked_for_and_their_nested_ones_when_used():
    schemas = SpecSchemas(SPEC, "TMF629OnDemand")
    assert schemas.classes == {}
    customer = schemas["Customer_Create"]
    assert set(schemas.classes) == {"Customer_Create"}
    assert schemas["Customer_Create"] is customer
    loaded = customer().load({"name": "Ada", "engagedParty": {"id": "p1", "@referredType": "Individual"}})
    assert loaded["engagedParty"]["id"] == "p1"
    assert "RelatedParty" in schemas.classes                   # built by the Nested field it loaded through
    assert len(schemas.classes) < len(schemas.definitions)


def test_threads_asking_at_once_get_one_class():
    schemas = SpecSchemas(SPEC, "TMF629AtOnce")
    readers = 8
    start = threading.Barrier(readers)
    got = [None] * readers

    def ask(index):
        start.wait()
        got[index] = schemas["Customer"]

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len({id(cls) for cls in got}) == 1 and got[0] is not None


def test_a_definition_that_is_no_object_is_no_class():
    schemas = SpecSchemas(SPEC, "TMF629NoObject")
    not_objects = [name for name, definition in schemas.definitions.items()
                   if definition.get("type") != "object" and "properties" not in definition]
    for name in ["NoSuchDefinition", *not_objects]:
        with pytest.raises(KeyError):
            schemas[name]
    assert schemas.classes == {}
