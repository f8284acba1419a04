"""Data augmentation for image batches (N, C, H, W), training only: random crops, flips, translations, noise.

CS231n ("Training Neural Networks II", data augmentation): train on randomly transformed copies
of the images — the label does not change when an image is shifted a little, mirrored or
perturbed — and evaluate on the untouched ones. Each augmentation is a frozen dataclass with
``aug(X, rng) -> X'``: every random draw comes from the explicit ``numpy.random.Generator``
(same generator state → same output), the input is never modified, the output is a new
float32 array of the same shape (``RandomCrop(size=...)`` excepted). ``Compose`` chains them and
is itself such a callable, so a training loop needs one hook: ``xb = augment(xb, rng)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.validate import closed_unit_interval, generator, integer, nonnegative

__all__ = ["RandomCrop", "HorizontalFlip", "Translate", "GaussianNoise", "Compose"]


def _check(X, rng, who: str) -> np.ndarray:
    generator(rng, who)
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"{who} expects images of shape (N, C, H, W), got shape {X.shape}; for flat vectors use "
                         "Compose(..., image_shape=(C, H, W))")
    return X


def _shifted(X: np.ndarray, dy: np.ndarray, dx: np.ndarray, pad: int, out_hw: tuple, mode: str) -> np.ndarray:
    """Per-example window of the padded images starting at (pad + dy, pad + dx), of size out_hw."""
    N, C, H, W = X.shape
    h, w = out_hw
    Xp = np.pad(X.astype(np.float32, copy=False), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=mode)
    rows = (pad + dy)[:, None] + np.arange(h)          # (N, h)
    cols = (pad + dx)[:, None] + np.arange(w)          # (N, w)
    n = np.arange(N)[:, None, None]
    out = Xp[n, :, rows[:, :, None], cols[:, None, :]]  # advanced indices first: (N, h, w, C)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class RandomCrop:
    """Pad each image by ``padding`` pixels (zeros, or ``mode="reflect"``) and cut a random window.

    The window is ``size`` = (h, w) (default: the input's H, W — a random translation by up to
    ``padding`` pixels, the CIFAR-10 recipe: pad 4, crop 32×32).
    """

    padding: int = 4
    size: tuple | None = None
    mode: str = "constant"

    def __post_init__(self):
        integer("RandomCrop: padding", self.padding, low=0)
        if self.mode not in ("constant", "reflect", "edge"):
            raise ValueError(f"RandomCrop: mode must be 'constant', 'reflect' or 'edge', got {self.mode!r}")

    def __call__(self, X, rng) -> np.ndarray:
        X = _check(X, rng, "RandomCrop")
        N, C, H, W = X.shape
        h, w = self.size or (H, W)
        p = int(self.padding)
        if h > H + 2 * p or w > W + 2 * p:
            raise ValueError(f"RandomCrop: a {h}×{w} crop does not fit in {H}×{W} images padded by {p}")
        dy = rng.integers(-p, H + p - h - p + 1, size=N)
        dx = rng.integers(-p, W + p - w - p + 1, size=N)
        return _shifted(X, dy, dx, p, (h, w), self.mode)


@dataclass(frozen=True)
class Translate:
    """Shift each image by a random whole number of pixels in [−max_shift, max_shift] along H and W; zeros fill in."""

    max_shift: int = 2

    def __post_init__(self):
        integer("Translate: max_shift", self.max_shift, low=0)

    def __call__(self, X, rng) -> np.ndarray:
        X = _check(X, rng, "Translate")
        N, _, H, W = X.shape
        s = int(self.max_shift)
        dy = rng.integers(-s, s + 1, size=N)
        dx = rng.integers(-s, s + 1, size=N)
        # the window starting at −shift of the padded image moves the content by +shift
        return _shifted(X, -dy, -dx, s, (H, W), "constant")


@dataclass(frozen=True)
class HorizontalFlip:
    """Mirror each image left–right with probability ``p`` (0.5 by default)."""

    p: float = 0.5

    def __post_init__(self):
        closed_unit_interval("HorizontalFlip: p", self.p)

    def __call__(self, X, rng) -> np.ndarray:
        X = _check(X, rng, "HorizontalFlip")
        flip = rng.random(len(X)) < self.p
        out = np.array(X, dtype=np.float32)  # a copy: X is never written
        out[flip] = out[flip][..., ::-1]
        return out


@dataclass(frozen=True)
class GaussianNoise:
    """Add N(0, std²) noise to every pixel."""

    std: float = 0.1

    def __post_init__(self):
        nonnegative("GaussianNoise: std", self.std)

    def __call__(self, X, rng) -> np.ndarray:
        X = _check(X, rng, "GaussianNoise")
        noise = rng.standard_normal(X.shape, dtype=np.float32)
        noise *= np.float32(self.std)
        return X.astype(np.float32) + noise


class Compose:
    """Apply augmentations in order: ``Compose(RandomCrop(2), HorizontalFlip())(X, rng)``.

    ``image_shape=(C, H, W)`` lets it take flat batches (N, C·H·W) — e.g. digits as 64-vectors —
    reshaping to images and back. The result is float32 and X is not modified.
    """

    def __init__(self, *augmentations, image_shape: tuple | None = None):
        for i, a in enumerate(augmentations):
            if not callable(a):
                raise TypeError(f"Compose takes callables aug(X, rng), got {type(a).__name__} at position {i}")
        self.augmentations = augmentations
        self.image_shape = tuple(image_shape) if image_shape is not None else None

    def __call__(self, X, rng) -> np.ndarray:
        X = np.asarray(X)
        shape = X.shape
        if self.image_shape is not None and X.ndim == 2:
            if X.shape[1] != int(np.prod(self.image_shape)):
                raise ValueError(f"Compose: flat samples of {X.shape[1]} values do not fit image_shape "
                                 f"{self.image_shape}")
            X = X.reshape((len(X),) + self.image_shape)
        out = np.array(X, dtype=np.float32) if not self.augmentations else X
        for a in self.augmentations:
            out = a(out, rng)
        if len(shape) == 2 and out.ndim == 4 and out.shape[1:] == self.image_shape:
            out = out.reshape(shape)
        return np.ascontiguousarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.augmentations))
        return f"Compose({inner}{', image_shape=' + repr(self.image_shape) if self.image_shape else ''})"
