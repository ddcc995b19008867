"""Atomic file writes: a temporary file in the same folder, then a rename, so no reader ever
sees a half-written file and an interrupted run leaves the old file intact."""

from __future__ import annotations

import os
import shutil
import tempfile


def atomic_write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8, newlines kept exactly as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically, keeping an existing file's permission bits."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".regionx-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if os.path.exists(path):
            shutil.copymode(path, tmp)
        else:  # mkstemp makes 0600 files; give new files the usual umask-derived mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_copy(src: str, dst: str) -> None:
    """Copy a file atomically (nothing to do when `src` is `dst`)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    with open(src, "rb") as handle:
        atomic_write_bytes(dst, handle.read())
