"""Answers of the engine on generated rule sets and the demo's cases, written
as one JSON document, so two builds of the engine (e.g. before and after a
change of how conditions are compiled for durable-rules) can be shown to give
identical answers.

    python -m bench.answers_check --out before.json            # on the old tree
    python -m bench.answers_check --out after.json --compare before.json

Workloads (500 contexts each unless --contexts says otherwise):
  rulegen-1000 / rulegen-10000   tests/rules/rulegen.py rule sets (usual rules)
  setgen-1000 / setgen-10000     tests/rules/setgen.py rule sets (every list-valued
                                 fact in every mode, lists of 1 to 12 values)
  demo-cases                     rules/telco-demo.cases.yaml
Per context the document holds the fired rule ids and the ranked items
(offering, rule priority, rule ids, rank, name, kinds). `--compare` exits 1 and names the first
differing context of each workload when the answers differ.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "rules"), str(ROOT / "tests")]

from app.rules.authoring.cases import load_cases  # noqa: E402
from app.rules.engine.engine import Engine  # noqa: E402
from app.rules.model.catalog import load_catalog  # noqa: E402
from app.rules.model.ruleset import load_ruleset  # noqa: E402
from rulegen import context_of, dump, make_ruleset, random_context  # noqa: E402
from setgen import make_set_ruleset, set_context  # noqa: E402


def answer(engine: Engine, ctx) -> dict:
    result = engine.recommend(ctx)
    return {"fired": result.fired_rules,
            "items": [[i.offering_id, i.rule_priority, i.rule_ids, i.priority, i.name, i.kinds]
                      for i in result.items]}


def generated(kind: str, n_rules: int, n_contexts: int) -> tuple[list[dict], float]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if kind == "rulegen":
            catalog_data, ruleset_data = make_ruleset(n_rules, 1000, seed=11)
        else:
            catalog_data, ruleset_data = make_set_ruleset(n_rules, 1000, seed=13)
        (folder / "catalog").mkdir()
        (folder / "catalog" / "catalog.yaml").write_text(dump(catalog_data))
        (folder / "rules.yaml").write_text(dump(ruleset_data))
        catalog = load_catalog(folder / "catalog")
        started = time.perf_counter()
        engine = Engine(load_ruleset(folder / "rules.yaml", catalog), catalog)
        build_s = time.perf_counter() - started
    rng = random.Random(n_rules + len(kind))
    if kind == "rulegen":
        contexts = [context_of(random_context(rng, 1000)) for _ in range(n_contexts)]
    else:
        contexts = [set_context(rng, 1000) for _ in range(n_contexts)]
    return [answer(engine, ctx) for ctx in contexts], build_s


def demo_cases() -> list[dict]:
    catalog = load_catalog(ROOT / "catalog")
    engine = Engine(load_ruleset(ROOT / "rules" / "telco-demo.yaml", catalog), catalog)
    return [{"case": case.name, **answer(engine, case.context)}
            for case in load_cases(ROOT / "rules" / "telco-demo.cases.yaml")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--contexts", type=int, default=500)
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args(argv)
    doc: dict = {"workloads": {}, "build_s": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        for kind in ("rulegen", "setgen"):
            name = f"{kind}-{size}"
            doc["workloads"][name], doc["build_s"][name] = generated(kind, size, args.contexts)
            fired = sum(len(a["fired"]) for a in doc["workloads"][name])
            print(f"{name}: {len(doc['workloads'][name])} contexts, {fired} rules fired, "
                  f"built in {doc['build_s'][name]:.1f} s", flush=True)
    doc["workloads"]["demo-cases"] = demo_cases()
    args.out.write_text(json.dumps(doc, indent=0))
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())["workloads"]
    failed = False
    for name, answers in doc["workloads"].items():
        old = before.get(name)
        if old is None:
            print(f"{name}: not in {args.compare}")
            continue
        diff = [i for i, (a, b) in enumerate(zip(answers, old)) if a != b]
        if diff or len(answers) != len(old):
            failed = True
            i = diff[0] if diff else min(len(answers), len(old))
            print(f"{name}: DIFFERENT in {len(diff)} of {len(answers)} contexts; first #{i}: "
                  f"now {answers[i] if i < len(answers) else None} before {old[i] if i < len(old) else None}")
        else:
            print(f"{name}: identical on {len(answers)} contexts")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
