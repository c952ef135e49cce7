"""A searchable database of a folder of photos, kept up to date incrementally.

:func:`index_folder` finds every image under a folder (any file names, sub-folders too),
describes the new or changed ones with a CNN backbone, embeds them with a trained model
and saves a :class:`PhotoDatabase` keyed by each file's path relative to the folder.
Running it again describes only files that are new or whose size or modification time
changed, and drops deleted ones; a file whose content hash is already in the database (a
photo moved or renamed, or a copy) keeps its descriptor and is not described again
(:mod:`semsearch.photos.moves`). Broken files are skipped and listed.

The database file (``.npz``, read with ``allow_pickle=False``) holds, per image, the
relative path (key), size, mtime (ns), backbone descriptor (N, D) and embedding (N, dim),
its content hash and what a search filters by (:mod:`semsearch.photos.metadata`: date taken,
camera, width x height, orientation), plus the folder, the backbone's name, and which model embedded it (its folder and the
sha256 of its ``model.npz``). Keeping the descriptors lets another model re-embed the
whole folder without running the backbone again. It is saved atomically every
``checkpoint_every`` images, so an interrupted run loses little and the next run resumes.

Example
-------
>>> report = index_folder("~/Pictures", "pictures.npz")       # the shipped model  # doctest: +SKIP
>>> print(report.summary())                                                        # doctest: +SKIP
1532 images: 1532 new, 0 changed, 0 deleted, 0 unchanged; 2 skipped
>>> search = load_search("pictures.npz")                                           # doctest: +SKIP
>>> search.query("dog + beach - grass", k=5)                                       # doctest: +SKIP
(array(['2023/IMG_0139.jpg', ...], dtype='<U...'), array([0.61, ...], dtype=float32))
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from semsearch.backbones import backbone_of_dim
from semsearch.common.files import load_npz, save_npz, sha256_of_file
from semsearch.database import ImageDatabase
from semsearch.errors import InputError, MissingExtraError
from semsearch.common.images import failure_reason, image_suffixes, open_image
from semsearch.photos.metadata import COLUMNS, Metadata
from semsearch.photos.moves import fill_in_infos, optional_info, reuse_known_content, twin_entries
from semsearch.photos.paths import check_keys, find_photo_files, require_inside

if TYPE_CHECKING:
    from semsearch.model import Autoembedder

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-photos-2"
#: The format before content hashes and metadata; still read (the next index run fills them in).
FORMAT_1 = "semsearch-photos-1"
#: What a database records as its model when that is the package's shipped sample model.
SAMPLE_MODEL = "<semsearch sample model>"
_ARRAYS = ("root", "keys", "sizes", "mtimes", "descriptors", "vectors", "backbone", "model", "model_sha")
#: The attribute that holds an array of the file whose name differs from it (the file keeps its names).
_FIELD_OF = {"backbone": "backbone_name", "model": "model_dir"}
_TEXTS = ("root", "backbone", "model", "model_sha")  # arrays holding one str


@dataclass
class PhotoDatabase:
    """Everything known about an indexed folder; row i of each array is image ``keys[i]``.

    Attributes
    ----------
    root : str
        The indexed folder (absolute).
    keys : (N,) str
        Paths relative to ``root``, with ``/`` separators.
    sizes, mtimes : (N,) int64
        File size in bytes and modification time in ns when the image was described.
    descriptors : (N, D) float32
        The backbone's descriptors.
    vectors : (N, dim) float32
        The model's unit embeddings of the descriptors.
    backbone_name : str
        The backbone that made the descriptors, e.g. ``"efficientnet-lite0"`` (the file's array ``backbone``).
    model_dir, model_sha : str
        The model folder that embedded them (or :data:`SAMPLE_MODEL`; the file's array ``model``)
        and its ``model.npz`` sha256.
    metadata : Metadata
        Content hash, date taken, camera, size and orientation per image (unknown if not given).
    """

    root: str
    keys: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray
    descriptors: np.ndarray
    vectors: np.ndarray
    backbone_name: str
    model_dir: str
    model_sha: str
    metadata: Optional[Metadata] = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            self.metadata = Metadata.unknown(len(self.keys))

    def __len__(self) -> int:
        return len(self.keys)

    def save(self, path: PathLike) -> None:
        """Write the database atomically (the old file stays whole until the new one is)."""
        arrays = {name: getattr(self, _FIELD_OF.get(name, name)) for name in _ARRAYS}
        for name in _TEXTS:
            arrays[name] = np.array(arrays[name], dtype=str)
        arrays["keys"] = np.asarray(self.keys, dtype=str) if len(self.keys) else np.zeros(0, dtype="<U1")
        save_npz(path, FORMAT, **arrays, **self.metadata.arrays())

    @classmethod
    def load(cls, path: PathLike) -> "PhotoDatabase":
        """Read a database written by :meth:`save` (never runs code: no pickles)."""
        if _format_of(path) == FORMAT_1:
            values = dict(zip(_ARRAYS, load_npz(path, FORMAT_1, _ARRAYS, "photo database")))
            values["metadata"] = Metadata.unknown(len(values["keys"]))
        else:
            found = load_npz(path, FORMAT, _ARRAYS + tuple(COLUMNS), "photo database")
            values = dict(zip(_ARRAYS, found))
            values["metadata"] = Metadata(**dict(zip(COLUMNS, found[len(_ARRAYS):])))
        for name in _TEXTS:
            values[name] = str(values[name])
        values = {_FIELD_OF.get(name, name): value for name, value in values.items()}
        n = len(values["keys"])
        lengths = {len(values[name]) for name in ("sizes", "mtimes", "descriptors", "vectors")}
        lengths |= {len(column) for column in values["metadata"].arrays().values()}
        if lengths != {n}:
            raise InputError(f"{path}: its arrays have different lengths (a damaged photo database)")
        check_keys(values["keys"].tolist(), values["root"], path)
        return cls(**values)

    def rows(self) -> Dict[str, int]:
        """Key -> row."""
        return {k: r for r, k in enumerate(self.keys.tolist())}


def _format_of(path: PathLike) -> str:
    """The format tag of a ``.npz`` file, ``""`` if it cannot be read (load_npz then says why)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return str(f["format"])
    except Exception:  # reported by load_npz with the file's name
        return ""


@dataclass
class IndexReport:
    """What :func:`index_folder` did: counts per kind of file, and the files it skipped."""

    n_new: int = 0
    n_changed: int = 0
    n_deleted: int = 0
    n_unchanged: int = 0
    n_moved: int = 0
    n_copies: int = 0
    n_reembedded: int = 0
    failed: List[Tuple[str, str]] = field(default_factory=list)
    n_images: int = 0

    def summary(self) -> str:
        """One line, e.g. ``239 images: 2 new, 1 changed, 1 deleted, 236 unchanged; 3 skipped``.

        Photos recognised by their content hash are counted as ``N moved`` (moved or renamed)
        and ``N copies`` (of a photo still in its place), when there are any.
        """
        line = f"{self.n_images} images: {self.n_new} new, {self.n_changed} changed, {self.n_deleted} deleted, "
        line += f"{self.n_moved} moved, " if self.n_moved else ""
        line += f"{self.n_copies} copies, " if self.n_copies else ""
        line += f"{self.n_unchanged} unchanged"
        if self.n_reembedded:
            line += f" ({self.n_reembedded} re-embedded with the new model)"
        return line + f"; {len(self.failed)} skipped"


# --------------------------------------------------------------------------- model and backbone


@dataclass
class LoadedModel:
    """A trained model folder, as :func:`load_model` reads it for indexing or searching.

    Attributes
    ----------
    autoembedder : Autoembedder
        Descriptors (N, D) -> unit embeddings (N, dim).
    text_encoder : text encoder or None
        None when loaded with ``with_text=False``.
    recorded : str
        What a database records as its model: the folder (absolute) or :data:`SAMPLE_MODEL`.
    sha : str
        sha256 of its ``model.npz``: a database embedded by other weights is re-embedded.
    backbone_name : str
        The backbone whose descriptors it takes, e.g. ``"efficientnet-lite0"``.
    """

    autoembedder: "Autoembedder"
    text_encoder: Any
    recorded: str
    sha: str
    backbone_name: str


def _resolve_model(model_dir: Optional[PathLike]) -> Tuple[str, Path]:
    """(what the database records, the folder) of a model bundle; None is the sample model."""
    if model_dir is None or str(model_dir) == SAMPLE_MODEL:
        from semsearch import sample

        return SAMPLE_MODEL, sample.model_dir()
    path = Path(model_dir).expanduser().resolve()
    return str(path), path


def load_model(model_dir: Optional[PathLike] = None, *, with_text: bool = True, glove=None) -> LoadedModel:
    """The :class:`LoadedModel` of a bundle folder (None: the shipped sample model).

    ``with_text=False`` skips loading the text encoder (its field is None). The
    backbone is the one the bundle's info records; a bundle without that record is taken
    to be ResNet18's when it takes 512-d descriptors, EfficientNet-Lite0's at 1280.
    """
    from semsearch.bundle import MODEL_FILE, load_bundle, read_info
    from semsearch.model import Autoembedder

    recorded, directory = _resolve_model(model_dir)
    manifest = read_info(directory)
    if with_text:
        autoembedder, text_encoder, _ = load_bundle(directory, glove)
    else:
        text_encoder = None
        if sha256_of_file(directory / MODEL_FILE) != manifest["files"].get(MODEL_FILE):
            raise InputError(f"{directory / MODEL_FILE} does not match its bundle.json: the folder mixes saves")
        autoembedder = Autoembedder.load(directory / MODEL_FILE)
    backbone_name = manifest["info"].get("backbone") or backbone_of_dim(autoembedder.input_dim)
    if backbone_name is None:
        raise InputError(f"{directory} does not record its backbone, and {autoembedder.input_dim}-d descriptors fit none")
    return LoadedModel(autoembedder, text_encoder, recorded, manifest["files"][MODEL_FILE], backbone_name)


def get_backbone(backbone, expected: str):
    """A backbone object (``.name``, ``.dim``, ``.describe(list of PIL) -> (B, D)``) named ``expected``.

    ``backbone`` None loads ``expected`` (:func:`semsearch.backbones.load_backbone`);
    a str is loaded by that name; an object is used as it is.
    A backbone of another name than ``expected`` is refused, naming both.
    """
    if backbone is None or isinstance(backbone, str):
        name = expected if backbone is None else backbone
        if name != expected:
            raise InputError(f"the model was trained on {expected} descriptors, not {name}'s")
        try:
            from semsearch.backbones import load_backbone
        except ImportError as e:
            raise MissingExtraError(f"describing images needs the photos extra: pip install 'semsearch[photos]' ({e})") from None
        backbone = load_backbone(name)
    if backbone.name != expected:
        raise InputError(f"the model was trained on {expected} descriptors, not {backbone.name}'s")
    return backbone


def describe_images(images, backbone) -> np.ndarray:
    """Descriptors of PIL images, (B, D) float32, checked to be finite and of the backbone's size."""
    vectors = np.asarray(backbone.describe(images), dtype=np.float32)
    if vectors.shape != (len(images), backbone.dim) or not np.isfinite(vectors).all():
        raise InputError(f"backbone {backbone.name} gave descriptors of shape {vectors.shape} (or NaN) for {len(images)} images")
    return vectors


# --------------------------------------------------------------------------- indexing

#: One file to describe: (absolute path, size in bytes, mtime in ns).
_FileState = Tuple[Path, int, int]


def _stat(path: Path) -> Tuple[int, int]:
    status = path.stat()
    return int(status.st_size), int(status.st_mtime_ns)


def _open_database(db_path: Path, model_dir: Optional[PathLike]) -> Tuple[Optional[PhotoDatabase], LoadedModel]:
    """The existing database (or None) and the model to index with (default: the database's)."""
    old = PhotoDatabase.load(db_path) if db_path.exists() else None
    if model_dir is None and old is not None:
        model_dir = old.model_dir
    loaded = load_model(model_dir, with_text=False)
    if old is not None and old.backbone_name != loaded.backbone_name:
        raise InputError(
            f"{db_path} holds {old.backbone_name} descriptors but the model {loaded.recorded} takes {loaded.backbone_name}'s: "
            "index into a new database file"
        )
    if old is not None and len(old) and old.descriptors.shape[1] != loaded.autoembedder.input_dim:  # same name, other size
        raise InputError(
            f"{db_path} holds {old.descriptors.shape[1]}-d descriptors but the model {loaded.recorded} takes "
            f"{loaded.autoembedder.input_dim}-d ones: index into a new database file"
        )
    return old, loaded


def _compare_with_disk(root: Path, old: Optional[PhotoDatabase], sha: str, report: IndexReport):
    """``(on_disk, kept, changed)``: the files found, the rows of ``old`` still valid, the changed keys.

    ``on_disk`` maps key -> (path, size, mtime); ``kept`` maps key -> (size, mtime, descriptor,
    PhotoInfo or None when ``old`` predates metadata).
    Fills the report's deleted, unchanged and re-embedded counts and its unreadable files:
    links leading outside the folder (:func:`semsearch.photos.paths.find_photo_files`) and
    folders that cannot be listed among them.
    """
    files, refused = find_photo_files(root, image_suffixes())  # links only to inside the folder
    report.failed.extend(refused)
    on_disk: Dict[str, _FileState] = {}
    for path in files:
        try:
            on_disk[path.relative_to(root).as_posix()] = (path, *_stat(path))
        except OSError as e:  # vanished or unreadable since listing
            report.failed.append((str(path), f"cannot read it ({e.strerror or e})"))
    kept: Dict[str, tuple] = {}
    changed = set()
    if old is not None:
        for key, r in old.rows().items():
            if key not in on_disk:
                report.n_deleted += 1
            elif on_disk[key][1:] == (int(old.sizes[r]), int(old.mtimes[r])):
                kept[key] = (int(old.sizes[r]), int(old.mtimes[r]), old.descriptors[r], optional_info(old.metadata, r))
                report.n_unchanged += 1
            else:
                changed.add(key)
        report.n_reembedded = report.n_unchanged if old.model_sha != sha else 0
    return on_disk, kept, changed


def _save_entries(db_path: Path, root: Path, entries: Dict[str, tuple], loaded: LoadedModel) -> None:
    """Embed and save ``entries`` (key -> (size, mtime, descriptor, PhotoInfo)) as the database, atomically."""
    keys = sorted(entries)
    autoembedder = loaded.autoembedder
    descriptors = np.array([entries[k][2] for k in keys], dtype=np.float32).reshape(len(keys), autoembedder.input_dim)
    PhotoDatabase(
        root=str(root),
        keys=np.array(keys, dtype=str),
        sizes=np.array([entries[k][0] for k in keys], dtype=np.int64),
        mtimes=np.array([entries[k][1] for k in keys], dtype=np.int64),
        descriptors=descriptors,
        vectors=autoembedder.embed(descriptors) if keys else np.zeros((0, autoembedder.output_dim), np.float32),
        backbone_name=loaded.backbone_name,
        model_dir=loaded.recorded,
        model_sha=loaded.sha,
        metadata=Metadata.of([entries[k][3] for k in keys]),
    ).save(db_path)


def _describe_locally(root: Path, keys: List[str], on_disk: Dict[str, _FileState], backbone, batch_size: int,
                      max_pixels: Optional[int]) -> Iterator[Tuple[list, list]]:
    """Per batch: ``([(key, size, mtime, descriptor)], [(path, reason)])``, in the order of ``keys``.

    Decoded in threads ahead of the network, JPEGs at a reduced scale (:func:`semsearch.features.iter_described`).
    Each file is checked again as it is opened (:func:`semsearch.photos.paths.require_inside`:
    it may have been replaced by a link to outside ``root`` since it was listed); such a file,
    an unreadable one and an image too long and thin to resize are failed, not raised.
    """
    from semsearch.features import iter_described

    paths = [on_disk[key][0] for key in keys]
    batches = iter_described(paths, backbone, batch_size=batch_size, reduced_decoding=True, max_pixels=max_pixels,
                             resolve=lambda path: require_inside(root, path))
    for indices, vectors, failed in batches:
        yield ([(keys[i], *on_disk[keys[i]][1:], vector) for i, vector in zip(indices, vectors)],
               [(str(paths[f.index]), f.reason) for f in failed])


def _describe_on_ray(root: Path, keys: List[str], on_disk: Dict[str, _FileState], backbone, batch_size: int,
                     chunk: int, max_pixels: Optional[int]) -> Iterator[Tuple[list, list]]:
    """As :func:`_describe_locally`, a chunk of ``chunk`` files at a time on Ray Data actors.

    The files are checked to be inside ``root`` as each chunk is sent (the actors read them
    by path, later, possibly on another machine).
    """
    from semsearch.cnn.distributed import describe_files_ray

    for start in range(0, len(keys), chunk):
        part, refused = [], []
        for key in keys[start : start + chunk]:
            try:
                require_inside(root, on_disk[key][0])
                part.append(key)
            except (InputError, OSError) as e:  # a link to outside since listed, or gone
                refused.append((str(on_disk[key][0]), failure_reason(e, on_disk[key][0])))
        paths = [str(on_disk[key][0]) for key in part]
        vectors, ok, failed = describe_files_ray(paths, backbone.name, batch_size=batch_size, progress=False,
                                                 reduced_decoding=True, max_pixels=max_pixels) if part else ([], [], [])
        found = dict(zip(map(str, ok), vectors))
        yield [(key, *on_disk[key][1:], found[path]) for key, path in zip(part, paths) if path in found], refused + list(failed)


def index_folder(
    folder: PathLike,
    db_path: PathLike,
    *,
    model: Optional[PathLike] = None,
    backbone=None,
    batch_size: int = 32,
    checkpoint_every: int = 256,
    progress: bool = True,
    max_pixels: Optional[int] = None,
    engine: str = "local",
) -> IndexReport:
    """Index (or bring up to date) the photos under ``folder`` into the database ``db_path``.

    Parameters
    ----------
    folder : path
        Searched recursively for jpg, jpeg, png, webp (and heic with ``pillow-heif``); file
        links are followed only when they resolve inside it, folder links never
        (:mod:`semsearch.photos.paths`).
    db_path : path
        The database file (``.npz``); extended if it exists.
    model : path, optional
        A trained model folder (``semsearch train``); default: the existing database's
        model, else the shipped sample model (:func:`semsearch.sample.model_dir`).
    backbone : str or backbone object, optional
        Default: the one the model was trained on (:func:`semsearch.backbones.load_backbone`).
    batch_size : int
        Images per forward pass of the backbone.
    checkpoint_every : int
        Save after about this many newly described images (resumable after an interrupt).
    progress : bool
        A progress bar on stderr, moved after each batch (images/s and time left).
    max_pixels : int, optional
        Larger images are skipped (and listed); default ``PIL.Image.MAX_IMAGE_PIXELS``.
    engine : {"local", "ray"}
        ``"ray"`` describes each checkpoint's images on Ray Data actors
        (:func:`semsearch.cnn.distributed.describe_files_ray`, a GPU per actor when the cluster has
        GPUs; ``pip install 'semsearch[ray]'``); the database written is the same.

    Returns
    -------
    IndexReport
        How many files were new, changed, deleted, unchanged, and which were skipped (why).

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a folder, or the model folder is missing.
    InputError
        The database was made with another backbone than the model's.
    """
    from tqdm import tqdm

    if engine not in ("local", "ray"):
        raise InputError(f"engine must be 'local' or 'ray', got {engine!r}")
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    db_path = Path(db_path).expanduser()
    old, loaded = _open_database(db_path, model)
    report = IndexReport()
    on_disk, entries, changed = _compare_with_disk(root, old, loaded.sha, report)
    filled = fill_in_infos(entries, on_disk, report.failed)
    reuse = reuse_known_content([key for key in sorted(on_disk) if key not in entries], on_disk, old, entries,
                                changed, report.failed)
    todo = reuse.to_describe
    if todo:
        backbone = get_backbone(backbone, loaded.backbone_name)
        if backbone.dim != loaded.autoembedder.input_dim:
            raise InputError(f"backbone {backbone.name} gives {backbone.dim}-d descriptors, the model takes {loaded.autoembedder.input_dim}-d")
        if engine == "ray":
            batches = _describe_on_ray(root, todo, on_disk, backbone, batch_size, checkpoint_every, max_pixels)
        else:
            batches = _describe_locally(root, todo, on_disk, backbone, batch_size, max_pixels)
        unsaved = 0
        with tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not progress, smoothing=0.1) as bar:
            for described, failed in batches:
                entries.update((key, (size, mtime, vector, reuse.infos[key])) for key, size, mtime, vector in described)
                report.failed.extend(failed)
                unsaved += len(described)
                bar.update(len(described) + len(failed))
                if unsaved >= checkpoint_every and bar.n < len(todo):  # resumable after an interrupt
                    _save_entries(db_path, root, entries, loaded)
                    unsaved = 0
    twin_entries(reuse, on_disk, entries)
    if (todo or old is None or report.n_deleted or report.n_reembedded or old.model_dir != loaded.recorded or filled
            or changed or len(entries) != len(old) or reuse.n_moved):
        _save_entries(db_path, root, entries, loaded)
    described = [key for key in [*todo, *reuse.twins] if key in entries]  # the skipped ones are in report.failed
    report.n_changed = sum(key in changed for key in described) + reuse.n_replaced
    report.n_new = len(described) - report.n_changed + reuse.n_replaced
    report.n_moved, report.n_copies = reuse.n_moved, reuse.n_copies
    report.n_unchanged += reuse.n_touched
    report.n_deleted -= len(reuse.sources)
    report.n_images = len(entries)
    return report


# --------------------------------------------------------------------------- searching


@dataclass
class PhotoSearch:
    """An indexed folder ready for queries: the database of embeddings and what made it.

    Attributes
    ----------
    database : ImageDatabase
        Keys are paths relative to ``root``; text queries use its text encoder.
    root : Path
        The indexed folder.
    model : Autoembedder
        Embeds descriptors, e.g. of an image to query with (:func:`image_query`).
    backbone_name : str
        The backbone whose descriptors ``model`` takes.
    photos : PhotoDatabase
        The file as read: :attr:`descriptors` (row i: the backbone's descriptor of image
        ``keys[i]``, e.g. for its ImageNet tags), metadata, sizes, content hashes.

    Example
    -------
    >>> search = load_search("pictures.npz")                        # doctest: +SKIP
    >>> keys, scores = search.query("a dog on the beach", k=3)      # doctest: +SKIP
    >>> [search.root / key for key in keys]                         # doctest: +SKIP
    """

    database: ImageDatabase
    root: Path
    model: "Autoembedder"
    backbone_name: str
    photos: PhotoDatabase

    def __len__(self) -> int:
        return len(self.database)

    @property
    def descriptors(self) -> np.ndarray:
        """(N, D) float32: the stored descriptors, row i of image ``keys[i]``."""
        return self.photos.descriptors

    @property
    def keys(self) -> np.ndarray:
        """(N,) str: the images' paths relative to :attr:`root`."""
        return self.database.keys

    def query(self, query, k: int = 9):
        """``(keys (k,), scores (k,))``: :meth:`ImageDatabase.query` on the folder's images."""
        return self.database.query(query, k=k)


def load_search(db_path: PathLike, model: Optional[PathLike] = None, *, glove=None) -> PhotoSearch:
    """A :class:`PhotoSearch` of an indexed folder, ready for text queries (keys: relative paths).

    ``model`` defaults to the one that embedded the database; another one re-embeds the
    stored descriptors (nothing is saved). A model whose weights changed since indexing is
    refused (run :func:`index_folder` again).
    """
    photos = PhotoDatabase.load(db_path)
    if len(photos) == 0:
        raise InputError(f"{db_path} holds no images (were they all skipped?)")
    loaded = load_model(model or photos.model_dir, glove=glove)
    if loaded.backbone_name != photos.backbone_name:
        raise InputError(f"{db_path} holds {photos.backbone_name} descriptors but the model {loaded.recorded} takes {loaded.backbone_name}'s")
    if photos.descriptors.shape[1] != loaded.autoembedder.input_dim:  # same backbone name, another size
        raise InputError(f"{db_path} holds {photos.descriptors.shape[1]}-d descriptors but the model {loaded.recorded} "
                         f"takes {loaded.autoembedder.input_dim}-d ones")
    if model is None and loaded.sha != photos.model_sha:
        raise InputError(f"the model {loaded.recorded} changed since {db_path} was indexed: run `semsearch index` again")
    vectors = photos.vectors if loaded.sha == photos.model_sha else loaded.autoembedder.embed(photos.descriptors)
    database = ImageDatabase(photos.keys, vectors, loaded.text_encoder)
    return PhotoSearch(database, Path(photos.root), loaded.autoembedder, photos.backbone_name, photos)


def image_query(image_path: PathLike, model: "Autoembedder", backbone_name: str, backbone=None) -> np.ndarray:
    """The unit embedding (dim,) of an image file, to query a database made by ``model`` with.

    Described with ``backbone`` (default: the one named ``backbone_name``, which ``model``
    takes) and embedded with ``model``; e.g. ``image_query(path, search.model, search.backbone_name)``.
    """
    backbone = get_backbone(backbone, backbone_name)
    descriptor = describe_images([open_image(image_path)], backbone)
    return model.embed(descriptor)[0]
