"""Bad input raises ValueError/TypeError whose message names the bad value (and changes no state)."""
import numpy as np
import pytest

import descend
from descend import nn
from descend.autodiff import Tensor, ops
from descend.nn import functional as F
from descend.nn import init


def rng():
    return np.random.default_rng(0)


Z = np.zeros((3, 4))       # logits / scores: N = 3, C = 4
Y = np.array([0, 1, 3])

CASES = [
    # id, call, exception, regex the message must match
    ("ce-label-too-large", lambda: F.cross_entropy(Z, [0, 4, 1]), ValueError, r"out of range.*\[4\].*0\.\.3"),
    ("ce-label-negative", lambda: F.cross_entropy(Z, [0, -1, 1]), ValueError, r"\[-1\]"),
    ("ce-label-non-integer", lambda: F.cross_entropy(Z, [0.0, 1.5, 2.0]), ValueError, r"non-integer.*1\.5"),
    ("ce-label-nan", lambda: F.cross_entropy(Z, [0.0, np.nan, 2.0]), ValueError, r"non-integer.*nan"),
    ("ce-label-bool", lambda: F.cross_entropy(Z, np.array([True, False, True])), TypeError, r"bool"),
    ("ce-label-string", lambda: F.cross_entropy(Z, np.array(["a", "b", "c"])), TypeError, r"<U1"),
    ("ce-label-shape-column", lambda: F.cross_entropy(Z, Y.reshape(3, 1)), ValueError, r"\(3, 1\).*3 samples"),
    ("ce-label-count", lambda: F.cross_entropy(Z, [0, 1]), ValueError, r"\(2,\).*3 samples"),
    ("ce-logits-1d", lambda: F.cross_entropy(np.zeros(4), [1]), ValueError, r"\(N, C\).*\(4,\)"),
    ("ce-logits-3d", lambda: F.cross_entropy(np.zeros((2, 3, 4)), [1, 2]), ValueError, r"\(2, 3, 4\)"),
    ("ce-reduction", lambda: F.cross_entropy(Z, Y, reduction="avg"), ValueError, r"'avg'"),
    ("nn-ce-label-too-large", lambda: nn.cross_entropy(Z, [9, 0, 0]), ValueError, r"\[9\]"),
    ("hinge-label-too-large", lambda: F.hinge(Z, [0, 1, 7]), ValueError, r"out of range.*\[7\]"),
    ("hinge-label-non-integer", lambda: F.hinge(Z, [0.5, 1.0, 2.0]), ValueError, r"0\.5"),
    ("hinge-scores-1d", lambda: F.hinge(np.zeros(4), [1]), ValueError, r"\(4,\)"),
    ("mse-column-vs-flat", lambda: F.mse(np.zeros((4, 1)), np.zeros(4)), ValueError, r"\(4,\).*\(4, 1\)"),
    ("mse-flat-vs-column", lambda: nn.mse(np.zeros(4), np.zeros((4, 1))), ValueError, r"\(4, 1\).*\(4,\)"),
    ("mse-broadcastable-row", lambda: F.mse(np.zeros((4, 3)), np.zeros(3)), ValueError, r"\(3,\).*\(4, 3\)"),
    ("mse-reduction", lambda: F.mse(np.zeros(2), np.zeros(2), reduction="max"), ValueError, r"'max'"),
    ("bce-target-above-1", lambda: F.bce_with_logits(np.zeros(3), [0.0, 1.5, 1.0]), ValueError, r"\[0, 1\].*1\.5"),
    ("bce-target-negative", lambda: F.bce_with_logits(np.zeros(3), [-0.2, 0.5, 1.0]), ValueError, r"-0\.2"),
    ("bce-target-nan", lambda: F.bce_with_logits(np.zeros(2), [np.nan, 0.5]), ValueError, r"nan"),
    ("bce-shape", lambda: F.bce_with_logits(np.zeros((3, 1)), np.zeros(3)), ValueError, r"\(3,\).*\(3, 1\)"),
    ("batchnorm-batch-of-1", lambda: nn.BatchNorm1d(3)(np.ones((1, 3))), ValueError, r"\(1, 3\).*batch size"),
    ("batch_norm-batch-of-1", lambda: F.batch_norm(np.ones((1, 2)), np.ones(2), np.zeros(2), np.zeros(2),
                                                   np.ones(2), training=True), ValueError, r"\(1, 2\)"),
    ("batchnorm-features", lambda: nn.BatchNorm1d(3)(np.ones((4, 5))), ValueError, r"3 features.*\(4, 5\)"),
    ("batchnorm-rank", lambda: nn.BatchNorm1d(3)(np.ones((4, 3, 2, 2))), ValueError, r"\(4, 3, 2, 2\)"),
    ("batchnorm-momentum", lambda: nn.BatchNorm1d(3, momentum=1.5), ValueError, r"1\.5"),
    ("batchnorm-eps", lambda: nn.BatchNorm1d(3, eps=0.0), ValueError, r"eps.*0\.0"),
    ("batchnorm-num-features", lambda: nn.BatchNorm1d(0), ValueError, r"num_features.*0"),
    ("dropout-p-1", lambda: nn.Dropout(1.0, rng=rng()), ValueError, r"\[0, 1\).*1\.0"),
    ("dropout-p-negative", lambda: nn.Dropout(-0.1, rng=rng()), ValueError, r"-0\.1"),
    ("dropout-p-above-1", lambda: nn.Dropout(1.5, rng=rng()), ValueError, r"1\.5"),
    ("dropout-p-nan", lambda: nn.Dropout(float("nan"), rng=rng()), ValueError, r"nan"),
    ("functional-dropout-p-negative", lambda: F.dropout(np.ones(3), -0.5, rng=rng()), ValueError, r"-0\.5"),
    ("functional-dropout-p-above-1", lambda: F.dropout(np.ones(3), 2.0, rng=rng()), ValueError, r"2\.0"),
    ("dropout-missing-rng", lambda: nn.Dropout(0.5), TypeError, r"rng=np\.random\.default_rng"),
    ("functional-dropout-missing-rng", lambda: F.dropout(np.ones(3), 0.5), TypeError, r"rng"),
    ("linear-in-zero", lambda: nn.Linear(0, 3, rng=rng()), ValueError, r"in_features.*0"),
    ("linear-out-negative", lambda: nn.Linear(3, -2, rng=rng()), ValueError, r"out_features.*-2"),
    ("linear-fractional", lambda: nn.Linear(2.5, 3, rng=rng()), ValueError, r"2\.5"),
    ("linear-bool", lambda: nn.Linear(True, 3, rng=rng()), ValueError, r"True"),
    ("linear-missing-rng", lambda: nn.Linear(3, 2), TypeError, r"rng=np\.random\.default_rng.*None"),
    ("linear-legacy-rng", lambda: nn.Linear(3, 2, rng=np.random.RandomState(0)), TypeError, r"RandomState"),
    ("linear-feature-mismatch", lambda: nn.Linear(3, 2, rng=rng())(np.ones((4, 5), np.float32)), ValueError,
     r"5 features.*\(4, 5\).*in_features=3"),
    ("functional-linear-mismatch", lambda: F.linear(np.ones((2, 4)), np.ones((3, 5))), ValueError,
     r"4 features.*in_features=5"),
    ("maxout-not-divisible", lambda: F.maxout(np.ones((2, 5)), 2), ValueError, r"5 features.*pieces=2"),
    ("maxout-pieces-zero", lambda: F.maxout(np.ones((2, 4)), 0), ValueError, r"pieces.*0"),
    ("maxout-pieces-fraction", lambda: F.maxout(np.ones((2, 4)), 1.5), ValueError, r"1\.5"),
    ("Maxout-pieces-zero", lambda: nn.Maxout(3, 2, pieces=0, rng=rng()), ValueError, r"pieces.*0"),
    ("Maxout-missing-rng", lambda: nn.Maxout(3, 2), TypeError, r"rng"),
    ("leaky-slope", lambda: nn.LeakyReLU(1.5), ValueError, r"1\.5"),
    ("elu-alpha", lambda: nn.ELU(-1.0), ValueError, r"-1\.0"),
    ("init-without-generator", lambda: init.he_normal((3, 2), rng=None), TypeError, r"rng.*None"),
    ("init-seed-instead-of-generator", lambda: init.xavier_uniform((3, 2), rng=42), TypeError, r"42"),
    ("init-normal-negative-std", lambda: init.normal((3,), rng=rng(), std=-1.0), ValueError, r"-1\.0"),
    ("pack-dtype-int", lambda: descend.pack(nn.Linear(2, 2, rng=rng()), dtype=np.int64), ValueError, r"int64"),
    ("pack-dtype-float16", lambda: descend.pack(nn.Linear(2, 2, rng=rng()), dtype=np.float16), ValueError,
     r"float16"),
    ("l2-negative", lambda: nn.l2_penalty([Tensor(np.ones(2))], -0.1), ValueError, r"-0\.1"),
    ("l2-no-weights", lambda: nn.l2_penalty([], 0.1), ValueError, r"at least one"),
    ("matmul-scalar", lambda: ops.matmul(Tensor(np.ones(3)), Tensor(np.array(2.0))), ValueError, r"\*"),
    ("int-tensor-requires-grad", lambda: Tensor(np.arange(3), requires_grad=True), TypeError, r"int64"),
    ("backward-non-scalar", lambda: (Tensor(np.ones(2), requires_grad=True) * 2.0).backward(), RuntimeError,
     r"\(2,\)"),
    ("backward-wrong-grad-shape", lambda: (Tensor(np.ones(2), requires_grad=True) * 2.0).backward(np.ones(3)),
     ValueError, r"\(3,\).*\(2,\)"),
]


@pytest.mark.parametrize("call,exc,pattern", [pytest.param(c, e, p, id=i) for i, c, e, p in CASES])
def test_bad_input_raises_a_clear_error(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_valid_edge_inputs_are_accepted():
    assert F.cross_entropy(Z, np.array([0.0, 3.0, 1.0])).data.shape == ()  # integral floats are labels
    assert F.cross_entropy(Z, np.array([0, 3, 1], np.uint8)).data.shape == ()
    assert F.bce_with_logits(np.zeros(3), [0.0, 1.0, 0.5]).data.shape == ()
    assert nn.Dropout(0.0)(np.ones(2)) is not None
    assert nn.BatchNorm1d(2)(np.ones((1, 2, 3)) * np.arange(3)).shape == (1, 2, 3)  # 3 values per channel


def test_batchnorm_error_changes_no_state():
    bn = nn.BatchNorm1d(3)
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    with pytest.raises(ValueError):
        bn(np.full((1, 3), 5.0, np.float32))
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)


def test_labels_error_leaves_the_graph_untouched():
    z = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(ValueError):
        F.cross_entropy(z, [0, 5])
    assert z.grad is None and z._creator is None
