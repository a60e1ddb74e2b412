"""Replace a file atomically and durably: the one writer the store (TinyDB
collections) and the rules repository (active pointer, lock files) share.

1. write the bytes to a fresh temp file *in the same directory*
   (``.<name>.<random hex>.<suffix>``, created with ``O_EXCL``),
2. ``fsync`` the temp file,
3. ``os.replace`` it onto ``<name>`` (atomic on POSIX: every reader sees the
   complete old file or the complete new one, never a mix),
4. ``fsync`` the directory so the rename itself survives a power loss.

Only after step 4 does the call return, so an acknowledged write is never only
in memory. A crash before step 3 leaves the old file plus an orphan temp file.
"""
from __future__ import annotations

import os
import secrets

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def fsync_dir(path: str) -> None:
    """fsync a directory so that renames/creations in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd` (os.write may write fewer: a
    signal, a pipe, a nearly full disk), then fsync it: the one home of
    "written and durable" for the temp files here, the store's journal and
    the decision log's day files. Raises OSError (ENOSPC, EIO) as is."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def write_temp(path: str, data: bytes, temp_suffix: str = "tmp", mode: int = 0o666) -> tuple[str, int]:
    """Steps 1-2: a durable temp file beside ``path``, not yet renamed.
    Returns its name and an open descriptor (the caller closes it, and
    unlinks the file if it does not rename it; the store's journal renames
    several such files together)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.{temp_suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, mode)
    try:
        write_all(fd, data)
    except BaseException:
        discard(fd, tmp)
        raise
    return tmp, fd


def discard(fd: int, tmp: str) -> None:
    """Close and remove a temp file of write_temp that will not be renamed."""
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_atomic(path: str, data: bytes, temp_suffix: str = "tmp") -> int:
    """Atomically replace ``path`` with ``data``; durable when it returns.

    Returns a read-only-purpose descriptor of the new file (the former temp
    file, now at ``path``); the caller owns it and must close it.  On failure
    the temp file is removed and the exception propagates; ``path`` then still
    holds its previous content -- unless the failure was the final directory
    fsync, in which case the new content is in place but possibly not durable.
    ``temp_suffix`` keeps one owner's temp files apart from another's in a
    shared directory (the store removes orphan ``*.tmp`` files of its own).
    """
    directory = os.path.dirname(path) or "."
    tmp, fd = write_temp(path, data, temp_suffix)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(fd, tmp)
        raise
    try:
        fsync_dir(directory)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_once(path, data: bytes, mode: int = 0o600, temp_suffix: str = "tmp") -> bool:
    """Create ``path`` with ``data`` unless it exists, atomically and durably
    (the temp file is hard-linked to its name, which fails if another process
    was first): nobody ever reads it half-written. Returns whether this call
    created it. For a secret made once and shared by every worker."""
    path = os.fspath(path)
    tmp, fd = write_temp(path, data, temp_suffix, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        discard(fd, tmp)
    fsync_dir(os.path.dirname(path) or ".")
    return True


def replace_file(path, data: bytes, temp_suffix: str = "tmp") -> None:
    """write_atomic for callers that do not keep the descriptor; creates the folder."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    os.close(write_atomic(os.fspath(path), data, temp_suffix))
