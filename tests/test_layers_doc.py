"""docs/layers.md describes the layers of app/ that .importlinter enforces: a
newcomer reads the page, the test reads the contract, and they must agree.

Every module of the `layers` contract is named in the page's table, and the
table's rows (top first) keep the contract's order: a module the contract puts
below another is not shown above it, and the page names no layer the contract
lacks."""
from __future__ import annotations

import configparser
import re

from helpers import ROOT

ROW = re.compile(r"^\| (.+?) \| .+ \|$", re.M)
MODULE = re.compile(r"`(?:app/)?([\w.]+?)(?:\.py)?`")


def contract_layers() -> list[set[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    lines = config["importlinter:contract:layers"]["layers"].strip().splitlines()
    return [{name.strip().removeprefix("app.") for name in line.split("|")} for line in lines]


def page_rows() -> list[set[str]]:
    text = (ROOT / "docs" / "layers.md").read_text()
    rows = [set(MODULE.findall(first)) for first in ROW.findall(text)]
    return [row - {"__init__"} for row in rows if row]


def test_the_layers_page_names_every_layer_of_the_contract_in_its_order():
    layers, rows = contract_layers(), page_rows()
    layer_of = {module: depth for depth, layer in enumerate(layers) for module in layer}
    row_of = {module: depth for depth, row in enumerate(rows) for module in row}
    assert sorted(set(layer_of) - set(row_of)) == [], "in .importlinter, not in docs/layers.md"
    assert sorted(set(row_of) - set(layer_of)) == [], "in docs/layers.md, not in .importlinter"
    misplaced = [(upper, lower) for upper in layer_of for lower in layer_of
                 if layer_of[upper] < layer_of[lower] and row_of[upper] > row_of[lower]]
    assert misplaced == [], "docs/layers.md shows these below the module the contract puts under them"


def test_every_module_of_app_has_a_layer():
    """A module outside the contract is checked by no one: anything may
    import it, and it may import anything."""
    layered = {module for layer in contract_layers() for module in layer}
    modules = {path.stem if path.is_file() else path.name for path in (ROOT / "app").iterdir()
               if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()}
    assert sorted(modules - layered) == []


def test_the_layout_page_names_every_package_of_app():
    """docs/layout.md is where a newcomer looks for a concern's folder."""
    text = (ROOT / "docs" / "layout.md").read_text()
    packages = sorted(path.name for path in (ROOT / "app").iterdir() if (path / "__init__.py").exists())
    assert [name for name in packages if not re.search(rf"^\s+{name}/", text, re.M)] == []
