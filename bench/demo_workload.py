"""The demo's rule set (rules/telco-demo.yaml over catalog/) as a bench workload:
the same generators as bench/workload.py (customers with products, 500 distinct
instant bodies), drawn from the demo catalog's 13 offerings and its 4 channels,
so the bodies reach the demo's rules (cart, owned plans, channels)."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import yaml

from .workload import Catalog, Workload, make_bodies, make_parties

ROOT = Path(__file__).resolve().parent.parent
RULESET_ID = "telco-demo"
DEMO_RULES = "demo"          # the key of the demo's rules folder among a workload's rule counts


class DemoWorkload(Workload):
    """A Workload whose only rule set is the demo's (`rules_dir(DEMO_RULES)`)."""

    ruleset_id = RULESET_ID

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    def rules_dir(self, n_rules) -> Path:
        return self.root / "rules-demo"


def demo_catalog() -> Catalog:
    doc = yaml.safe_load((ROOT / "catalog" / "offerings.yaml").read_text(encoding="utf-8"))
    offerings = doc["productOffering"]
    by_category: dict[str, list[str]] = {}
    for offering in offerings:
        for category in offering.get("category", []):
            by_category.setdefault(category["id"], []).append(offering["id"])
    return Catalog(offerings, by_category, [1.0] * len(offerings))


def build(root: Path, seed: int, n_customers: int, n_bodies: int) -> DemoWorkload:
    """The demo's catalog and rules copied under `root`, customers and bodies
    generated on its offerings (channels folded onto the demo's 21-24)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "catalog", root / "catalog", dirs_exist_ok=True)
    rules = root / "rules-demo"
    rules.mkdir(exist_ok=True)
    shutil.copy2(ROOT / "rules" / f"{RULESET_ID}.yaml", rules / f"{RULESET_ID}.yaml")
    catalog = demo_catalog()
    parties = make_parties(catalog, n_customers, seed)
    bodies = make_bodies(catalog, parties, n_bodies, seed)
    rng = random.Random(f"demo-channels-{seed}")
    for body in bodies:
        body["channel"] = [{"id": rng.choice(["21", "22", "23", "24"])}]
    workload = DemoWorkload(root, seed, len(catalog.offerings), catalog, parties, bodies)
    with open(workload.bodies_path(), "w", encoding="utf-8") as handle:
        for body in bodies:
            handle.write(json.dumps(body, separators=(",", ":")) + "\n")
    return workload
