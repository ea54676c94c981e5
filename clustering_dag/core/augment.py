"""Random transformations that leave an image's class unchanged, per kind of data, as one
TensorFlow function over a batch (no Python per image): the views of the invariance encoder
(:mod:`clustering_dag.core.invariance`) and the augmented training copies of an autoencoder
(DEC-DA, Guo et al. 2018).

- ``digits``: shifts up to 10 % of the side and rotations up to 10 degrees; never a flip (a
  mirrored 2 is no digit) nor a crop that could cut a stroke away.
- ``objects``: a crop of 75-100 % of the side, resized back (so also a zoom and a shift), a
  horizontal flip, brightness x0.7-1.3.
- ``features``: a table's rows; no geometric transformation (noise only, added by the caller).

Each image's geometry is one affine map (rotation, scale, flip, shift) applied by a single
``ImageProjectiveTransformV3`` call with bilinear sampling; the random draws are stateless,
seeded by the caller, so a training run repeats exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from clustering_dag.core.errors import DataError


@dataclass(frozen=True)
class Augmentation:
    shift: float = 0.0  # share of the side, each way
    rotation: float = 0.0  # degrees, each way
    crop: tuple[float, float] = (1.0, 1.0)  # side of the crop, as a share of the image's
    flip: bool = False  # horizontal
    brightness: tuple[float, float] = (1.0, 1.0)  # factor range

    @property
    def geometric(self) -> bool:
        return self.shift > 0 or self.rotation > 0 or self.crop != (1.0, 1.0) or self.flip


KINDS: dict[str, Augmentation] = {
    "digits": Augmentation(shift=0.1, rotation=10.0),
    "objects": Augmentation(crop=(0.75, 1.0), flip=True, brightness=(0.7, 1.3)),
    "features": Augmentation(),
    "none": Augmentation(),
}


def resolve(augment: str, data) -> str:
    """The kind ``augment`` names for ``data`` (a :class:`~clustering_dag.core.arrays.Splits`):
    ``auto`` is the built-in dataset's kind, ``digits`` for other images and ``features`` for a
    table; an image kind asked of a table is an error."""
    from clustering_dag.core.datasets import DATASETS

    if augment == "auto":
        spec = DATASETS.get(data.meta.get("dataset", ""))
        return spec.kind if spec else ("digits" if data.image_shape else "features")
    if augment not in KINDS:
        raise DataError(f"augment: unknown kind {augment!r}; choose one of {['auto', *KINDS]}")
    if KINDS[augment].geometric and not data.image_shape:
        raise DataError(f"augment: {augment!r} transforms images, and this dataset is a table; "
                        "use 'features' or 'auto'.")
    return augment


def transform(images, kind: str, seed, shape):
    """``images`` (batch x height*width, in [0, 1]) randomly transformed as ``kind`` says, under
    ``seed`` (a stateless seed: two int32). ``images`` may hold several images per row one after
    the other (batch x k*height*width): each row's images get the same map."""
    from clustering_dag.core.tf_env import tf

    aug = KINDS[kind]
    if not aug.geometric and aug.brightness == (1.0, 1.0):
        return images
    h, w = int(shape[0]), int(shape[1])
    n = tf.shape(images)[0]
    channels = images.shape[-1] // (h * w)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)
    uniform = lambda i, lo, hi: tf.random.stateless_uniform([n], seeds[i], lo, hi)  # noqa: E731
    out = tf.transpose(tf.reshape(images, [n, channels, h, w]), [0, 2, 3, 1])
    if aug.geometric:
        theta = uniform(0, -1.0, 1.0) * (aug.rotation * math.pi / 180.0)
        scale = uniform(1, *aug.crop)  # the share of the side sampled: < 1 zooms in
        flip = tf.where(uniform(2, 0.0, 1.0) < 0.5, -1.0, 1.0) if aug.flip else tf.ones([n])
        room_x = (1.0 - scale) * w / 2 + aug.shift * w  # how far the crop's centre may move
        room_y = (1.0 - scale) * h / 2 + aug.shift * h
        tx, ty = uniform(3, -1.0, 1.0) * room_x, uniform(4, -1.0, 1.0) * room_y
        cos, sin = tf.cos(theta) * scale, tf.sin(theta) * scale
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        # output pixel p -> input pixel M (p - c) + c + t, with M = scale * R(theta) * diag(flip, 1)
        a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
        a2 = cx + tx - a0 * cx - a1 * cy
        b2 = cy + ty - b0 * cx - b1 * cy
        zeros = tf.zeros([n])
        maps = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=out, transforms=maps, output_shape=[h, w], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="CONSTANT")
    if aug.brightness != (1.0, 1.0):
        out = tf.clip_by_value(out * tf.reshape(uniform(5, *aug.brightness), [n, 1, 1, 1]), 0.0, 1.0)
    return tf.reshape(tf.transpose(out, [0, 3, 1, 2]), [n, h * w * channels])
