"""Keep a photo database current while files appear, change, move or disappear: ``index --watch``.

:func:`watch_folder` indexes the folder once, then waits for changes and brings the database
up to date after each *batch* of them (:func:`~semsearch.photos.folder.index_folder`: only new
or changed content is described; moved files keep their vectors). A batch ends when the folder
has been quiet for ``settle`` seconds, so a photo still being copied is read once, whole.

Changes are noticed through the ``watchdog`` package (``pip install 'semsearch[watch]'``:
inotify, FSEvents, ReadDirectoryChangesW) when it is installed, else by listing the folder every
``interval`` seconds (name, size and mtime of each image: network drives, where file-system
events do not arrive, need this anyway; ``use_watchdog=False`` forces it). Hidden folders (the
database's own ``.semsearch/``) are ignored.

Every save is atomic (the old file stays whole until the new one is), so stopping at any
moment (Ctrl-C) leaves a complete database: the last batch's, or an index run's checkpoint.

Example
-------
>>> watch_folder("~/Pictures", "~/Pictures/.semsearch/photos.npz",
...              on_report=lambda r: print(r.summary()))               # doctest: +SKIP
239 images: 239 new, 0 changed, 0 deleted, 0 unchanged; 0 skipped
240 images: 1 new, 0 changed, 0 deleted, 239 unchanged; 0 skipped
"""
from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

from semsearch.common.images import image_suffixes
from semsearch.photos.paths import find_photo_files

PathLike = Union[str, "os.PathLike[str]"]


def snapshot(root: Path) -> Dict[str, Tuple[int, int]]:
    """Relative path -> (size, mtime ns) of every image under ``root`` (as ``index`` finds them)."""
    found = {}
    for path in find_photo_files(root, image_suffixes())[0]:
        try:
            status = path.stat()
        except OSError:  # gone since listing
            continue
        found[path.relative_to(root).as_posix()] = (status.st_size, status.st_mtime_ns)
    return found


class PollingWatcher:
    """Notices changes by comparing :func:`snapshot` every ``interval`` seconds."""

    def __init__(self, root: Path, interval: float):
        self.root, self.interval, self.last = root, interval, snapshot(root)

    def changed(self, timeout: float) -> bool:
        """Whether the folder changed since the last call (waits up to ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            now = snapshot(self.root)
            if now != self.last:
                self.last = now
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.interval, left))

    def close(self) -> None:
        pass


class EventWatcher:
    """Notices changes from ``watchdog``'s file-system events (hidden folders ignored)."""

    def __init__(self, root: Path):
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        events: "queue.Queue[str]" = queue.Queue()

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                for path in (event.src_path, getattr(event, "dest_path", "")):
                    if path and not _hidden(Path(os.fsdecode(path)), root):
                        events.put(os.fsdecode(path))

        self.events, self.observer = events, Observer()
        self.observer.schedule(Handler(), str(root), recursive=True)
        self.observer.start()

    def changed(self, timeout: float) -> bool:
        """Whether an event arrived (waits up to ``timeout`` seconds); drains the queue."""
        try:
            self.events.get(timeout=timeout)
        except queue.Empty:
            return False
        while not self.events.empty():
            self.events.get_nowait()
        return True

    def close(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)


def _hidden(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    return any(part.startswith(".") for part in parts)


def make_watcher(root: Path, interval: float, use_watchdog: Optional[bool] = None):
    """An :class:`EventWatcher` when watchdog is installed (and wanted), else a :class:`PollingWatcher`."""
    if use_watchdog is not False:
        try:
            return EventWatcher(root)
        except ImportError:
            if use_watchdog:
                from semsearch.errors import MissingExtraError

                raise MissingExtraError("watching with file-system events needs watchdog: pip install 'semsearch[watch]'") from None
        except OSError:  # e.g. out of inotify watches: polling still works
            pass
    return PollingWatcher(root, interval)


def watch_folder(folder: PathLike, db_path: PathLike, *, on_report: Callable = print, settle: float = 1.0,
                 interval: float = 2.0, use_watchdog: Optional[bool] = None, stop: Optional[threading.Event] = None,
                 **index_options):
    """Index ``folder`` into ``db_path``, then keep it current until ``stop`` is set (or Ctrl-C).

    Parameters
    ----------
    folder, db_path : path
        As for :func:`~semsearch.photos.folder.index_folder`.
    on_report : callable
        Called with each run's :class:`~semsearch.photos.folder.IndexReport` (first run included).
    settle : float
        Seconds without changes that end a batch.
    interval : float
        Seconds between listings when polling (and how often ``stop`` is checked).
    use_watchdog : bool, optional
        None: watchdog if installed, else polling; False: polling; True: watchdog or an error.
    stop : threading.Event, optional
        Set it (from another thread) to return after the current batch.
    **index_options
        Passed to ``index_folder`` (``model``, ``backbone``, ``batch_size``, ``progress``...).

    Returns
    -------
    int
        How many update runs there were after the first.
    """
    from semsearch.photos.folder import index_folder

    root = Path(folder).expanduser().resolve()
    stop = stop or threading.Event()
    watcher = make_watcher(root, interval, use_watchdog)
    runs = 0
    try:
        on_report(index_folder(root, db_path, **index_options))
        while not stop.is_set():
            if not watcher.changed(timeout=interval):
                continue
            while watcher.changed(timeout=settle):  # wait for the folder to be quiet
                pass
            on_report(index_folder(root, db_path, **index_options))
            runs += 1
    finally:
        watcher.close()
    return runs
