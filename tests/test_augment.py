"""Augmentation: deterministic under a seed, shape/dtype kept, input never mutated, each transform exact."""
import numpy as np
import pytest

from descend.data.augment import Compose, GaussianNoise, HorizontalFlip, RandomCrop, Translate


@pytest.fixture
def images(rng):
    return rng.standard_normal((16, 3, 8, 8)).astype(np.float32)


ALL = [RandomCrop(padding=2), RandomCrop(padding=1, size=(6, 6)), RandomCrop(2, mode="reflect"), Translate(2),
       HorizontalFlip(), GaussianNoise(0.1), Compose(RandomCrop(2), HorizontalFlip(), GaussianNoise(0.05))]


@pytest.mark.parametrize("aug", ALL, ids=repr)
def test_deterministic_shape_dtype_no_mutation(images, aug):
    keep = images.copy()
    a = aug(images, np.random.default_rng(7))
    b = aug(images, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(images, keep)
    assert a.dtype == np.float32 and a.flags.c_contiguous
    expected = (16, 3, 6, 6) if getattr(aug, "size", None) else images.shape
    assert a.shape == expected
    assert not np.array_equal(aug(images, np.random.default_rng(8)), a)


def test_flip_mirrors_exactly_the_chosen_images(images):
    out = HorizontalFlip(p=0.5)(images, np.random.default_rng(3))
    flipped = np.random.default_rng(3).random(16) < 0.5
    np.testing.assert_array_equal(out[flipped], images[flipped][..., ::-1])
    np.testing.assert_array_equal(out[~flipped], images[~flipped])
    np.testing.assert_array_equal(HorizontalFlip(p=1.0)(images, np.random.default_rng(0)), images[..., ::-1])


def test_translate_shifts_content_and_fills_zeros():
    X = np.zeros((1, 1, 5, 5), np.float32)
    X[0, 0, 2, 2] = 1.0
    for seed in range(20):
        out = Translate(2)(X, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        dy, dx = rng.integers(-2, 3), rng.integers(-2, 3)
        assert out.sum() == 1.0 and out[0, 0, 2 + dy, 2 + dx] == 1.0


def test_random_crop_is_a_window_of_the_padded_image(images):
    out = RandomCrop(padding=2)(images, np.random.default_rng(1))
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(16):
        hits = [(i, j) for i in range(5) for j in range(5)
                if np.array_equal(padded[n, :, i:i + 8, j:j + 8], out[n])]
        assert hits, n
    assert RandomCrop(0)(images, np.random.default_rng(0)).tobytes() == images.tobytes()


def test_noise_has_the_requested_std(images):
    out = GaussianNoise(0.5)(np.zeros((100, 3, 8, 8), np.float32), np.random.default_rng(0))
    assert out.std() == pytest.approx(0.5, rel=0.02)


def test_compose_on_flat_vectors_and_errors(rng):
    X = rng.standard_normal((10, 64)).astype(np.float32)
    aug = Compose(Translate(1), HorizontalFlip(), image_shape=(1, 8, 8))
    out = aug(X, np.random.default_rng(0))
    assert out.shape == (10, 64) and out.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        HorizontalFlip()(X, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        Translate(1)(X.reshape(10, 1, 8, 8), None)
    with pytest.raises(ValueError, match="does not fit"):
        RandomCrop(0, size=(9, 9))(X.reshape(10, 1, 8, 8), np.random.default_rng(0))


@pytest.mark.parametrize("make, err, match", [
    (lambda: RandomCrop(padding=-1), ValueError, "RandomCrop: padding must be an integer ≥ 0, got -1"),
    (lambda: RandomCrop(padding=1.5), ValueError, "RandomCrop: padding must be an integer"),
    (lambda: Translate(max_shift=-2), ValueError, "Translate: max_shift must be an integer ≥ 0"),
    (lambda: HorizontalFlip(p=1.5), ValueError, r"HorizontalFlip: p must be in \[0, 1\], got 1.5"),
    (lambda: HorizontalFlip(p="half"), TypeError, "HorizontalFlip: p must be a real number"),
    (lambda: GaussianNoise(std=-0.1), ValueError, "GaussianNoise: std must be >= 0"),
    (lambda: GaussianNoise(std=float("nan")), ValueError, "GaussianNoise: std must be finite")])
def test_augmentation_settings_checked(make, err, match):
    with pytest.raises(err, match=match):
        make()
