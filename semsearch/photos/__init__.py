"""The photo tool: make a folder of your own photos searchable, and search it.

:mod:`~semsearch.photos.folder` holds the photo database and its incremental indexing;
:mod:`~semsearch.photos.metadata` and :mod:`~semsearch.photos.hashing` what it keeps per photo,
:mod:`~semsearch.photos.moves` how a moved photo is recognised; :mod:`~semsearch.photos.filters`
searches with filters, :mod:`~semsearch.photos.duplicates` finds duplicates and
:mod:`~semsearch.photos.watch` keeps a database current.
"""
from semsearch.photos.duplicates import DuplicateGroup, find_duplicates
from semsearch.photos.filters import PhotoColumns, PhotoFilter, filtered_query
from semsearch.photos.folder import (
    IndexReport,
    LoadedModel,
    PhotoDatabase,
    PhotoSearch,
    image_query,
    index_folder,
    load_model,
    load_search,
)
from semsearch.photos.watch import watch_folder

__all__ = [
    "DuplicateGroup", "IndexReport", "LoadedModel", "PhotoColumns", "PhotoDatabase", "PhotoFilter", "PhotoSearch",
    "filtered_query", "find_duplicates", "image_query", "index_folder", "load_model", "load_search", "watch_folder",
]
