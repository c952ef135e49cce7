"""A photo's content hash: how re-indexing knows a moved or renamed photo, and exact duplicates.

The hash is BLAKE2b (128 bits) of the whole file. rclip hashes only the first MiB, the last
KiB and the size, to save reading; semsearch hashes everything because

- it hashes only files it would otherwise describe (new, changed or moved ones: an unchanged
  file is recognised by its path, size and mtime without reading it), and reading a file
  through BLAKE2b costs about a tenth of merely decoding it (239 COCO JPEGs of 160 kB: 0.11 s
  to hash, 1.05 s to decode, on one core; the CNN then costs far more);
- "exact duplicate" then means what it says: two files with the same hash have the same bytes
  (a partial hash would call two files equal that differ only in their middle, such as a RAW
  file re-saved with an edit, or a video).

Example
-------
>>> content_hash(path)                                                 # doctest: +SKIP
'5c1d0e3c9f0a4e8a2b7d1e9f6c3a8b24'
"""
from __future__ import annotations

import hashlib
import os
from typing import Union

from semsearch.common.files import digest_of_file

PathLike = Union[str, "os.PathLike[str]"]
#: What a database records for a photo whose hash is not known yet (a database from before hashes).
UNKNOWN = ""


def content_hash(path: PathLike) -> str:
    """The hex BLAKE2b-128 digest of the file's bytes (32 characters).

    Raises
    ------
    OSError
        The file cannot be read (deleted meanwhile, no permission).
    """
    return digest_of_file(path, hashlib.blake2b(digest_size=16))
