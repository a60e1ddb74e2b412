"""Where rule, catalog and cases files may come from, and how big they may be.

Two guards every reader and writer of the rules package goes through:

* contained_path(folder, name): a path built from a name (a rule set id, a
  version, a file found by listing a folder) is resolved -- symbolic links
  followed and ".." applied, as the operating system will when it opens it --
  and refused (UnsafeName) unless it is still inside the folder. The rules
  repository (repository/layout.py) builds every path with it.
* read_source(path) / check_source_size(size, name): one size limit for every
  way a rule, catalog or cases file arrives (the rules folder at load and in
  the watcher's background reload, `flask rules lint/test/keep/lock`, the
  Rule Studio and /admin/rules). The file is stat'ed (a text's length is
  counted) BEFORE anything reads or parses it: a 50 MB file dropped into the
  folder costs a stat, not half a GiB in every worker. The limit is the
  setting RECO_MAX_RULE_FILE_BYTES (app/config.py; set_max_file_bytes() at
  start-up), default DEFAULT_MAX_FILE_BYTES.

Both raise RuleSetError subclasses whose problem names the file (line 1,
column 1), so every caller that reports rule errors reports them.
"""
from __future__ import annotations

import os
from pathlib import Path

from ...config import Settings
from .errors import Problem, RuleSetError

# RECO_MAX_RULE_FILE_BYTES's default, whose home is app/config.py: a generated
# 10,000-rule set (bench/, tests/rules/rulegen.py) is 2.3 MB (measured); 10 MiB
# leaves room for long descriptions, and refuses the 50 MB file that took a
# worker from 62 to 500 MiB RSS. Here for callers without an app (tools, tests).
DEFAULT_MAX_FILE_BYTES: int = Settings.model_fields["max_rule_file_bytes"].default
_limit = [DEFAULT_MAX_FILE_BYTES]


class UnsafeName(RuleSetError):
    """A name that cannot become a path here: not a semantic version, not a
    rule set id, or a path that resolves outside its folder. `code` names the
    kind for HTTP answers (INVALID_VERSION, INVALID_RULESET_ID, PATH_OUTSIDE_FOLDER)."""

    def __init__(self, message: str, problems: list[Problem] | None = None, code: str = "PATH_OUTSIDE_FOLDER"):
        super().__init__(message, problems)
        self.code = code


class FileTooLarge(RuleSetError):
    """A rule, catalog or cases file (or a text to be saved as one) over the limit."""

    code = "FILE_TOO_LARGE"


def contained_path(folder: Path, name: str) -> Path:
    """folder/name, once it is proven to stay inside `folder`: resolved and
    still strictly under the resolved folder. Returns folder/name as given (not
    resolved), for messages. Raises UnsafeName (an absolute name, a NUL, a
    name that climbs out with "..", or a symbolic link that points outside)."""
    folder = Path(folder)
    name = os.fspath(name)
    if "\0" in name or os.path.isabs(name) or not name:
        raise UnsafeName(f"{name!r} is not a file name inside {folder}")
    path = folder / name
    base = folder.resolve()
    resolved = path.resolve()
    if resolved == base or base not in resolved.parents:
        raise UnsafeName(f"{name!r} leads outside {folder}: refused")
    return path


def is_contained(folder: Path, path: Path) -> bool:
    """True when `path` (found by listing `folder`, maybe a symbolic link) resolves inside it."""
    try:
        contained_path(folder, os.path.relpath(path, folder))
    except (UnsafeName, ValueError):
        return False
    return True


def set_max_file_bytes(limit: int) -> None:
    """The size limit of this process (RECO_MAX_RULE_FILE_BYTES); > 0."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        raise ValueError(f"the rule file size limit must be a whole number of bytes > 0, got {limit!r}")
    _limit[0] = limit


def max_file_bytes() -> int:
    return _limit[0]


def _size_text(size: int) -> str:
    return f"{size / 1048576:.1f} MiB" if size >= 1048576 else f"{size / 1024:.0f} KiB"


def check_source_size(size: int, name: str) -> None:
    """FileTooLarge when `size` bytes is over the limit; `name` is the file (for the message)."""
    limit = _limit[0]
    if size > limit:
        message = (f"the file is {size} bytes ({_size_text(size)}), over the limit of {limit} bytes "
                   f"({_size_text(limit)}) for rule, catalog and cases files: it was not read; split it, "
                   "or raise RECO_MAX_RULE_FILE_BYTES")
        raise FileTooLarge(f"{name} is too large", [Problem(name, 1, 1, message)])


def read_source(path: Path, name: str | None = None) -> bytes:
    """The bytes of a rule, catalog or cases file, stat'ed against the limit
    before it is read (and read no further than the limit, should it grow in
    between). OSError when it cannot be read; FileTooLarge."""
    name = name or os.fspath(path)
    with open(path, "rb") as handle:
        check_source_size(os.fstat(handle.fileno()).st_size, name)
        data = handle.read(_limit[0] + 1)
    check_source_size(len(data), name)
    return data
