"""Image keys from file names.

A file is a COCO image only when its name has COCO's own form: ``000000000139.jpg``
(2017) or ``COCO_train2014_000000000139.jpg`` (2014). Any other file (``IMG_0139.jpg``)
is not mistaken for a COCO id.

>>> coco_id_from_filename("data/coco/images/000000000139.jpg")
139
>>> coco_id_from_filename("COCO_val2014_000000000009.jpg")
9
>>> coco_id_from_filename("IMG_0139.jpg") is None
True
>>> coco_file_name(139)
'000000000139.jpg'
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

from semsearch.common.checks import check_image_id

PathLike = Union[str, "os.PathLike[str]"]

#: COCO's file names: 12 digits, optionally after ``COCO_<split><year>_``.
COCO_FILE_NAME = re.compile(r"^(?:COCO_[a-z]+\d{4}_)?(\d{12})\.(?:jpe?g|png)$", re.IGNORECASE)


def coco_id_from_filename(path: PathLike) -> Optional[int]:
    """The COCO id in a file name that follows COCO's naming, else None."""
    match = COCO_FILE_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def coco_file_name(coco_id: int) -> str:
    """The COCO 2017 file name of an image: its id as 12 digits plus ``.jpg``."""
    return f"{check_image_id(coco_id):012d}.jpg"
