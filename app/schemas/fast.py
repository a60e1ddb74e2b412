"""A fast path for loading valid bodies: msgspec structs generated from the
marshmallow schemas of app/schemas/spec.py, used before marshmallow.

Marshmallow costs tens of microseconds per object of a body; msgspec checks
the same types in C. The structs are generated from the marshmallow schema
classes themselves (which spec.py generates from the vendored TMF Swagger
definitions, with each API's corrections), so the two cannot drift: every
field class and validator the generator knows is translated, and anything
else becomes a type no value satisfies, which sends the body to marshmallow.

The contract (tests/schemas/test_fast_validation.py checks it on generated bodies):

* `FastLoader.decode(data)` returns exactly what `schema.load(data)` would
  return (same keys, same values and types: `1` sent for a number becomes
  `1.0`, a single object sent for a OneOrMany array becomes a one-item list;
  declared attributes in the schema's order, extension attributes after
  them, whose order marshmallow leaves undefined), or None when it cannot
  tell ("unsure").
* It never accepts a body marshmallow refuses. It is allowed to be unsure of
  a body marshmallow accepts; `FastLoader.load` then asks marshmallow, so
  every 400 is phrased by marshmallow exactly as before.

The TMF polymorphism rule (TmfSchema.is_extension: an object whose @type
names a subclass, or that carries @schemaLocation, may hold extension
attributes, kept as sent) depends on each object's values, which a struct
cannot express: the structs ignore undeclared names, and `_add_extensions`
then walks the body's declared objects, keeps the undeclared attributes of
extension objects as marshmallow does, and answers "unsure" for any other
object that has one (marshmallow phrases that 400).
"""
from __future__ import annotations

import itertools
import sys
import threading
import types
from typing import Any, Literal

import msgspec
from marshmallow import RAISE, Schema, fields, missing, validate

from ..timeutil import parse_request_datetime
from .spec import DateTimeString, OneOrMany, TmfSchema

#: The module the generated structs live in, so that msgspec resolves their
#: (string) annotations, recursive ones included (a CartItem holds CartItems).
_MODULE = types.ModuleType("app.schemas._fast_structs")
_MODULE.msgspec = msgspec
_MODULE.Any = Any
_MODULE.Literal = Literal
_MODULE.typing = sys.modules["typing"]
sys.modules[_MODULE.__name__] = _MODULE
_serial = itertools.count()


class Unsure:
    """The type of a field the generator cannot translate: msgspec accepts
    no JSON value for it, so a body that sends the field goes to marshmallow."""


_MODULE.Unsure = Unsure


def _check_datetime(value) -> None:
    """DateTimeString's check: raises ValueError (msgspec makes it a
    ValidationError) unless parse_datetime reads `value` as a date-time that
    UTC can represent (DateTimeOutOfRange is a ValueError too)."""
    if parse_request_datetime(value) is None:
        raise ValueError("Not a valid ISO 8601 date-time.")


def _check_datetimes(values) -> None:
    for value in values:
        _check_datetime(value)


class _Generator:
    """Translates schema classes into struct classes, one per schema class
    (recursion through their names in _MODULE)."""

    def __init__(self):
        self.names: dict[type, str] = {}
        #: the classes named since the outermost struct_name call began
        #: (None between calls)
        self._pending: list[type] | None = None

    def struct_name(self, schema_cls: type) -> str:
        """The name in _MODULE of `schema_cls`'s struct, generated on first
        use. A class is named before its struct is built (a recursive one
        refers to itself by name), so a failure anywhere in one outermost
        call forgets every class that call named: a struct built on the way
        may refer by name to the one that failed, which no later call would
        define (it gets a new name), and would be unusable for good."""
        name = self.names.get(schema_cls)
        if name is not None:
            return name
        outermost = self._pending is None
        if outermost:
            self._pending = []
        try:
            name = self.names[schema_cls] = f"{schema_cls.__name__}_{next(_serial)}"
            self._pending.append(schema_cls)
            self._build(schema_cls, name)
        except Exception:
            if outermost:
                for named in self._pending:
                    stale = self.names.pop(named)
                    if hasattr(_MODULE, stale):
                        delattr(_MODULE, stale)
            raise
        finally:
            if outermost:
                self._pending = None
        return name

    def _build(self, schema_cls: type, name: str) -> None:
        _refuse_hooks(schema_cls)
        schema = schema_cls()
        struct_fields = []
        checks: list[tuple[str, object]] = []      # (attribute, check of its value)
        wraps: list[tuple[str, str]] = []          # (attribute, struct name): OneOrMany
        for index, (key, field) in enumerate(schema.load_fields.items()):
            attribute = f"f{index}"
            if field.load_default is not missing:
                raise TypeError(f"{schema_cls.__name__}.{key} has a load default")
            annotation, check, single = self._annotation(field)
            if field.data_key is not None and field.data_key != key:
                annotation, check, single = "Unsure", None, None
            if check is not None:
                checks.append((attribute, check))
            if single is not None:
                wraps.append((attribute, single))
            if field.required:
                struct_fields.append((attribute, annotation, msgspec.field(name=key)))
            else:
                struct_fields.append((attribute, f"{annotation} | msgspec.UnsetType",
                                      msgspec.field(default=msgspec.UNSET, name=key)))
        namespace = {}
        if checks or wraps:
            namespace["__post_init__"] = _post_init(checks, wraps)
        struct = msgspec.defstruct(name, struct_fields, kw_only=True,
                                   module=_MODULE.__name__, namespace=namespace)
        setattr(_MODULE, name, struct)

    def _annotation(self, field) -> tuple[str, object, str | None]:
        """(type annotation, check of a present value or None, struct name of
        a OneOrMany's item or None) of one marshmallow field."""
        if field.allow_none and type(field) is not fields.Raw:
            return "Unsure", None, None
        kind = type(field)
        if kind is fields.Raw:
            return ("Any", None, None) if not field.validators else ("Unsure", None, None)
        if kind is DateTimeString and not field.validators:
            return "str", _check_datetime, None
        if kind is fields.String:
            return self._string(field.validators), None, None
        if kind is fields.Integer and field.strict and not field.validators:
            return "int", None, None
        if kind is fields.Float and not field.allow_nan and not field.validators:
            return "float", None, None
        if kind is fields.Boolean and not field.validators:
            return "bool", None, None
        if kind is fields.Dict and field.key_field is None and field.value_field is None \
                and not field.validators:
            return "dict", None, None
        if kind is fields.Nested and not field.validators and not getattr(field, "many", False) \
                and field.only is None and not field.exclude and field.unknown is None:
            return self._nested(field), None, None
        if kind in (fields.List, OneOrMany) and not field.validators:
            return self._list(field, kind is OneOrMany)
        return "Unsure", None, None

    def _string(self, validators) -> str:
        if not validators:
            return "str"
        if len(validators) == 1 and type(validators[0]) is validate.OneOf:
            choices = validators[0].choices
            if choices and all(isinstance(choice, str) for choice in choices):
                return f"Literal[{', '.join(repr(choice) for choice in choices)}]"
        if len(validators) == 1 and type(validators[0]) is validate.Length:
            length = validators[0]
            if length.equal is None and length.max is None and length.min is not None:
                return f"typing.Annotated[str, msgspec.Meta(min_length={int(length.min)})]"
        return "Unsure"

    def _nested(self, field) -> str:
        schema = field.schema
        if not isinstance(schema, Schema) or schema.only is not None or schema.exclude \
                or schema.many or schema.partial:
            return "Unsure"
        return self.struct_name(type(schema))

    def _list(self, field, one_or_many: bool):
        inner = field.inner
        if inner.allow_none and type(inner) is not fields.Raw:
            return "Unsure", None, None
        annotation, check, single = self._annotation(inner)
        if single is not None or (check is not None and check is not _check_datetime):
            return "Unsure", None, None
        list_check = _check_datetimes if check is _check_datetime else None
        if one_or_many:
            if type(inner) is not fields.Nested or annotation == "Unsure":
                return "Unsure", None, None
            return f"list[{annotation}] | {annotation}", None, annotation
        return f"list[{annotation}]", list_check, None


#: One struct per schema class and process (apps built again, as tests do,
#: reuse them).
_GENERATOR = _Generator()
_SHAPES: dict[type, "_Shape"] = {}
#: held while a loader generates its struct and shape (both tables are shared
#: by every loader; gthread workers may decode their first bodies at once)
_BUILDING = threading.Lock()


def _refuse_hooks(schema_cls: type) -> None:
    """Raises TypeError for a schema class whose load does more than its
    fields say (load hooks, or a load overridden anywhere but TmfSchema's
    choice of `unknown`): no struct can stand for it."""
    if any(schema_cls._hooks.values()):
        raise TypeError(f"{schema_cls.__name__} has load hooks")
    for method in ("load", "_do_load", "_invoke_field_validators", "_deserialize"):
        own = getattr(schema_cls, method)
        if own not in (getattr(Schema, method), getattr(TmfSchema, method)):
            raise TypeError(f"{schema_cls.__name__} overrides {method}")


def _post_init(checks, wraps):
    """The struct's __post_init__: value checks msgspec has no type for
    (date-times), and a single object sent for a OneOrMany array made the
    one-item list marshmallow makes of it."""
    def __post_init__(self):
        for attribute, check in checks:
            value = getattr(self, attribute)
            if value is not msgspec.UNSET:
                check(value)
        for attribute, _struct in wraps:
            value = getattr(self, attribute)
            if isinstance(value, msgspec.Struct):
                setattr(self, attribute, [value])
    return __post_init__


class _Shape:
    """What the lenient pass cannot see of one schema's objects: the names it
    declares, whether an object may carry others (`is_extension`), and where
    its nested objects are. `nested` holds (name, shape, how): how is "one"
    (an object), "many" (an array of them) or "one_or_many" (OneOrMany)."""

    __slots__ = ("known", "is_extension", "nested")

    def __init__(self):
        self.known: frozenset[str] = frozenset()
        self.is_extension = None
        self.nested: tuple[tuple[str, _Shape, str], ...] = ()


def _shape(schema_cls: type, shapes: dict[type, _Shape]) -> _Shape:
    """The shape of `schema_cls` from `shapes`, built (with those of the
    classes it nests) and added there on first use. Raises TypeError for a
    schema the lenient pass cannot stand for (one that does not refuse
    unknown attributes, at any depth).

    Shapes are built in a table of their own and added to `shapes` only when
    all of them are complete: a shape is registered before its nested ones
    are built (recursive schemas refer to themselves), so a failure halfway
    would otherwise leave an outer shape without its nested part, and a
    later loader would take it for complete and skip the checks of the
    nested objects (accept a body marshmallow refuses). Called once per
    loader, under _BUILDING; never on a request's path after that."""
    shape = shapes.get(schema_cls)
    if shape is not None:
        return shape
    building: dict[type, _Shape] = {}
    shape = _build_shape(schema_cls, shapes, building)
    shapes.update(building)
    return shape


def _build_shape(schema_cls: type, shapes: dict[type, _Shape],
                 building: dict[type, _Shape]) -> _Shape:
    """_shape's recursion: finished shapes from `shapes`, those under
    construction in (and new ones added to) `building`."""
    shape = shapes.get(schema_cls) or building.get(schema_cls)
    if shape is not None:
        return shape
    shape = building[schema_cls] = _Shape()
    schema = schema_cls()
    if schema.unknown != RAISE:
        raise TypeError(f"{schema_cls.__name__} does not refuse unknown attributes")
    shape.known = frozenset(schema.load_fields)
    shape.is_extension = getattr(schema, "is_extension", None)
    nested = []
    for key, field in schema.load_fields.items():
        if type(field) is fields.Nested:
            nested.append((key, _build_shape(type(field.schema), shapes, building), "one"))
        elif type(field) in (fields.List, OneOrMany) and type(field.inner) is fields.Nested:
            how = "one_or_many" if type(field) is OneOrMany else "many"
            nested.append((key, _build_shape(type(field.inner.schema), shapes, building), how))
    shape.nested = tuple(nested)
    return shape


def _add_extensions(sent: dict, loaded: dict, shape: _Shape) -> bool:
    """Complete `loaded` (the lenient pass's dict of `sent`, which dropped
    every undeclared name) as marshmallow would: the undeclared attributes
    of an extension object (TmfSchema.is_extension) are kept as sent, at any
    depth. False when some object that is no extension has one
    (marshmallow refuses it: the caller falls back)."""
    extra = sent.keys() - shape.known
    if extra:
        if shape.is_extension is None or not shape.is_extension(sent):
            return False
        for key in extra:
            loaded[key] = sent[key]
    for key, child, how in shape.nested:
        value = sent.get(key)
        if value is None:
            continue
        if how == "one" or (how == "one_or_many" and isinstance(value, dict)):
            if not _add_extensions(value, loaded[key] if how == "one" else loaded[key][0], child):
                return False
        else:
            for item, loaded_item in zip(value, loaded[key]):
                if not _add_extensions(item, loaded_item, child):
                    return False
    return True


class FastLoader:
    """Loads bodies of one marshmallow schema, valid ones without marshmallow.

    `schema` is a schema instance (TmfSchema or any Schema whose fields the
    generator knows). `decode(data)` is the fast path alone (a dict equal to
    `schema.load(data)`, or None: unsure); `load(data)` is the drop-in for
    `schema.load(data)` (raises marshmallow's ValidationError, phrased by
    marshmallow, for a bad body).

    One msgspec pass that ignores undeclared names (they are checked by
    `_add_extensions`, which keeps those of extension objects). A strict
    pass first (undeclared names refused in C) was measured slower on the
    service's own bodies: their carts by value are extensions of
    ShoppingCartRef, so it failed on nearly every instant query (7 us lost
    of 21 per body, thread CPU)."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.shape: _Shape | None = None
        self._struct: type | None = None
        # The struct is generated on the first body, not here: every worker
        # and `flask` command builds a loader per resource kind and most never
        # decode a body of most kinds (generating the six was 0.24 s of
        # create_app's 0.77 s of CPU, medians of 7, load 21; each struct is
        # still generated once per process, then reused).
        self._built = False

    @property
    def struct(self) -> type | None:
        """The msgspec struct of the schema, or None (a schema the generator
        cannot express: marshmallow only); generated on first use."""
        if not self._built:
            self._build()
        return self._struct

    @struct.setter
    def struct(self, value: type | None) -> None:
        # None makes this loader marshmallow only (bench/validation_bench.py)
        self._struct, self._built = value, True

    def _build(self) -> None:
        with _BUILDING:
            if self._built:
                return
            schema = self.schema
            if not (schema.many or schema.partial or schema.only is not None or schema.exclude
                    or schema.unknown != RAISE):
                try:
                    struct = getattr(_MODULE, _GENERATOR.struct_name(type(schema)))
                    shape = _shape(type(schema), _SHAPES)
                    msgspec.inspect.type_info(struct)   # resolves every annotation now, not per request
                except Exception:       # noqa: BLE001 - a schema the generator cannot express: marshmallow only
                    pass
                else:
                    self._struct, self.shape = struct, shape
            self._built = True       # last: another thread reads struct and shape after it

    def decode(self, data) -> dict | None:
        struct = self.struct
        if struct is None or not isinstance(data, dict):
            return None
        try:
            loaded = msgspec.to_builtins(msgspec.convert(data, struct, strict=True))
            return loaded if _add_extensions(data, loaded, self.shape) else None
        except Exception:       # noqa: BLE001 - anything the fast path cannot vouch for
            return None

    def load(self, data) -> dict:
        loaded = self.decode(data)
        return loaded if loaded is not None else self.schema.load(data)
