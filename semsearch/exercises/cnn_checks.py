"""Check a team's CNN preprocessing against :meth:`semsearch.backbones.Backbone.preprocess`.

The task: ``preprocess(image, backbone) -> (3, 224, 224)`` float array (or torch tensor) for a
PIL image of any size and mode: RGB; the shorter side resized to 256 (bilinear); the centre
224 x 224 cropped; scaled to [0, 1]; normalised with the statistics the network was trained
with: mean 0.5 / std 0.5 for ``"efficientnet-lite0"`` (pretrained, offline), ImageNet's mean
(0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225) for ``"resnet18"`` (checked with random
weights: no download). The check compares the tensors, then the descriptors the network makes
from them (their cosine with the library's). It needs ``torch`` (``pip install
'semsearch[features]'``); without it the check says so and is skipped.

Example
-------
>>> from semsearch.backbones import load_backbone
>>> check_preprocess(lambda image, backbone: load_backbone(backbone, pretrained=False).preprocess(image),
...                  verbose=False).passed                                            # doctest: +SKIP
True
"""
from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np

from semsearch.backbones import NORMALISATION
from semsearch.exercises.checking import Checker, as_float_array, run_check
from semsearch.exercises.report import CheckReport

#: (name, size, PIL mode) of the images the check makes: odd sizes, greyscale, transparency.
IMAGES = (("a landscape photo", (320, 240), "RGB"), ("a portrait photo", (240, 330), "RGB"),
          ("a greyscale image", (300, 300), "L"), ("a transparent image", (260, 280), "RGBA"),
          ("a small image", (90, 60), "RGB"))


def make_image(size, mode: str, seed: int):
    """A smooth random picture (gradients and blobs: what resizing treats like a photo)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = [np.sin(rng.uniform(2, 9) * x + rng.uniform(0, 3)) * np.cos(rng.uniform(2, 9) * y) for _ in range(4)]
    pixels = ((np.stack(channels, axis=-1) + 1) * 127.5).astype(np.uint8)
    image = Image.fromarray(pixels[..., :3], "RGB") if mode != "RGBA" else Image.fromarray(pixels, "RGBA")
    return image.convert(mode)


def _diagnose(got: np.ndarray, want: np.ndarray, backbone: str) -> str:
    if got.shape == (224, 224, 3):
        return "channels first: shape (3, 224, 224), as torch wants it (transpose, or torchvision's ToTensor)"
    if got.shape != (3, 224, 224):
        return "resize the shorter side to 256, then crop the centre 224 x 224: shape (3, 224, 224)"
    mean, std = NORMALISATION[backbone]
    raw = want * np.array(std)[:, None, None] + np.array(mean)[:, None, None]  # the library's, before normalising
    if np.abs(got - raw).mean() < 0.02:
        return f"normalise after scaling to [0, 1]: (x - mean) / std with mean {mean} and std {std} for {backbone}"
    if np.abs(got - raw * 255).mean() < 5:
        return "scale the pixels to [0, 1] (divide by 255), then normalise"
    other = next(stats for name, stats in NORMALISATION.items() if name != backbone)
    if np.abs(got - (raw - np.array(other[0])[:, None, None]) / np.array(other[1])[:, None, None]).mean() < 0.02:
        return f"{backbone} was trained with mean {mean} and std {std}: normalise with those, not the other network's"
    return ("resize the shorter side to 256 (bilinear), crop the centre 224 x 224 (don't stretch the image to 224 x 224), "
            "RGB, [0, 1], then normalise")


def _battery(preprocess: Callable, c: Checker, backbones) -> None:
    import torch

    from semsearch.backbones import load_backbone

    for name in backbones:
        backbone = load_backbone(name, pretrained=(name == "efficientnet-lite0"), device="cpu")
        mine, theirs = [], []
        for seed, (what, size, mode) in enumerate(IMAGES):
            image = make_image(size, mode, seed)
            c.case(f"preprocess({what}: PIL {mode} {size[0]} x {size[1]}, {name!r})")
            out = c.call(preprocess, image.copy(), name)
            got = c.read(as_float_array, out, "an array (3, 224, 224)", "return the preprocessed image as an array or tensor")
            want = np.asarray(backbone.preprocess(image), dtype=np.float64)  # a NumPy array (ONNX path) or a CPU tensor
            ok = got.shape == want.shape and np.abs(got - want).mean() < 0.01 and np.abs(got - want).max() < 0.5
            c.expect(ok, f"shape {want.shape}, values {want.mean():.3f} on average",
                     f"shape {got.shape}, values {got.mean():.3f} on average"
                     + (f", mean difference {np.abs(got - want).mean():.3f}" if got.shape == want.shape else ""),
                     lambda: _diagnose(got, want, name))
            mine.append(torch.as_tensor(got, dtype=torch.float32))
            theirs.append(torch.as_tensor(want, dtype=torch.float32))
        c.case(f"the {name} descriptors of your preprocessed images")
        ours, yours = backbone.forward(torch.stack(theirs)), backbone.forward(torch.stack(mine))
        cosine = np.sum(ours * yours, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(yours, axis=1))
        c.expect(bool((cosine > 0.99).all()), "cosine > 0.99 with the library's descriptors", f"cosines {np.round(cosine, 4)}",
                 "the network sees something else than the library feeds it: compare your steps with the task's list")
        c.passed(f"{name}: {len(IMAGES)} images (sizes, greyscale, transparency) and their {backbone.dim}-d descriptors")


def check_preprocess(preprocess: Callable, *, backbones=("efficientnet-lite0", "resnet18"), verbose: bool = True) -> CheckReport:
    """Check ``preprocess(image, backbone) -> (3, 224, 224)``; skipped (and says so) without torch."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        report = CheckReport("preprocess", "skipped", hint="needs torch and torchvision: pip install 'semsearch[features]'")
        if verbose:
            print(report)
        return report
    return run_check("preprocess", lambda c: _battery(preprocess, c, backbones), verbose)
