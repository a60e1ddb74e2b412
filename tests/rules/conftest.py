"""Fixtures for the rules engine tests (app/rules): the demo catalog, engines
built from rule lists, and scratch trees (rules, catalog, state) per test."""
from __future__ import annotations

import shutil

import pytest

from app.rules import RuleService, load_catalog
from app.rules.engine.engine import Engine
from app.rules.model.ruleset import parse_ruleset
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ruleset_text


@pytest.fixture(scope="session")
def demo_catalog():
    return load_catalog(DEMO_CATALOG)


@pytest.fixture
def build(demo_catalog):
    """build(rules, **header) -> Engine over the demo catalog."""
    engines = []

    def factory(rules, catalog=None, href_base="", **header) -> Engine:
        text = ruleset_text(rules, **header)
        engine = Engine(parse_ruleset(text, "test.yaml", catalog or demo_catalog), catalog or demo_catalog,
                        href_base)
        engines.append(engine)
        return engine

    return factory


@pytest.fixture
def tree(tmp_path):
    """A scratch copy of the demo catalog and rules: (rules_dir, catalog_dir, state_dir)."""
    rules_dir, catalog_dir, state_dir = tmp_path / "rules", tmp_path / "catalog", tmp_path / "state"
    shutil.copytree(DEMO_CATALOG, catalog_dir)
    rules_dir.mkdir()
    shutil.copy(DEMO_RULES / "telco-demo.yaml", rules_dir / "telco-demo.yaml")
    state_dir.mkdir()
    return rules_dir, catalog_dir, state_dir


@pytest.fixture
def service(tree):
    rules_dir, catalog_dir, state_dir = tree
    return RuleService(rules_dir, catalog_dir, state_dir)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test (10,000 rules); runs by default, deselect with -m 'not slow'")
