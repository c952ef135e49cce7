"""ImageNet-style preprocessing in NumPy and Pillow: a picture -> the CNN's input ``(3, 224, 224)``.

Both backbones resize the shorter side to :data:`RESIZE` (Pillow's bilinear filter, which
antialiases), centre-crop :data:`CROP` x :data:`CROP`, scale to [0, 1] and normalise with a
mean and std per channel. This is torchvision's ``Resize(256) + CenterCrop(224) + ToTensor()
+ Normalize(mean, std)`` on a PIL image, step for step (torchvision calls the same Pillow
resize), so the arrays equal torchvision's; it needs neither torch nor torchvision. An image
more than 64 times longer than wide (or wider than tall) is refused before the resize
(:func:`semsearch.common.images.check_aspect_ratio`): its resized copy could take gigabytes.

Example
-------
>>> from PIL import Image
>>> x = preprocess(Image.new("RGB", (640, 480), (255, 0, 128)), (0.5,) * 3, (0.5,) * 3)
>>> x.shape, [round(float(v), 4) for v in x[:, 0, 0]]
((3, 224, 224), [1.0, -1.0, 0.0039])
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Tuple

import numpy as np

from semsearch.common.images import check_aspect_ratio
from semsearch.errors import InputTypeError

if TYPE_CHECKING:
    from PIL import Image

#: The shorter side is resized to this many pixels ...
RESIZE = 256
#: ... then the centre CROP x CROP square is the network's input.
CROP = 224
#: Reduced decoding (``open_image(reduce_to=...)``, as the photo tool indexes) keeps a JPEG's
#: shorter side at least this long, 2.9 x RESIZE, before the resize to RESIZE. Nearer to
#: RESIZE, descriptors drift from full decoding's: some cosines fell under 0.995 at 1/8 of a
#: 12 MP photo (378 px, 1.48 x RESIZE: 3 of 239 real images upscaled, worst 0.9934) and at
#: 2.67 x; from 2.95 x on, none (worst 0.9983 over 7 sizes; ``benchmarks/reduced_decoding.py``).
#: A 12 MP photo (shorter side 3,024) is decoded at 1/4: 756 px.
REDUCED_DECODE_SIDE = int(2.9 * RESIZE)


def resized_size(width: int, height: int, shorter: int = RESIZE) -> Tuple[int, int]:
    """``(width, height)`` after resizing the shorter side to ``shorter``, as torchvision rounds it.

    >>> resized_size(640, 480), resized_size(3024, 4032)
    ((341, 256), (256, 341))
    """
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shorter * long / short)
    return (shorter, new_long) if width <= height else (new_long, shorter)


def preprocess(image: "Image.Image", mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """One PIL image (any mode, any size) -> float32 array ``(3, CROP, CROP)``, normalised.

    Parameters
    ----------
    image : PIL.Image.Image
        Converted to RGB first (greyscale, RGBA and palette images are common).
    mean, std : sequence of 3 floats
        Per channel, applied after scaling to [0, 1]: ``(x - mean) / std``.

    Returns
    -------
    numpy.ndarray, shape (3, 224, 224), float32
        Channels first, as the networks take them.

    Raises
    ------
    InputTypeError
        ``image`` is not a PIL image.
    ImageTooLargeError
        An aspect ratio over 64:1 (:data:`semsearch.common.images.MAX_ASPECT_RATIO`),
        checked before the resize allocates anything.
    """
    from PIL import Image

    if not (hasattr(image, "convert") and hasattr(image, "size")):
        raise InputTypeError(f"expected a PIL image, got {type(image).__name__}")
    check_aspect_ratio(*image.size)  # the resize to a RESIZE-pixel shorter side must stay small
    image = image.convert("RGB")
    size = resized_size(*image.size)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    width, height = image.size
    top, left = int(round((height - CROP) / 2.0)), int(round((width - CROP) / 2.0))
    pixels = np.asarray(image.crop((left, top, left + CROP, top + CROP)), dtype=np.float32) / np.float32(255)
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))
