"""Which files of a folder make up a job, in which order.

Client (upload mode) and gateway (path mode) both use this, so a folder gives the same
job either way: every file that is not hidden, nested folders included; a folder's files
(sorted) before its sub-folders (sorted). Symbolic links to files are listed but never
followed here (whoever reads them decides); a folder that cannot be read, and a symbolic
link to a folder, are listed as entries with an error, so that each gets its line in the
results instead of vanishing from the job.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LINKED_FOLDER = "symbolic link to a folder; not followed"
NOT_UTF8 = "file name is not valid UTF-8; not read (rename it)"


@dataclass(frozen=True)
class FileEntry:
    """One line of a job: a file's relative path ('/'-separated), or a folder that failed."""

    path: str
    error: str = ""
    # What changes when the file does, for delta jobs (size, mtime and inode); "" if not asked.
    version: str = ""


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def walk_entries(root: Path | str, versions: bool = False) -> Iterator[FileEntry]:
    """Every entry of the job that ``root`` makes, in job order (see the module's docstring);
    with ``versions``, each file's version (``file_version``) too."""
    yield from _walk(os.fspath(root), "", versions)


def file_version(stat: os.stat_result) -> str:
    """Size, modification time and inode: a file rewritten or replaced gets another version."""
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


def walk_files(root: Path | str) -> Iterator[str]:
    """The relative paths of the readable files under root, in job order."""
    return (entry.path for entry in walk_entries(root) if not entry.error)


def _walk(root: str, rel_dir: str, versions: bool) -> Iterator[FileEntry]:
    try:
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as listing:
            entries = sorted((e for e in listing if not is_hidden(e.name)), key=lambda e: e.name)
    except OSError as exc:
        yield FileEntry(rel_dir or ".", f"folder cannot be read: {exc.strerror or exc}")
        return
    folders = []
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if not _utf8(entry.name):
            yield FileEntry(rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), NOT_UTF8)
        elif _is_folder(entry):
            folders.append((rel, entry.is_symlink()))
        else:
            yield FileEntry(rel, version=_version(entry) if versions else "")
    for rel, linked in folders:
        if linked:
            yield FileEntry(rel, LINKED_FOLDER)
        else:
            yield from _walk(root, rel, versions)


def _version(entry: os.DirEntry) -> str:
    try:
        return file_version(entry.stat(follow_symlinks=False))
    except OSError:
        return ""  # gone or unreadable: classified (and failed) again


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as surrogates
        return False
    return True


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link: a link to a folder is a folder here, and reported
    except OSError:
        return False
