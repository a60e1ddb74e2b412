"""Writing repository files (the active pointer, lock files, a working copy
saved by the Rule Studio) with the service's
one atomic writer (app.atomicfile): a crash leaves the old or the new file,
never a torn one, and an acknowledged activation survives a power loss."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ...atomicfile import discard, fsync_dir, replace_file, write_temp

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


class StagedFile:
    """A new file's bytes written and made durable beside its name, not yet
    under it: for a step that must not half-happen (an activation that keeps
    the cases of its version). The bytes are written first, so a full disk
    refuses the step before anything changed; commit() then only links the
    name (the file is created once: an existing one is kept); discard() drops
    what was not committed. Raises OSError (ENOSPC) from the constructor."""

    def __init__(self, path: Path, data: bytes):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp, self._fd = write_temp(str(self.path), data, TEMP_SUFFIX)
        self._open = True

    def commit(self) -> bool:
        """Give the bytes their name unless a file has it; whether this call created it."""
        try:
            os.link(self._tmp, self.path)
        except FileExistsError:
            return False
        finally:
            self.discard()
        fsync_dir(str(self.path.parent))
        return True

    def discard(self) -> None:
        if self._open:
            self._open = False
            discard(self._fd, self._tmp)
