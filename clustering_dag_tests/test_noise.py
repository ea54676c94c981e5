import numpy as np
import pytest

from clustering_dag.core.noise import add_gaussian_noise


def test_noise_statistics():
    x = np.full((2000, 784), 0.5, np.float32)
    noisy = add_gaussian_noise(x, 0.05, seed=1)
    delta = noisy - x
    assert noisy.dtype == np.float32
    assert abs(delta.mean()) < 1e-3
    assert delta.std() == pytest.approx(0.05, rel=0.01)


def test_noise_is_seeded():
    x = np.zeros((10, 5), np.float32)
    np.testing.assert_array_equal(add_gaussian_noise(x, 0.1, 3), add_gaussian_noise(x, 0.1, 3))
    assert not np.array_equal(add_gaussian_noise(x, 0.1, 3), add_gaussian_noise(x, 0.1, 4))


def test_unclipped_by_default_and_clip_option():
    x = np.zeros((100, 100), np.float32)
    assert add_gaussian_noise(x, 0.05, 0).min() < 0
    clipped = add_gaussian_noise(x + 1, 0.05, 0, clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_negative_sigma_rejected():
    with pytest.raises(ValueError, match="sigma"):
        add_gaussian_noise(np.zeros((1, 1), np.float32), -0.1, 0)
