"""Evaluate one fact against durable-rules rulesets, safely and cheaply.

We call durable's C engine (`durable_rules_engine`, the module that
`durable.engine.Host` wraps) directly with the dict form of the rulesets,
rather than through `Host`:

* `Host()` starts two timer threads that call into every registered ruleset
  every 0.2 s without any lock; durable is not thread-safe, so that would race
  with our evaluations (the error 307 we measured), and the threads do not
  survive a gunicorn fork anyway.
* `Host` runs every fired rule through a Python closure and re-serialises the
  session state after each action; we only need the names of the fired rules.
* `Host` keeps a registry of names and cannot register a name twice; here
  every compiled version gets fresh unique names (prefix, pid, counter).
  Old versions are never deleted: after `delete_ruleset` a later
  `create_ruleset` failed with error 102 about once in 300 reloads in our
  measurements, so compiled versions stay in memory for the life of the
  worker process. That error has since been traced to `$iany` over `$or`
  reading an operand type durable never sets (heap bytes 0x09/0x0C there:
  compiler module doc), which the compiler no longer emits; whether
  `delete_ruleset` is safe on its own has not been measured again.

Protocol per evaluation and chunk (all under the process's durable lock): `assert_fact`
the context fact under the fixed session id "0"; result 1 means "matched no
rule" (durable's MessageNotHandledException) and stores nothing; otherwise
collect every fired action with `start_action_for_state` /
`complete_and_start_action` and `retract_fact` the fact again, so the session
stays empty and one session per chunk is ever alive (no per-request state, no
1,024-session ceiling). On any durable error the session is deleted and the
evaluation retried once.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import threading

import durable_rules_engine as dre
import orjson

SID = "0"
# One lock for every durable call in the process: durable is not thread-safe,
# and the service now compiles a new version in a background thread while
# requests evaluate the old one. Calls hold the GIL anyway, so nothing runs
# less in parallel; a compile takes the lock per chunk, so a request waits for
# at most one chunk's creation, never for a whole version.
_lock = threading.Lock()
_names = itertools.count(1)
_in_flight: "DurableRulesets | None" = None     # the rulesets an evaluation is using (under _lock)


class DurableError(RuntimeError):
    pass


def _number_text(value: float) -> str:
    if not math.isfinite(value):
        raise DurableError(f"durable cannot compare {value!r}; the caller must leave it out")
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def durable_json(value) -> str:
    """JSON text that durable's parser reads as meant.

    json.dumps and orjson write 1e16 and 1e-05 as `1e+16` / `1e-5`; durable's
    number parser needs a fraction before the exponent and fails the whole fact
    with error 204 otherwise (measured: `1e5` fails, `1.0e5` and `1.0e+308`
    parse). Floats are written `1.0e+16`; infinities and NaN are refused (the
    facts builder leaves them out: they are not numbers to compare; orjson
    would write them as null). Text with no such float comes from orjson
    (compile time: definitions of thousands of rules, each a JSON text)."""
    if not _has_exponent_float(value):
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:   # e.g. an integer beyond 64 bits
            pass
    return _durable_text(value)


def _durable_text(value) -> str:
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_durable_text(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_durable_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _needs_exponent(value: float) -> bool:
    """Whether repr() or orjson writes this float with an exponent (or it is
    inf/NaN); orjson writes none in [1e-4, 1e16), like repr (checked on 200,000
    random floats)."""
    return value != 0.0 and not 1e-4 <= abs(value) < 1e16


def _has_exponent_float(value) -> bool:
    if type(value) is float:
        return _needs_exponent(value)
    if isinstance(value, dict):
        return any(_has_exponent_float(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_exponent_float(v) for v in value)
    return False


def fact_json(fact: dict) -> str:
    """durable_json of a flat fact (values: text, int, float, list of text),
    with orjson's speed when no float needs an exponent (the usual case; the
    fact text was 124 us of a 2.5 ms request at 1,000 rules with json.dumps,
    measured in-process)."""
    if any(type(v) is float and _needs_exponent(v) for v in fact.values()):
        return _durable_text(fact)
    try:
        return orjson.dumps(fact).decode()
    except orjson.JSONEncodeError:       # e.g. an integer beyond 64 bits
        return _durable_text(fact)


def unique_name(prefix: str) -> str:
    """durable ruleset names must never repeat within a process."""
    return f"{prefix}~{os.getpid()}~{next(_names)}"


def _rule_name(message: str) -> str:
    # message is '{"r12":{"m":{...}}}'; the rule name is the first key.
    start = message.index('"') + 1
    return message[start:message.index('"', start)]


class DurableRulesets:
    """A group of durable rulesets ("chunks") evaluated together under one lock."""

    def __init__(self, prefix: str, chunks: list[dict], chunk_keys: list[list[str]] | None = None):
        # each chunk is sent only the fact properties its rules read: smaller JSON to
        # parse, and durable copies the fact into every fired action's message
        self.chunk_keys = [tuple(keys) for keys in chunk_keys] if chunk_keys is not None else None
        self.handles: list[int] = []
        self.names: list[str] = []
        self.closed = False
        self._fact_ids = itertools.count(1)
        try:
            for index, definition in enumerate(chunks):
                text = durable_json(definition)
                # No retry: the sporadic error 102 came from `$iany` over `$or`, which the
                # compiler no longer emits (compiler module doc); a refusal now is real.
                name = unique_name(f"{prefix}#c{index}")
                with _lock:
                    self.handles.append(dre.create_ruleset(name, text))
                self.names.append(name)
        except Exception:
            self.closed = True
            raise

    def fire(self, fact: dict, chunk_indexes) -> set[str]:
        """Names of the rules that fire for `fact`, over the given chunks."""
        global _in_flight
        fired: set[str] = set()
        with _lock:
            if self.closed:
                raise DurableError("rule set version was unloaded")
            _in_flight = self
            fact_id = str(next(self._fact_ids))
            texts: dict = {}             # chunks reading the same properties share one text
            for index in chunk_indexes:
                keys = self.chunk_keys[index] if self.chunk_keys is not None else None
                text = texts.get(keys)
                if text is None:
                    part = {"sid": SID, "id": fact_id}
                    if keys is None:
                        part.update((k, v) for k, v in fact.items() if k not in ("sid", "id"))
                    else:
                        for key in keys:
                            if key in fact:
                                part[key] = fact[key]
                    text = texts[keys] = fact_json(part)
                try:
                    self._fire_one(self.handles[index], text, fired)
                except dre.error:
                    self._reset(self.handles[index])
                    self._fire_one(self.handles[index], text, fired)
            _in_flight = None            # (an exception leaves it set: the session may hold a fact)
        return fired

    @staticmethod
    def _fire_one(handle: int, text: str, fired: set[str]) -> None:
        code, state = dre.assert_fact(handle, text)
        if code != 0:          # 1: not handled (no rule matched, nothing stored)
            return
        try:
            result = dre.start_action_for_state(handle, state)
            while result:
                message = result[1] if isinstance(result, tuple) else result
                fired.add(_rule_name(message))
                result = dre.complete_and_start_action(handle, state)
        finally:
            dre.retract_fact(handle, text)

    @staticmethod
    def _reset(handle: int) -> None:
        try:
            dre.delete_state(handle, SID)
        except dre.error:
            pass

    def reset_after_fork(self) -> None:
        for handle in self.handles:
            self._reset(handle)

    def close(self) -> None:
        """Refuse further evaluations. The durable rulesets are not deleted (see
        Engine.close: delete_ruleset is not safe in durable-rules 2.0.28)."""
        with _lock:
            self.closed = True


def _after_fork_in_child() -> None:
    """Only an evaluation that another thread had under way when the process
    forked can have left a fact in a session: reset that one. Every finished
    evaluation retracted its fact, and durable-rules 2.0.28 may abort the
    process in delete_state of a session whose only evaluation fired nothing
    (tests/rules/engine/test_durable_fork.py), so clean sessions are left alone."""
    global _lock, _in_flight
    engine, _in_flight = _in_flight, None
    _lock = threading.Lock()
    if engine is not None:
        engine.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
