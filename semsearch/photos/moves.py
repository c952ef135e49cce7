"""Recognising photos by content on re-index: moved, renamed, copied or merely touched files.

:func:`index_folder <semsearch.photos.folder.index_folder>` matches files to its database by
path, size and mtime first (no reading). Every other file is hashed
(:mod:`semsearch.photos.hashing`) and, when its content is already in the database, keeps
that row's descriptor instead of being described again:

- its old path is gone: the photo was **moved** or renamed;
- its old path still holds it: it is a **copy**;
- it is at its own old path with a new mtime (``touch``, a sync tool): it is **unchanged**.

Files that are new to the database but the same as each other (copied in together) are
described once (:attr:`Reuse.twins`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from semsearch.photos.hashing import UNKNOWN
from semsearch.photos.metadata import PhotoInfo, read_info


@dataclass
class Reuse:
    """What :func:`reuse_known_content` found.

    Attributes
    ----------
    to_describe : list of str
        Keys whose content is new: to describe.
    twins : dict
        Key -> a key of ``to_describe`` with the same content (copy its descriptor).
    infos : dict
        Key -> :class:`PhotoInfo` of every file that was read.
    n_moved, n_copies, n_touched, n_replaced : int
        Files that kept an old descriptor: moved/renamed, copies, touched at their old path,
        and changed paths whose new content is another indexed photo's.
    sources : set of str
        Old keys whose photo moved away (not deleted, though gone from their path).
    """

    to_describe: List[str] = field(default_factory=list)
    twins: Dict[str, str] = field(default_factory=dict)
    infos: Dict[str, PhotoInfo] = field(default_factory=dict)
    n_moved: int = 0
    n_copies: int = 0
    n_touched: int = 0
    n_replaced: int = 0
    sources: Set[str] = field(default_factory=set)


def reuse_known_content(todo: List[str], on_disk: Dict[str, tuple], old, entries: Dict[str, tuple],
                        changed: Set[str], failed: list) -> Reuse:
    """Hash the files of ``todo`` and give those whose content ``old`` holds their old descriptor.

    Parameters
    ----------
    todo : list of str
        Keys not matched by path, size and mtime (new or changed files).
    on_disk : dict
        Key -> ``(path, size, mtime_ns)`` of every file found.
    old : PhotoDatabase or None
        The database being brought up to date.
    entries : dict
        Key -> ``(size, mtime, descriptor, PhotoInfo)``; reused rows are added to it.
    changed : set of str
        The keys of ``todo`` that ``old`` holds at the same path (with another size or mtime).
    failed : list
        ``(path, reason)`` of unreadable files is appended to it.
    """
    reuse = Reuse()
    rows_of: Dict[str, List[int]] = {}
    if old is not None:
        for row, digest in enumerate(old.metadata.content_hash.tolist()):
            if digest != UNKNOWN:
                rows_of.setdefault(digest, []).append(row)
    old_keys = old.keys.tolist() if old is not None else []
    first_of: Dict[str, str] = {}
    for key in todo:
        path, size, mtime = on_disk[key]
        try:
            info = reuse.infos[key] = read_info(path)
        except OSError as e:  # vanished or unreadable since listing
            failed.append((str(path), f"cannot read it ({e.strerror or e})"))
            continue
        rows = rows_of.get(info.content_hash)
        if not rows:
            if info.content_hash in first_of:
                reuse.twins[key] = first_of[info.content_hash]
            else:
                first_of[info.content_hash] = key
                reuse.to_describe.append(key)
            continue
        keys = [old_keys[r] for r in rows]
        gone = [k for k in keys if k not in on_disk and k not in reuse.sources]
        row = rows[keys.index(key)] if key in keys else rows[keys.index(gone[0])] if gone else rows[0]
        entries[key] = (size, mtime, old.descriptors[row], info)
        if key in keys:
            reuse.n_touched += 1
        elif key in changed:
            reuse.n_replaced += 1
        elif gone:
            reuse.n_moved += 1
            reuse.sources.add(gone[0])
        else:
            reuse.n_copies += 1
    return reuse


def fill_in_infos(entries: Dict[str, tuple], on_disk: Dict[str, tuple], failed: list) -> int:
    """Read the metadata of entries that have none (a database from before metadata); how many.

    An entry whose file cannot be read any more is dropped (and listed in ``failed``).
    """
    n = 0
    for key, (size, mtime, descriptor, info) in list(entries.items()):
        if info is None:
            path = on_disk[key][0]
            try:
                entries[key] = (size, mtime, descriptor, read_info(path))
                n += 1
            except OSError as e:
                failed.append((str(path), f"cannot read it ({e.strerror or e})"))
                del entries[key]
    return n


def twin_entries(reuse: Reuse, on_disk: Dict[str, tuple], entries: Dict[str, tuple]) -> None:
    """Give each of ``reuse.twins`` the descriptor of the file it is the same as, once described."""
    for key, first in reuse.twins.items():
        if first in entries:
            _, size, mtime = on_disk[key]
            entries[key] = (size, mtime, entries[first][2], reuse.infos[key])


def optional_info(metadata, row: int) -> Optional[PhotoInfo]:
    """Row ``row``'s :class:`PhotoInfo`, None if it was never read."""
    return metadata.info(row) if metadata.is_known(row) else None
