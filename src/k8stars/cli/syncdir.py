"""``tarscli syncdir``: copy changed files from ``TARS_SYNC_DIRECTORY`` (e.g. a mounted
ConfigMap) to ``TARS_SYNC_TARGET_DIRECTORY`` (default ``$TARS_PATH/bin``).

Rules (those of the original, made atomic):

* Only the top level of the source is read; every entry that is a regular file after
  following symlinks is a candidate (ConfigMap keys are symlinks into ``..data``). Directories,
  broken links and other special files are skipped, as are hidden entries starting with ``..``
  (the ConfigMap's own bookkeeping).
* A file is copied when the target is missing or differs in size or modification time; the
  copy gets the source's modification time, so an unchanged file is not copied again.
* The copy is written to a temporary file in the target directory, flushed, then renamed over
  the target: a reader never sees a half-written file. A new file gets mode 0755 (as in the
  original: scripts pulled from a ConfigMap stay runnable); a replaced file keeps its mode.
* ``TARS_SYNC_DIRECTORY`` unset: nothing to do (exit 0), as in the original.

Prints one line per copied file and a summary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field

from .settings import CliError, Settings

__all__ = ["SyncResult", "main", "sync_directory"]

_NEW_FILE_MODE = 0o755


@dataclass
class SyncResult:
    """Names (relative to the source) copied, unchanged and skipped (with the reason)."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def sync_directory(source: str, target: str) -> SyncResult:
    """Copy the changed regular files of ``source`` into ``target`` (created if missing)."""
    try:
        names = sorted(os.listdir(source))
    except FileNotFoundError:
        raise CliError(f"TARS_SYNC_DIRECTORY={source!r}: no such directory") from None
    except NotADirectoryError:
        raise CliError(f"TARS_SYNC_DIRECTORY={source!r}: not a directory") from None
    except OSError as exc:
        raise CliError(f"TARS_SYNC_DIRECTORY={source!r}: cannot list: {exc.strerror}") from None
    if os.path.exists(target) and os.path.samefile(source, target):
        raise CliError(f"TARS_SYNC_TARGET_DIRECTORY={target!r} is the source directory")
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as exc:
        raise CliError(f"TARS_SYNC_TARGET_DIRECTORY={target!r}: cannot create: "
                       f"{exc.strerror}") from None

    result = SyncResult()
    for name in names:
        if name.startswith(".."):
            continue
        src = os.path.join(source, name)
        try:
            src_stat = os.stat(src)  # follows symlinks
        except OSError as exc:
            result.skipped.append((name, f"unreadable: {exc.strerror}"))
            continue
        if not stat.S_ISREG(src_stat.st_mode):
            result.skipped.append((name, "not a regular file"))
            continue
        dst = os.path.join(target, name)
        try:
            dst_stat: os.stat_result | None = os.stat(dst)
        except FileNotFoundError:
            dst_stat = None
        if dst_stat is not None and not stat.S_ISREG(dst_stat.st_mode):
            result.skipped.append((name, "the target is not a regular file"))
            continue
        if (dst_stat is not None and dst_stat.st_size == src_stat.st_size
                and dst_stat.st_mtime_ns == src_stat.st_mtime_ns):
            result.unchanged.append(name)
            continue
        mode = stat.S_IMODE(dst_stat.st_mode) if dst_stat is not None else _NEW_FILE_MODE
        _copy_atomic(src, dst, src_stat, mode)
        result.copied.append(name)
    return result


def _copy_atomic(src: str, dst: str, src_stat: os.stat_result, mode: int) -> None:
    directory, name = os.path.split(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".sync", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.utime(tmp, ns=(src_stat.st_atime_ns, src_stat.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(args: list[str]) -> int:
    """Entry point of ``tarscli syncdir`` (no arguments)."""
    if args:
        raise CliError(f"takes no arguments, got {' '.join(args)!r}")
    settings = Settings()
    source = settings.sync_directory
    if not source:
        sys.stdout.write("tarscli syncdir: TARS_SYNC_DIRECTORY is not set: nothing to do\n")
        return 0
    target = settings.sync_target_directory
    result = sync_directory(source, target)
    for name in result.copied:
        sys.stdout.write(f"tarscli syncdir: copied {os.path.join(source, name)} -> "
                         f"{os.path.join(target, name)}\n")
    for name, reason in result.skipped:
        sys.stderr.write(f"tarscli syncdir: warning: skipped {os.path.join(source, name)}: "
                         f"{reason}\n")
    sys.stdout.write(f"tarscli syncdir: {len(result.copied)} copied, {len(result.unchanged)} "
                     f"unchanged, {len(result.skipped)} skipped\n")
    return 0
