"""Writing repository files (the active pointer, lock files, a working copy
saved by the Rule Studio) with the service's
one atomic writer (app.atomicfile): a crash leaves the old or the new file,
never a torn one, and an acknowledged activation survives a power loss."""
from __future__ import annotations

import json
from pathlib import Path

from ...atomicfile import replace_file

# not the store's "*.tmp": the pointer may share the store's data directory,
# whose start-up clean-up removes its own orphan temp files
TEMP_SUFFIX = "rules-tmp"


def write_json_atomic(path: Path, data: dict, sort_keys: bool = True) -> None:
    """`data` as indented JSON (UTF-8, one trailing newline), replaced atomically."""
    text = json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    replace_file(Path(path), text.encode("utf-8"), TEMP_SUFFIX)


def write_text_atomic(path: Path, text: str) -> None:
    """`text` (UTF-8) replaced atomically: every worker's hot reload reads the
    old rule file or the new one, never half of it."""
    replace_file(Path(path), text.encode("utf-8"), TEMP_SUFFIX)
