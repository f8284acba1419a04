"""Initializers: statistics against their formulas, fans, determinism, and the layers' defaults."""
import functools
import math

import numpy as np
import pytest

from descend import nn
from descend.nn import init

SHAPE = (400, 600)  # 240 000 draws: the sample std is within ~0.15 % of σ (one standard error)
FAN_IN, FAN_OUT = 600, 400


def rng(seed=0):
    return np.random.default_rng(seed)


NORMAL_CASES = [
    ("normal-std1", lambda s, r: init.normal(s, rng=r), 1.0),
    ("normal-std0.3", lambda s, r: init.normal(s, rng=r, std=0.3), 0.3),
    ("small_random", lambda s, r: init.small_random(s, rng=r), 0.01),
    ("xavier_normal", lambda s, r: init.xavier_normal(s, rng=r), math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("xavier_normal-gain2", lambda s, r: init.xavier_normal(s, rng=r, gain=2.0), 2 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_normal", lambda s, r: init.he_normal(s, rng=r), math.sqrt(2 / FAN_IN)),
]

UNIFORM_CASES = [
    ("xavier_uniform", lambda s, r: init.xavier_uniform(s, rng=r), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("he_uniform", lambda s, r: init.he_uniform(s, rng=r), math.sqrt(6 / FAN_IN)),
]


@pytest.mark.parametrize("draw,std", [pytest.param(d, s, id=i) for i, d, s in NORMAL_CASES])
def test_normal_family_statistics(draw, std):
    w = draw(SHAPE, rng(1))
    n = w.size
    assert w.shape == SHAPE and w.dtype == np.float32
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert w.astype(np.float64).std() == pytest.approx(std, rel=0.01)
    # Gaussian, not uniform: about 4.55 % of draws lie beyond 2σ
    assert np.mean(np.abs(w) > 2 * std) == pytest.approx(0.0455, abs=0.004)


@pytest.mark.parametrize("draw,bound", [pytest.param(d, b, id=i) for i, d, b in UNIFORM_CASES])
def test_uniform_family_statistics(draw, bound):
    w = draw(SHAPE, rng(2)).astype(np.float64)
    assert np.all(np.abs(w) <= bound * (1 + 1e-6))
    assert w.max() == pytest.approx(bound, rel=0.01) and w.min() == pytest.approx(-bound, rel=0.01)
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * w.size)
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_normal_mean_shift():
    w = init.normal((1000, 100), rng=rng(), std=0.5, mean=3.0)
    assert w.mean() == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("shape,expected", [
    ((5, 3), (3, 5)),
    ((64, 32, 3, 3), (32 * 9, 64 * 9)),
    ((8, 4, 5), (20, 40)),
    ((7,), (7, 7)),
], ids=["linear", "conv2d", "conv1d", "1-d"])
def test_fans(shape, expected):
    assert init.fans(shape) == expected


def test_fans_refuse_a_scalar_shape():
    with pytest.raises(ValueError, match="dimension"):
        init.fans(())


def test_he_normal_on_a_conv_shape_uses_the_receptive_field():
    w = init.he_normal((64, 32, 5, 5), rng=rng())
    assert w.std() == pytest.approx(math.sqrt(2 / (32 * 25)), rel=0.01)


@pytest.mark.parametrize("name", ["normal", "small_random", "xavier_normal", "xavier_uniform", "he_normal",
                                  "he_uniform"])
def test_same_seed_same_weights_and_dtype(name):
    draw = getattr(init, name)
    a, b, c = draw((30, 20), rng=rng(5)), draw((30, 20), rng=rng(5)), draw((30, 20), rng=rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert draw((3, 2), rng=rng()).dtype == np.float32
    assert draw((3, 2), rng=rng(), dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("name", ["normal", "small_random", "xavier_normal", "xavier_uniform", "he_normal",
                                  "he_uniform"])
@pytest.mark.parametrize("bad", [None, 0, np.random.RandomState(0)], ids=["None", "int-seed", "RandomState"])
def test_random_initializers_need_a_generator(name, bad):
    with pytest.raises(TypeError, match="rng"):
        getattr(init, name)((3, 2), rng=bad)


def test_zeros_and_constant():
    np.testing.assert_array_equal(init.zeros((2, 3)), np.zeros((2, 3)))
    assert init.zeros((2,)).dtype == np.float32
    np.testing.assert_array_equal(init.constant((2, 2), value=0.5, dtype=np.float64), np.full((2, 2), 0.5))


def test_linear_default_is_he_normal_with_zero_bias():
    lin = nn.Linear(500, 400, rng=rng())
    assert lin.weight.dtype == np.float32 and lin.weight.shape == (400, 500)
    assert lin.weight.data.std() == pytest.approx(math.sqrt(2 / 500), rel=0.01)
    np.testing.assert_array_equal(lin.bias.data, 0)


def test_linear_same_seed_same_weights():
    a, b = nn.Linear(5, 4, rng=rng(9)), nn.Linear(5, 4, rng=rng(9))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


XAVIER = math.sqrt(2 / (500 + 400))
HE = math.sqrt(2 / 500)


@pytest.mark.parametrize("act,std", [(nn.Tanh, XAVIER), (nn.Sigmoid, XAVIER), (nn.ReLU, HE), (nn.LeakyReLU, HE),
                                     (nn.ELU, HE)], ids=["Tanh", "Sigmoid", "ReLU", "LeakyReLU", "ELU"])
def test_sequential_picks_xavier_before_tanh_sigmoid_and_keeps_he_otherwise(act, std):
    model = nn.Sequential(nn.Linear(500, 400, rng=rng()), act(), nn.Linear(400, 300, rng=rng(1)))
    assert model[0].weight.data.std() == pytest.approx(std, rel=0.01)
    assert model[0].weight.dtype == np.float32
    # the last Linear has no activation after it: He
    assert model[2].weight.data.std() == pytest.approx(math.sqrt(2 / 400), rel=0.01)


def test_sequential_redraws_maxout_before_tanh():
    model = nn.Sequential(nn.Maxout(500, 200, pieces=2, rng=rng()), nn.Tanh())
    assert model[0].weight.data.std() == pytest.approx(XAVIER, rel=0.01)  # weight (400, 500)


def test_sequential_respects_an_explicit_init():
    model = nn.Sequential(nn.Linear(500, 400, init=functools.partial(init.normal, std=0.05), rng=rng()), nn.Tanh(),
                          nn.Linear(400, 300, init=init.he_uniform, rng=rng()), nn.Sigmoid())
    assert model[0].weight.data.std() == pytest.approx(0.05, rel=0.01)
    w = model[2].weight.data
    assert np.abs(w).max() <= math.sqrt(6 / 400) and w.std() == pytest.approx(math.sqrt(2 / 400), rel=0.01)


def test_sequential_redraw_is_deterministic():
    a = nn.Sequential(nn.Linear(6, 5, rng=rng(3)), nn.Tanh())
    b = nn.Sequential(nn.Linear(6, 5, rng=rng(3)), nn.Tanh())
    np.testing.assert_array_equal(a[0].weight.data, b[0].weight.data)
