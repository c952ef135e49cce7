"""The photo tool: make a folder of your own photos searchable, and search it.

:mod:`~semsearch.photos.folder` holds the photo database and its incremental indexing.
"""
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

__all__ = [
    "IndexReport", "LoadedModel", "PhotoDatabase", "PhotoSearch", "image_query", "index_folder", "load_model", "load_search",
]
