"""Loaded by a test server when this directory is on PYTHONPATH: a full disk
for chosen store files, switched on and off from the test.

While the file named by RECO_TEST_ENOSPC_FLAG exists, creating the temp file
of a collection whose name matches the regular expression in it fails with
ENOSPC, exactly as a full disk fails the store's atomic write
(app/store/atomic_storage.py writes `.<collection>.json.<hex>.tmp`).

A pattern that matches "decisions" also fills the disk under the decision
log's JSON Lines files (app/decisions/sinks.py): an append to
`decisions/<day>.jsonl` writes half its bytes, then fails with ENOSPC, as
write(2) does when the disk fills in the middle of it."""
import errno
import os
import re

_FLAG = os.environ.get("RECO_TEST_ENOSPC_FLAG")
_open = os.open
_write = os.write
_appends: dict[int, int] = {}      # fd of a decisions file -> writes so far


def _pattern():
    try:
        with open(_FLAG) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _open_or_full(path, flags, *args, **kwargs):
    name = os.path.basename(os.fsdecode(path))
    if _FLAG and flags & os.O_CREAT:
        pattern = _pattern()
        match = re.fullmatch(r"\.(.+)\.json\.[0-9a-f]+\.tmp", name)
        if pattern and match and re.fullmatch(pattern, match.group(1)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    fd = _open(path, flags, *args, **kwargs)
    _appends.pop(fd, None)
    if _FLAG and flags & os.O_APPEND and name.endswith(".jsonl") \
            and os.path.basename(os.path.dirname(os.fsdecode(path))) == "decisions":
        _appends[fd] = 0
    return fd


def _write_or_full(fd, data):
    if fd in _appends:
        pattern = _pattern()
        if pattern and re.fullmatch(pattern, "decisions"):
            _appends[fd] += 1
            if _appends[fd] == 1 and len(data) > 1:
                return _write(fd, bytes(data)[:len(data) // 2])   # the first half goes in
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _write(fd, data)


if _FLAG:
    os.open = _open_or_full
    os.write = _write_or_full
