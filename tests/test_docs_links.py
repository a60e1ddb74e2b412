"""The documents' links and the pointers to them hold: README.md was cut into
docs/*.md, and a link to a moved section, or a comment or error message that
names a guide (`docs/events.md`), must reach a file and heading that exist.

Markdown links `[text](path#anchor)` of README.md, docs/, BENCHMARKS.md,
SECURITY.md and rules/README.md must name an existing file (relative to the
linking document) and, with `#anchor`, a heading of it under GitHub's slug
rule (lower case; punctuation but `-` and `_` dropped; spaces to `-`). Code,
tests and deploy files that name `docs/<name>.md` must name an existing one."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "SECURITY.md", ROOT / "rules" / "README.md",
             *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.M)
GUIDE = re.compile(r"\bdocs/[\w-]+\.md\b")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", path.read_text()))}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_reaches_a_file_and_heading(document):
    broken = []
    for target in LINK.findall(FENCE.sub("", document.read_text())):
        if re.match(r"^[a-z]+:", target):       # http:, https:, mailto: are not checked (no network)
            continue
        name, _, anchor = target.partition("#")
        path = (document.parent / name).resolve() if name else document
        if not path.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_guide_named_in_code_exists():
    named = {}
    for folder in ("app", "bin", "bench", "tests", "deploy"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".yaml", ".json", "") and "__pycache__" not in path.parts:
                for guide in GUIDE.findall(path.read_text(errors="replace")):
                    named.setdefault(guide, str(path.relative_to(ROOT)))
    for extra in ("SECURITY.md", "pyproject.toml"):
        for guide in GUIDE.findall((ROOT / extra).read_text()):
            named.setdefault(guide, extra)
    missing = {guide: where for guide, where in named.items() if not (ROOT / guide).exists()}
    assert named and not missing, missing


#: a path of the repository named in prose (a module under app/, a test,
#: a bench or bin script), not preceded by a path character, so
#: `tmp/x/app/a.py` or a project a test builds in tmp_path is not one
NAMED_FILE = re.compile(r"(?<![\w./-])((?:app|tests|bench|bin)/[\w./-]*\w)")
#: names of what a run writes, not of the repository's files
WRITTEN_BY_RUNS = re.compile(r"^bench/results/")


def test_every_file_named_in_docs_and_code_exists():
    """Files were moved (tests into folders that mirror app/, the Studio's
    authoring functions and the store's activation into the rules package): a
    guide, a docstring or a comment that still names the old path sends a
    newcomer nowhere."""
    sources = [*DOCUMENTS, ROOT / "BENCHMARKS.md"]
    for folder in ("app", "bin", "bench", "tests", "deploy"):
        sources += [path for path in (ROOT / folder).rglob("*")
                    if path.is_file() and path.suffix in (".py", ".yaml", ".json", ".md", "")
                    and "__pycache__" not in path.parts and "results" not in path.parts]
    missing = {}
    for source in sources:
        for name in NAMED_FILE.findall(source.read_text(errors="replace")):
            name = name.rstrip(".")
            if WRITTEN_BY_RUNS.match(name) or "*" in name or (ROOT / name).exists():
                continue
            missing.setdefault(name, str(source.relative_to(ROOT)))
    assert not missing, "\n".join(f"{where} names {name}, which does not exist" for name, where in sorted(missing.items()))


def test_every_guide_is_listed_in_the_guides_index():
    """README.md sends a newcomer to docs/README.md for "all guides": a guide
    missing from its table is one nobody finds."""
    index = (ROOT / "docs" / "README.md").read_text()
    listed = {target.partition("#")[0] for target in LINK.findall(index)}
    unlisted = sorted(path.name for path in (ROOT / "docs").glob("*.md")
                      if path.name != "README.md" and path.name not in listed)
    assert unlisted == [], f"add to the table of docs/README.md: {unlisted}"
