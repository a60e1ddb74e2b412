"""Safe YAML loading that remembers where every key and item came from.

Rule and catalog files are data, never code: this loader is a `yaml.SafeLoader`
subclass, so tags such as `!!python/object` are rejected. Mappings and
sequences are built as `PosDict` / `PosList`, which remember the line and
column (1-based) of each key, value and item so that every later error can
name `file:line:column`. Duplicate keys in a mapping are errors.

YAML 1.1 implicit typing (PyYAML's) turns plain scalars into booleans
(`NO`, `yes`, `on`, `off`), integers (`0701` octal -> 449, `1_000`, `0x1F`,
`12:30` sexagesimal -> 750), floats, dates and null (`~`), silently. Rule,
case and catalog files are full of text that looks like that. So:

- where the format means text (ids and names: `TEXT_KEYS`, every mapping
  key), the loader keeps the text the author typed: `id: 0701` is "0701";
- everywhere else it keeps YAML's value (priorities, limits, flags, dates
  and thresholds are meant as typed values) and remembers the typed text
  (`typed_text(container, key)`), so that a reader that uses the value as
  text (segment and characteristic values) can report the change at its
  line with the fix: quote it. Those values may be meant either way
  (`on` the boolean or the text), so the author decides, not the loader.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ...storable import why_unstorable
from ...textform import nfc
from .errors import Problem, RuleSetError
from .source import read_source


# Fields whose values are ids or names in rule, case, catalog and context files:
# their plain scalars stay the text typed, also inside lists and `{any_of: ...}`.
TEXT_KEYS = frozenset({
    "id", "name", "description", "owner", "ruleset", "offering",
    "cart", "owns", "channel", "place", "category", "cart_category", "owns_category",
    "expect", "absent", "expect_rules", "categories", "places", "product_orders",
})
FLAG_KEYS = frozenset({"empty", "exists"})   # true/false flags inside a text key's forms


class PosDict(dict):
    """A dict that knows the position of itself, its keys and its values."""

    pos: tuple[int, int] = (1, 1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_pos: dict = {}
        self.value_pos: dict = {}
        self.typed: dict = {}     # key -> text typed, for values YAML read as non-text

    def at(self, key) -> tuple[int, int]:
        """Position of the value under `key` (else of the key, else of the mapping)."""
        return self.value_pos.get(key) or self.key_pos.get(key) or self.pos

    def key_at(self, key) -> tuple[int, int]:
        return self.key_pos.get(key) or self.pos


class PosList(list):
    """A list that knows the position of itself and of each item."""

    pos: tuple[int, int] = (1, 1)

    def __init__(self, *args):
        super().__init__(*args)
        self.item_pos: list = []
        self.typed: dict = {}     # index -> text typed, for items YAML read as non-text

    def at(self, index: int) -> tuple[int, int]:
        if 0 <= index < len(self.item_pos):
            return self.item_pos[index]
        return self.pos


def typed_text(container, key) -> str | None:
    """The text typed for container[key] when YAML's implicit typing read it as
    something else (a boolean, number, date or null), else None."""
    return getattr(container, "typed", {}).get(key)


def _typed_plain(node, value) -> str | None:
    """The source text of a plain scalar that YAML resolved to a non-string
    (libyaml gives a plain scalar the style "", the Python parser None)."""
    if isinstance(value, str):       # most values: a quick way out
        return None
    if (isinstance(node, yaml.ScalarNode) and not node.style
            and node.value != "" and node.tag == _implicit_tag(node.value)):
        return node.value
    return None  # quoted, empty, or typed on purpose with an explicit tag (!!binary, !!int)


_RESOLVER = yaml.resolver.Resolver()


def _implicit_tag(text: str) -> str:
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))


def _keep_text(node, value):
    """`value` with every plain scalar under a text key back to its typed text
    (null stays null: an empty or `~` id is missing, and reported as such)."""
    if isinstance(node, yaml.ScalarNode):
        typed = _typed_plain(node, value)
        return typed if typed is not None and value is not None else value
    if isinstance(node, yaml.SequenceNode) and isinstance(value, list):
        for index, child in enumerate(node.value[:len(value)]):
            value[index] = _keep_text(child, value[index])
            if isinstance(value[index], str) and isinstance(value, PosList):
                value.typed.pop(index, None)
    elif isinstance(node, yaml.MappingNode) and isinstance(value, dict):
        for (_key_node, child), key in zip(node.value, list(value)):
            if key not in FLAG_KEYS:
                value[key] = _keep_text(child, value[key])
                if isinstance(value[key], str) and isinstance(value, PosDict):
                    value.typed.pop(key, None)
    return value


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml parser when available


class PositionLoader(_SafeBase):
    """SafeLoader (libyaml's when present) that records positions and rejects
    duplicate keys and aliases: rule and catalog files need neither, and an
    alias bomb ("billion laughs") would expand exponentially once copied."""

    def construct_document(self, node):
        try:
            return _build(self, node, node.start_mark, set())
        finally:
            self.constructed_objects = {}
            self.recursive_objects = {}
            self.state_generators = []


class DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names a key twice (lint: duplicate-key)."""


ALIAS_MESSAGE = "aliases (*name) and merge keys are not allowed in rule and catalog files: write the value out"
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_SEQ_TAG = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG


def _build(loader: PositionLoader, node, holder, seen: set) -> object:
    """Plain mappings, sequences and strings straight from the node graph, with
    positions; everything else through the safe constructor. Refuses an alias
    where it is first met (an alias makes the graph share a node, so a node
    seen twice is one): a bomb is refused before anything is copied, and the
    error names the key (or the sequence) that holds it. One pass instead of
    PyYAML's generic construct_object plus a separate alias walk: parsing a
    10,000-rule file took 2.5x less time (measured in-process, bench.compare)."""
    if id(node) in seen:
        raise yaml.constructor.ConstructorError(None, None, ALIAS_MESSAGE, holder)
    seen.add(id(node))
    tag = node.tag
    if tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
        why = why_unstorable(node.value)
        if why:         # a "\0" escape: catalog and rule text ends up in stored documents
            raise yaml.constructor.ConstructorError(
                None, None, f"this text holds {why}, which no store accepts", node.start_mark)
        return node.value
    if tag == _MAP_TAG and isinstance(node, yaml.MappingNode):
        return _construct_mapping(loader, node, seen)
    if tag == _SEQ_TAG and isinstance(node, yaml.SequenceNode):
        return _construct_sequence(loader, node, seen)
    if not isinstance(node, yaml.ScalarNode):
        _refuse_shared(node, holder, seen)
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:   # 2026-13-01, an int of thousands of digits: name the value's place
        raise yaml.constructor.ConstructorError(
            None, None, f"the value {str(node.value)[:40]!r} cannot be read ({exc})", node.start_mark) from None


def _refuse_shared(root, holder, seen: set) -> None:
    """The nodes under a tagged collection (e.g. !!set) handed to the safe
    constructor: none may be shared with what was already read."""
    stack = list(root.value)
    while stack:
        item = stack.pop()
        for node in (item if isinstance(item, tuple) else (item,)):
            if id(node) in seen:
                raise yaml.constructor.ConstructorError(None, None, ALIAS_MESSAGE, holder)
            seen.add(id(node))
            if not isinstance(node, yaml.ScalarNode):
                stack.extend(node.value)


def _construct_mapping(loader: PositionLoader, node: yaml.MappingNode, seen: set | None = None) -> PosDict:
    if seen is None:                     # called by the safe constructor (a tagged collection's child)
        seen = set()
    loader.flatten_mapping(node)
    result = PosDict()
    result.pos = _mark(node)
    for key_node, value_node in node.value:
        key = _build(loader, key_node, key_node.start_mark, seen)
        key_text = _typed_plain(key_node, key)
        if key_text is not None and key is not None:
            key = key_text        # keys are names: `on:`, `NO:`, `0701:` stay text
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found unhashable key", key_node.start_mark) from None
        if key in result:
            raise DuplicateKey(
                None, None, f"duplicate key {key!r} (first at line {result.key_at(key)[0]})",
                key_node.start_mark)
        value = _build(loader, value_node, key_node.start_mark, seen)
        if key in TEXT_KEYS:
            value = _keep_text(value_node, value)
        typed = _typed_plain(value_node, value)
        if typed is not None:
            result.typed[key] = typed
        result[key] = value
        result.key_pos[key] = _mark(key_node)
        result.value_pos[key] = _mark(value_node)
    return result


def _construct_sequence(loader: PositionLoader, node: yaml.SequenceNode, seen: set | None = None) -> PosList:
    if seen is None:
        seen = set()
    mark = node.start_mark
    result = PosList([_build(loader, child, mark, seen) for child in node.value])
    result.pos = _mark(node)
    result.item_pos = [_mark(child) for child in node.value]
    for index, (child, item) in enumerate(zip(node.value, result)):
        typed = _typed_plain(child, item)
        if typed is not None:
            result.typed[index] = typed
    return result


PositionLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
PositionLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def display_path(path: Path | str) -> str:
    """A path relative to the working directory when possible (for messages)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def yaml_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}"
    if context and "constructing" not in context:
        message = f"invalid YAML: {context}, {problem}"
    if "could not determine a constructor" in str(problem):
        message = f"YAML tag not allowed (rule and catalog files are data): {problem}"
    code = "duplicate-key" if isinstance(exc, DuplicateKey) else "yaml-syntax"
    return Problem(file, line, column, message.replace("\n", " "), code=code)


def load_text(text: str, file: str):
    """Parse one YAML document; raise RuleSetError naming file:line:column.
    The text is read in Unicode NFC (app/textform.py), so a value typed in
    NFD ("privé" with a combining accent) is the same as its NFC spelling;
    lines are unchanged, a column after such a character counts it once."""
    try:
        docs = list(yaml.load_all(nfc(text), Loader=PositionLoader))
    except yaml.YAMLError as exc:
        raise RuleSetError(f"cannot read {file}", [yaml_problem(file, exc)]) from None
    except RecursionError:
        raise RuleSetError(f"cannot read {file}", [Problem(
            file, 1, 1, "invalid YAML: nested too deeply (flatten the structure)", code="yaml-syntax")]) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise RuleSetError(f"cannot read {file}", [Problem(
            file, 1, 1, f"invalid YAML: a value cannot be read ({exc})", code="yaml-syntax")]) from None
    if len(docs) > 1:
        raise RuleSetError(f"cannot read {file}",
                           [Problem(file, 1, 1, "expected one YAML document, found several", code="yaml-syntax")])
    return docs[0] if docs else None


def read_text_file(path: Path | str) -> tuple[str, str]:
    """(display name, UTF-8 text) of a file, or RuleSetError naming it
    (source.FileTooLarge, before reading, when it is over the size limit)."""
    name = display_path(path)
    try:
        return name, read_source(path, name).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"cannot read {name}", [Problem(name, 1, 1, f"cannot read file: {exc}",
                                                           code="yaml-syntax")]) from None


def load_file(path: Path | str):
    name, text = read_text_file(path)
    return load_text(text, name)


class _PlainDumper(yaml.SafeDumper):
    """Writes shared Python objects out in full: the loader refuses aliases."""

    def ignore_aliases(self, data):
        return True


def dump_text(data) -> str:
    """YAML text that this module's loader accepts (no anchors or aliases)."""
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
