"""Loaded by a test server when this directory is on PYTHONPATH: a full disk
for chosen store files, switched on and off from the test.

While the file named by RECO_TEST_ENOSPC_FLAG exists, creating the temp file
of a collection whose name matches the regular expression in it fails with
ENOSPC, exactly as a full disk fails the store's atomic write
(app/store/atomic_storage.py writes `.<collection>.json.<hex>.tmp`)."""
import errno
import os
import re

_FLAG = os.environ.get("RECO_TEST_ENOSPC_FLAG")
_open = os.open


def _open_or_full(path, flags, *args, **kwargs):
    if _FLAG and flags & os.O_CREAT:
        try:
            with open(_FLAG) as handle:
                pattern = handle.read().strip()
        except OSError:
            pattern = None
        name = os.path.basename(os.fsdecode(path))
        match = re.fullmatch(r"\.(.+)\.json\.[0-9a-f]+\.tmp", name)
        if pattern and match and re.fullmatch(pattern, match.group(1)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    return _open(path, flags, *args, **kwargs)


if _FLAG:
    os.open = _open_or_full
