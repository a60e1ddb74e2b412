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
