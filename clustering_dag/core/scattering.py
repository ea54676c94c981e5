"""Scattering features of images (Mallat 2012; Bruna & Mallat 2013): a fixed cascade of Morlet
wavelet filters, complex moduli and a Gaussian average, nothing learned. Small shifts and
deformations of an image barely move its coefficients, which is what a clustering of pixels lacks.

The filter bank and the cascade are kymatio's 2-D scattering (Andreux et al. 2020) written over
TensorFlow's FFT: ``J`` scales and ``L`` orientations of Morlet wavelets (sigma ``0.8 * 2**j``,
centre frequency ``3/4 * pi / 2**j``, slant ``4 / L``), a Gaussian low-pass of sigma
``0.8 * 2**(J-1)``, and the images reflected out to ``2**J`` past each side. Orders 0, 1 and 2
give ``1 + J*L + L**2 * J*(J-1)/2`` channels (217 for J=3, L=8), each averaged and sampled every
``2**J`` pixels (3 x 3 on a 28 x 28 image). Every order is computed at the coarsest resolution its
scale allows (the cascade subsamples in Fourier space, as kymatio does), all filters of a scale at
once over a batch.

The coefficients are returned as ``log(eps + S)`` (``eps`` = ``log_eps``): their magnitudes span
orders of magnitude between the orders, and a logarithm makes Euclidean distance weigh them
alike. Nothing is fitted: the transform of an image is the same whatever the split it comes from,
so new rows are scored in this space by computing it.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache

import numpy as np

from clustering_dag.core import cores
from clustering_dag.core.configs import ScatteringConfig
from clustering_dag.core.errors import DataError


def padded_size(side: int, J: int) -> int:
    """The side the image is reflected out to: a multiple of ``2**J`` with at least ``2**J``
    pixels beyond each edge (then one sample of each border is dropped)."""
    return ((side + 2 ** J) // 2 ** J + 1) * 2 ** J


def _gabor(n: int, m: int, sigma: float, theta: float, xi: float, slant: float) -> np.ndarray:
    """A 2-D Gabor filter on an n x m periodic grid (summed over 5 x 5 periods)."""
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    curvature = rotation @ np.diag([1.0, slant ** 2]) @ rotation.T / (2 * sigma ** 2)
    out = np.zeros((n, m), np.complex128)
    for ex in range(-2, 3):
        for ey in range(-2, 3):
            xx, yy = np.mgrid[ex * n:(ex + 1) * n, ey * m:(ey + 1) * m]
            quadratic = (curvature[0, 0] * xx ** 2 + (curvature[0, 1] + curvature[1, 0]) * xx * yy
                         + curvature[1, 1] * yy ** 2)
            out += np.exp(-quadratic + 1j * xi * (xx * math.cos(theta) + yy * math.sin(theta)))
    return out / (2 * math.pi * sigma ** 2 / slant)


def _morlet(n: int, m: int, sigma: float, theta: float, xi: float, slant: float) -> np.ndarray:
    """A Gabor filter minus the Gaussian envelope that makes its mean zero."""
    wave = _gabor(n, m, sigma, theta, xi, slant)
    envelope = _gabor(n, m, sigma, theta, 0.0, slant)
    return wave - envelope * (wave.sum() / envelope.sum())


def _periodize(fourier: np.ndarray, res: int) -> np.ndarray:
    """A filter's Fourier transform at ``2**-res`` of its resolution: its frequencies below the
    coarser grid's Nyquist kept, the rest dropped (kymatio's ``periodize_filter_fft``)."""
    k = 2 ** res
    n, m = fourier.shape
    kept = fourier.copy()
    kept[int(n * 2 ** (-res - 1)):int(n * 2 ** (-res - 1)) + int(n * (1 - 2 ** -res)), :] = 0
    kept[:, int(m * 2 ** (-res - 1)):int(m * 2 ** (-res - 1)) + int(m * (1 - 2 ** -res))] = 0
    return kept.reshape(k, n // k, k, m // k).sum(axis=(0, 2))


@lru_cache(maxsize=8)
def filter_bank(shape: tuple[int, int], J: int, L: int) -> dict:
    """The Fourier transforms of the wavelets (``psi[res][j]``: the L orientations of scale j at
    resolution ``2**-res``, for res <= j) and of the low-pass (``phi[res]``), on the padded grid
    of images of ``shape`` (height, width)."""
    n, m = (padded_size(side, J) for side in shape)
    psi: dict[int, dict[int, np.ndarray]] = {res: {} for res in range(J)}
    for j in range(J):
        waves = [np.real(np.fft.fft2(_morlet(n, m, 0.8 * 2 ** j, (int(L - L / 2 - 1) - t) * math.pi / L,
                                              3.0 / 4.0 * math.pi / 2 ** j, 4.0 / L)))
                 for t in range(L)]
        for res in range(j + 1):
            psi[res][j] = np.stack([_periodize(w, res) for w in waves]).astype(np.complex64)
    low = np.real(np.fft.fft2(_gabor(n, m, 0.8 * 2 ** (J - 1), 0.0, 0.0, 1.0)))
    phi = {res: _periodize(low, res).astype(np.complex64) for res in range(J + 1)}
    return {"psi": psi, "phi": phi, "padded": (n, m)}


def n_channels(J: int, L: int) -> int:
    return 1 + J * L + L * L * J * (J - 1) // 2


def largest_J(shape) -> int:
    """The most scales images of ``shape`` allow: the widest wavelet's support fits the smaller
    side (``2**(J+1)`` pixels)."""
    return int(math.floor(math.log2(min(shape)))) - 1


def _transform(images, config: ScatteringConfig, shape: tuple[int, int]):
    """The scattering coefficients of a batch (b x height x width floats): b x channels x s x t."""
    from clustering_dag.core.tf_env import tf

    J, L = config.J, config.L
    bank = filter_bank(shape, J, L)
    pads = [[0, 0]] + [[(n - side) // 2, n - side - (n - side) // 2]
                       for n, side in zip(bank["padded"], shape, strict=True)]
    x = tf.pad(images, pads, mode="REFLECT")
    fft, ifft = tf.signal.fft2d, tf.signal.ifft2d

    def filtered(z, filters, k, spec):
        """z * filters (in Fourier space) subsampled by k in space (a mean over the k x k
        frequencies that alias to each), as one contraction: no full-size product is made."""
        s, t = z.shape[-2] // k, z.shape[-1] // k
        z = tf.reshape(z, tf.concat([tf.shape(z)[:-2], [k, s, k, t]], axis=0))
        return tf.einsum(spec, z, tf.constant(filters.reshape(*filters.shape[:-2], k, s, k, t) / (k * k)))

    def low_pass(z, res):  # averaged by phi and sampled every 2**J pixels, borders dropped
        out = tf.math.real(ifft(filtered(z, bank["phi"][res], 2 ** (J - res), "...axcy,axcy->...xy")))
        return out[..., 1:-1, 1:-1]

    def modulus_hat(z):
        return fft(tf.cast(tf.abs(ifft(z)), tf.complex64))

    x_hat = fft(tf.cast(x, tf.complex64))
    first, second = [], []  # kymatio's order: order 0, every order 1, every order 2
    for j1 in range(J):  # b x L x (padded size / 2**j1)
        u1 = modulus_hat(filtered(x_hat, bank["psi"][0][j1], 2 ** j1, "baxcy,taxcy->btxy"))
        first.append(low_pass(u1, j1))
        finer = [low_pass(modulus_hat(filtered(u1, bank["psi"][j1][j2], 2 ** (j2 - j1),
                                               "bpaxcy,taxcy->bptxy")), j2)  # b x L x L x s x t
                 for j2 in range(j1 + 1, J)]
        if finer:  # theta1, then j2, then theta2
            s2 = tf.stack(finer, axis=2)
            second.append(tf.reshape(s2, [-1, L * len(finer) * L, *s2.shape[-2:]]))
    return tf.concat([low_pass(x_hat, 0)[:, None], *first, *second], axis=1)


@lru_cache(maxsize=8)
def _features(config: ScatteringConfig, shape: tuple[int, int]):
    """log(log_eps + S) of a batch, flattened: one TensorFlow graph for any batch size, traced once
    per config and image shape."""
    from clustering_dag.core.tf_env import tf

    def features(batch):
        s = _transform(batch, config, shape)
        return tf.reshape(tf.math.log(config.log_eps + tf.maximum(s, 0.0)), [tf.shape(batch)[0], -1])

    return tf.function(features, input_signature=[tf.TensorSpec([None, *shape], tf.float32)])


def scattering(x: np.ndarray, image_shape, config: ScatteringConfig, chunk: int = 512) -> np.ndarray:
    """``log(log_eps + S)`` of every row of ``x`` (rows of flattened images of ``image_shape``),
    flattened: n x (channels * s * t) float32."""
    from clustering_dag.core.tf_env import tf

    if not image_shape or len(image_shape) != 2:
        raise DataError(f"scattering features need images (height x width); these rows have shape "
                        f"{image_shape or 'of a table'}.")
    shape = (int(image_shape[0]), int(image_shape[1]))
    if config.J > largest_J(shape):
        raise DataError(f"scattering with J={config.J} needs images of at least {2 ** (config.J + 1)} "
                        f"pixels a side; these are {shape[0]} x {shape[1]}. Lower J.")

    features = _features(config, shape)

    def run(i: int) -> np.ndarray:
        return features(tf.constant(np.asarray(x[i:i + chunk], np.float32).reshape(-1, *shape))).numpy()

    # TensorFlow runs the cascade's kernels one at a time: a chunk per core, in threads, side by side
    with ThreadPoolExecutor(max(1, cores())) as pool:
        out = list(pool.map(run, range(0, len(x), chunk)))
    if not out:
        s, t = (padded_size(side, config.J) // 2 ** config.J - 2 for side in shape)
        return np.zeros((0, n_channels(config.J, config.L) * s * t), np.float32)
    return np.concatenate(out).astype(np.float32)


def scattering_representation(noisy_dataset, config: ScatteringConfig):
    """The scattering features of every noisy training and test image, on their ``components``
    principal axes fitted on the training split; images too small for ``J`` scales get as many as
    they hold (``meta["J"]``). A table (or an image under 4 pixels a side) has nothing to
    scatter: its rows are kept as they are (``meta["scattered"]`` says which)."""
    start = time.perf_counter()
    shape = noisy_dataset.image_shape
    if not shape or len(shape) != 2 or largest_J(shape) < 1:
        made = noisy_dataset.with_x(noisy_dataset.train_x, noisy_dataset.test_x, representation="scattering")
        made.meta["scattered"] = False
        return made
    if config.J > largest_J(shape):  # small images: as many scales as they hold
        config = replace(config, J=largest_J(shape))
    train, test = (scattering(x, shape, config) for x in (noisy_dataset.train_x, noisy_dataset.test_x))
    if config.components is not None and config.components < train.shape[1]:
        from sklearn.decomposition import PCA

        pca = PCA(min(config.components, len(train)), svd_solver="covariance_eigh").fit(train)
        train, test = (pca.transform(x).astype(np.float32) for x in (train, test))
    made = noisy_dataset.with_x(train, test, representation="scattering")
    made.meta.update(scattered=True, J=config.J, seconds=round(time.perf_counter() - start, 2))
    return made
