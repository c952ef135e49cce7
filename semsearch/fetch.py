"""Download the data folder: COCO caption files and the course's ResNet18 descriptors.

``semsearch fetch`` (or :func:`fetch`) fills a data folder (see ``data/README.md``)::

    data/
        coco/annotations/captions_train2014.json   <- "captions2014" (official zip) or "resnet18"
        coco/annotations/captions_val2014.json     <- "captions2014"
        coco/annotations/captions_train2017.json   <- "captions2017"
        coco/annotations/captions_val2017.json     <- "captions2017"
        resnet18_features.pkl                      <- "resnet18" (the course's descriptors)
        glove/glove.6B.50d.txt.w2v                 <- "glove50" (only when asked for)
        glove/glove.6B.200d.txt.w2v.zip            <- "glove200" (only when asked for; read as it is)

Every download is checked against the checksum pinned in :data:`SOURCES` (``pooch``
downloads to a temporary file and keeps it only if the checksum matches). Zips are
extracted into a temporary folder beside the target and then moved into place, and only
the caption files are kept: a file in the data folder is always complete or absent.
Before downloading anything, each host is tried with a short connection timeout, so
without internet :func:`fetch` fails in seconds with one line naming what it could not
reach.

Where the pinned checksums come from
------------------------------------
================================  =========================================================
annotations_trainval2014.zip      sha256 ``031296bb...a3bf009``, 252,872,794 bytes:
                                  tensorflow/datasets ``tensorflow_datasets/url_checksums/
                                  coco.txt``. Cross-check: md5 ``0a379cfc70b0e71301e0f377548639bd``
                                  in PaddlePaddle/PaddleNLP ``paddlenlp/datasets/
                                  coco_captions.py`` (``MD5_ANNO``) and PaddleDetection.
annotations_trainval2017.zip      sha256 ``113a836d...e470268``, 252,907,541 bytes:
                                  tensorflow/datasets ``tensorflow_datasets/url_checksums/
                                  coco.txt``. Cross-check: md5 ``f4bbac642086de4f52a3fdda2de5fa2c``
                                  in PaddlePaddle/PaddleDetection ``ppdet/data/tests/
                                  test_reader.py`` (``COCO_ANNO_MD5SUM``) and MLPerf scripts.
resnet18_features.pkl             sha256 ``d56e267d...e1023450``: the course's own data
captions_train2014.json (course)  package, rsokl/cog_data ``src/cogworks_data/_utils.py``
                                  (``language_files``, fetched by ``cogworks_data.language.
                                  get_data_path``), release ``language-files`` of
                                  github.com/rsokl/cog_data. Sizes 174,540,061 and
                                  66,782,097 bytes and the same sha256 values are also
                                  pinned in SamGu-NRX/cogworks-week3-language-benchmark.
glove.6B.50d.txt.w2v              sha256 ``9a8a78e2...412be5cd3``: the same registry
glove.6B.200d.txt.w2v.zip         sha256 ``6cbe8862...26b0472b3a``: the same registry
                                  (``language_files``, rsokl/cog_data ``src/cogworks_data/
                                  _utils.py``), the same release.
================================  =========================================================

The checksums were found in those public sources, not computed here: this module was
written without access to the files themselves.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import socket
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from semsearch import paths
from semsearch.errors import InputError, SemsearchError

PathLike = Union[str, "os.PathLike[str]"]


class FetchError(SemsearchError, RuntimeError):
    """A download could not be made, or did not match its pinned checksum. One-line message."""


@dataclass(frozen=True)
class Download:
    """One file to download into the data folder.

    Attributes
    ----------
    url : str
    known_hash : str or None
        ``"sha256:..."`` or ``"md5:..."`` (pooch's format); None means not verified
        (a warning says so).
    dest : str
        For a plain file: its path in the data folder. For a zip: the folder (in the data
        folder) that the kept members go into.
    members : tuple of str
        For a zip: ``fnmatch`` patterns of the members to keep (flattened into ``dest``).
        Empty for a plain file.
    outputs : tuple of str
        The files (relative to the data folder) this download provides; when they all
        exist, the download is skipped.
    size : int, optional
        Expected size in bytes, for the messages only.
    source : str
        Where the URL and checksum come from.
    """

    url: str
    known_hash: Optional[str]
    dest: str
    members: Tuple[str, ...] = ()
    outputs: Tuple[str, ...] = field(default=())
    size: Optional[int] = None
    source: str = ""

    @property
    def name(self) -> str:
        """The file name in the URL, e.g. ``annotations_trainval2014.zip``."""
        return Path(urlsplit(self.url).path).name

    @property
    def is_zip(self) -> bool:
        return bool(self.members)

    def output_paths(self, root: Path) -> List[Path]:
        outputs = self.outputs or ((self.dest,) if not self.is_zip else ())
        return [root / o for o in outputs]


_COCO = "http://images.cocodataset.org/annotations/"
_COURSE = "https://github.com/rsokl/cog_data/releases/download/language-files/"
_TFDS = "tensorflow/datasets tensorflow_datasets/url_checksums/coco.txt"
_COG_DATA = "rsokl/cog_data src/cogworks_data/_utils.py (language_files)"

#: What :func:`fetch` can download, by name: URL, pinned checksum, and where it goes.
SOURCES: Dict[str, Tuple[Download, ...]] = {
    "captions2014": (
        Download(
            url=_COCO + "annotations_trainval2014.zip",
            known_hash="sha256:031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
            dest="coco/annotations",
            members=("annotations/captions_train2014.json", "annotations/captions_val2014.json"),
            outputs=("coco/annotations/captions_train2014.json", "coco/annotations/captions_val2014.json"),
            size=252_872_794,
            source=f"{_TFDS}; md5 0a379cfc70b0e71301e0f377548639bd in PaddlePaddle/PaddleNLP",
        ),
    ),
    "captions2017": (
        Download(
            url=_COCO + "annotations_trainval2017.zip",
            known_hash="sha256:113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268",
            dest="coco/annotations",
            members=("annotations/captions_train2017.json", "annotations/captions_val2017.json"),
            outputs=("coco/annotations/captions_train2017.json", "coco/annotations/captions_val2017.json"),
            size=252_907_541,
            source=f"{_TFDS}; md5 f4bbac642086de4f52a3fdda2de5fa2c in PaddlePaddle/PaddleDetection",
        ),
    ),
    "resnet18": (
        Download(
            url=_COURSE + "resnet18_features.pkl",
            known_hash="sha256:d56e267dacd39608b4aae581595f8fa8ec55457ab59b713df1eafa93e1023450",
            dest="resnet18_features.pkl",
            size=174_540_061,
            source=_COG_DATA,
        ),
        # The course's copy of the train2014 captions (the images its descriptors cover).
        # Skipped when captions_train2014.json is already there, e.g. from "captions2014".
        Download(
            url=_COURSE + "captions_train2014.json",
            known_hash="sha256:dd8c9636dc11740f956e36728866ea0c4ebe4988dcbdc5e712b7c2267f152d12",
            dest="coco/annotations/captions_train2014.json",
            size=66_782_097,
            source=_COG_DATA,
        ),
    ),
    # The course's word vectors, from the release of its resnet18_features.pkl. The 200-d file
    # (what today's course hands out) is kept as the zip: semsearch.glove.load_glove reads it.
    "glove50": (
        Download(
            url=_COURSE + "glove.6B.50d.txt.w2v",
            known_hash="sha256:9a8a78e2c6da3115e97044cbcfb40736d430961410bf732a4e80776412be5cd3",
            dest="glove/glove.6B.50d.txt.w2v",
            source=_COG_DATA,
        ),
    ),
    "glove200": (
        Download(
            url=_COURSE + "glove.6B.200d.txt.w2v.zip",
            known_hash="sha256:6cbe88628045658c4175c50121b9ad6c61c39777ee42bdb19a255d26b0472b3a",
            dest="glove/glove.6B.200d.txt.w2v.zip",
            source=_COG_DATA,
        ),
    ),
}

#: What ``semsearch fetch`` downloads by default (about 750 MB); the GloVe files only when asked for.
DEFAULT_WHAT = ("captions2014", "captions2017", "resnet18")

#: Seconds to wait for a host to accept a connection (the reachability check and each request).
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for the next bytes of a download before giving up.
READ_TIMEOUT = 60.0


def fetch(
    data_dir: Optional[PathLike] = None,
    *,
    what: Sequence[str] = DEFAULT_WHAT,
    progress: bool = True,
    sources: Optional[Mapping[str, Sequence[Download]]] = None,
    timeout: float = CONNECT_TIMEOUT,
    force: bool = False,
) -> List[Path]:
    """Download the named parts of the data folder; return the paths of their files.

    Parameters
    ----------
    data_dir : path, optional
        The data folder (default :func:`semsearch.paths.data_dir`: ``$SEMSEARCH_DATA`` or ``./data``).
    what : sequence of str
        Keys of ``sources``: ``"captions2014"``, ``"captions2017"``, ``"resnet18"``, ``"glove50"``, ``"glove200"``.
    progress : bool
        Show download progress bars.
    sources : mapping, optional
        The table of downloads (default :data:`SOURCES`); tests pass their own.
    timeout : float
        Seconds to wait when connecting to a host.
    force : bool
        Download again even if the files are there.

    Returns
    -------
    list of Path
        Every file the requested parts provide, whether downloaded now or already there.

    Raises
    ------
    ValueError
        An unknown name in ``what``.
    FetchError
        A host cannot be reached, a download fails, a checksum does not match, or a zip
        lacks an expected member. Nothing half-written is left in the data folder.
    """
    import pooch

    root = paths.data_dir(data_dir)
    table = SOURCES if sources is None else sources
    if isinstance(what, str):
        what = (what,)
    unknown = [w for w in what if w not in table]
    if unknown:
        raise InputError(f"unknown download {unknown[0]!r}; choose from {', '.join(table)}")
    downloads = [d for w in dict.fromkeys(what) for d in table[w]]
    pending = [d for d in downloads if force or not all(p.is_file() for p in d.output_paths(root))]
    _check_reachable(pending, timeout)

    if not progress:
        pooch.get_logger().setLevel("WARNING")
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=(timeout, READ_TIMEOUT))
    staging = root / ".downloads"
    written: set = set()
    try:
        for item in pending:
            outputs = item.output_paths(root)
            # An earlier item of this run may have provided these files (both "captions2014"
            # and "resnet18" provide captions_train2014.json): do not download them twice.
            if all(p.is_file() for p in outputs) and (not force or all(p in written for p in outputs)):
                continue
            if item.is_zip:
                archive = _retrieve(pooch, item, staging, item.name, downloader)
                try:
                    written.update(_extract(archive, item, root / item.dest))
                finally:
                    archive.unlink(missing_ok=True)
            else:
                target = root / item.dest
                _retrieve(pooch, item, target.parent, target.name, downloader)
                written.add(target)
    finally:
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()
    return [p for d in downloads for p in d.output_paths(root)]


def _check_reachable(downloads: Sequence[Download], timeout: float) -> None:
    """Open (and close) a TCP connection to each host, or raise one clear FetchError."""
    hosts: Dict[Tuple[str, int], List[str]] = {}
    for item in downloads:
        parts = urlsplit(item.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        hosts.setdefault((parts.hostname or "", port), []).append(item.name)
    for (host, port), names in hosts.items():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as e:
            if isinstance(e, socket.timeout):
                reason = f"no answer in {timeout:g} s"
            else:
                reason = e.strerror or type(e).__name__
            raise FetchError(
                f"cannot reach {host}:{port} to download {', '.join(names)} ({reason}); "
                "check the internet connection, or put the files in the data folder by hand (see data/README.md)"
            ) from None


def _retrieve(pooch, item: Download, folder: Path, fname: str, downloader) -> Path:
    """pooch.retrieve with the pinned hash, errors turned into one-line FetchErrors."""
    import requests

    if item.known_hash is None:
        warnings.warn(f"no pinned checksum for {item.url}: the download is not verified", stacklevel=3)
    try:
        path = pooch.retrieve(item.url, known_hash=item.known_hash, fname=fname, path=folder, downloader=downloader)
    except ValueError as e:  # pooch: hash mismatch
        first = str(e).split(". ")[0]
        raise FetchError(f"checksum mismatch for {item.url}: {first}; nothing was kept") from None
    except requests.exceptions.RequestException as e:
        raise FetchError(f"download of {item.url} failed: {_one_line(e)}") from None
    return Path(path)


def _extract(archive: Path, item: Download, dest: Path) -> List[Path]:
    """Move the zip members matching ``item.members`` into ``dest``, flattened, all or none."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            chosen = [n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in item.members)]
            missing = [p for p in item.members if not any(fnmatch.fnmatch(n, p) for n in names)]
            if missing:
                raise FetchError(f"{item.name} has no member {missing[0]!r}")
            dest.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
            try:
                for name in chosen:
                    with z.open(name) as src, open(tmp / Path(name).name, "wb") as out:
                        shutil.copyfileobj(src, out, length=1 << 20)
                written = []
                for name in chosen:
                    target = dest / Path(name).name
                    os.replace(tmp / target.name, target)
                    written.append(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise FetchError(f"{item.name} is not a readable zip: {e}") from None
    return written


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


# --------------------------------------------------------------------------- command line


def add_parser(subparsers):
    """Add ``semsearch fetch [--data DIR] [--only PART...] [--force] [--quiet]``."""
    from pathlib import Path

    p = subparsers.add_parser(
        "fetch", help="download the COCO captions and the course's descriptors",
        description="Download into the data folder, checking pinned checksums: the COCO 2014 and 2017 caption files "
        "(only the captions of the official zips are kept) and the course's resnet18_features.pkl with its "
        "captions_train2014.json; with --only glove50 / glove200, the course's GloVe files (glove/ in the data "
        "folder; pass them to --glove). Files already there are not downloaded again.",
        epilog="example: semsearch fetch --data data --only captions2017 glove200",
    )
    p.add_argument("--data", metavar="DIR", type=Path, help="data folder (default $SEMSEARCH_DATA or ./data)")
    p.add_argument("--only", nargs="+", choices=tuple(SOURCES), metavar="PART",
                   help=f"{', '.join(SOURCES)} (default: {', '.join(DEFAULT_WHAT)})")
    p.add_argument("--force", action="store_true", help="download again even if the files are there")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """``semsearch fetch``: download what is missing, print each file and its size."""
    root = paths.data_dir(args.data)
    what = tuple(args.only or DEFAULT_WHAT)
    print(f"fetching {', '.join(what)} into {root}/ (files already there are kept)", flush=True)
    for path in fetch(root, what=what, progress=not args.quiet, force=args.force):
        print(f"  {path}  ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0
