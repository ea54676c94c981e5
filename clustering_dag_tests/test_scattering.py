"""Scattering features on real MNIST rows: the filter bank is what a wavelet cascade needs
(wavelets of zero mean, a low-pass of unit gain), the features have kymatio's shape, barely move
when an image shifts by a pixel or two (its pixels move a lot), and their nearest neighbours share
a class more often than the pixels' do; the space's principal axes come from the training split
alone, a table keeps its rows, and bad shapes get a clear error."""

from pathlib import Path

import numpy as np
import pytest

from clustering_dag.core.arrays import Splits
from clustering_dag.core.configs import ScatteringConfig
from clustering_dag.core.errors import DataError
from clustering_dag.core.scattering import filter_bank, n_channels, scattering, scattering_representation


def _load(data_dir, name: str, train: int, test: int) -> Splits:
    from clustering_dag.core.datasets import DATASETS
    from clustering_dag.core.idx import load_image_dataset

    spec = DATASETS[name]
    return load_image_dataset(spec, Path(data_dir) / spec.folder).head(train, test)


@pytest.fixture(scope="module")
def mnist(data_dir) -> Splits:
    return _load(data_dir, "mnist", 2000, 500)


def test_the_filter_bank_has_zero_mean_wavelets_and_a_unit_gain_low_pass():
    bank = filter_bank((28, 28), 3, 8)
    assert bank["padded"] == (40, 40)  # reflected out to a multiple of 2**J, 2**J beyond each edge
    for res, by_scale in bank["psi"].items():
        for j, waves in by_scale.items():
            assert res <= j and waves.shape == (8, 40 // 2 ** res, 40 // 2 ** res)
            assert np.abs(waves[:, 0, 0]).max() < 1e-3 * np.abs(waves).max()  # no DC: zero mean
    for low in bank["phi"].values():
        assert low[0, 0].real == pytest.approx(1.0, abs=1e-3)
    # Each scale's wavelets peak at a lower frequency than the one before.
    freq = np.fft.fftfreq(40)
    radius = np.hypot(*np.meshgrid(freq, freq, indexing="ij"))
    peaks = [radius.flat[np.abs(bank["psi"][0][j][0]).argmax()] for j in range(3)]
    assert peaks[0] > peaks[1] > peaks[2]


def test_features_have_kymatio_s_shape_and_barely_move_when_an_image_shifts(mnist):
    x = mnist.train_x[:200]
    config = ScatteringConfig()
    features = scattering(x, (28, 28), config)
    assert n_channels(3, 8) == 217 and features.shape == (200, 217 * 3 * 3)
    assert np.isfinite(features).all()
    again = scattering(x, (28, 28), config, chunk=64)  # however the rows are batched
    np.testing.assert_allclose(again, features, rtol=1e-5, atol=1e-5)
    shifted = np.roll(x.reshape(-1, 28, 28), (1, 2), axis=(1, 2)).reshape(len(x), -1)
    moved = scattering(shifted, (28, 28), config)

    def relative(a, b):  # the change, against the distance between two different images
        return np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(a - np.roll(a, 1, axis=0), axis=1).mean()

    assert relative(features, moved) < 0.5 * relative(x, shifted)


def test_the_space_is_fitted_on_the_training_split_and_separates_classes_better_than_pixels(mnist):
    from sklearn.neighbors import KNeighborsClassifier

    made = scattering_representation(mnist, ScatteringConfig(components=40))
    assert made.meta["scattered"] and made.train_x.shape == (2000, 40) and made.test_x.shape == (500, 40)
    np.testing.assert_allclose(made.train_x.mean(0), 0, atol=1e-3)  # centred on the training rows
    # The test rows are projected, not fitted: another test split leaves the training rows as
    # they were.
    other = scattering_representation(Splits(mnist.train_x, mnist.train_y, mnist.test_x[:100],
                                             mnist.test_y[:100], dict(mnist.meta)),
                                      ScatteringConfig(components=40))
    np.testing.assert_allclose(np.abs(other.train_x), np.abs(made.train_x), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.abs(other.test_x), np.abs(made.test_x[:100]), rtol=1e-3, atol=1e-3)

    def nearest_same_class(space: Splits) -> float:  # labels score the space; nothing fits on them
        return KNeighborsClassifier(1).fit(space.train_x, space.train_y).score(space.test_x, space.test_y)

    assert nearest_same_class(made) > nearest_same_class(mnist) + 0.03


def test_a_table_keeps_its_rows_and_bad_shapes_are_refused(mnist):
    table = Splits(mnist.train_x[:50, :13], None, mnist.test_x[:20, :13], None, meta={})
    kept = scattering_representation(table, ScatteringConfig())
    assert not kept.meta["scattered"] and np.array_equal(kept.train_x, table.train_x)
    specks = Splits(mnist.train_x[:50, :9], None, mnist.test_x[:20, :9], None, meta={"image_shape": [3, 3]})
    assert not scattering_representation(specks, ScatteringConfig()).meta["scattered"]  # no scale fits
    with pytest.raises(DataError, match="need images"):
        scattering(mnist.train_x[:5, :13], None, ScatteringConfig())
    # Any image of at least 2**(J+1) pixels a side: a rectangle too; a smaller image gets the
    # scales it holds.
    assert scattering(mnist.train_x[:5, :768], (24, 32), ScatteringConfig()).shape == (5, 217 * 3 * 4)
    small = mnist.train_x[:60].reshape(-1, 28, 28)[:, ::2, ::2].reshape(60, -1)  # 14 x 14
    small_images = Splits(small[:40], None, small[40:], None, meta={"image_shape": [14, 14]})
    tiny = scattering_representation(small_images, ScatteringConfig(components=None))
    assert tiny.meta["J"] == 2 and tiny.dim == (1 + 2 * 8 + 64) * 3 * 3
    with pytest.raises(DataError, match="Lower J"):
        scattering(mnist.train_x[:5], (28, 28), ScatteringConfig(J=4))
    with pytest.raises(ValueError, match="components"):
        ScatteringConfig(components=0)
