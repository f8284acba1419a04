"""The L2 objective through ``fit``, against the written formula J = CE + (λ/2m)·Σ‖W‖² (weights only, m = training
examples) computed here in plain NumPy: the loss fit records and the step SGD takes."""
import numpy as np

from descend import nn, optim
from descend.train import fit


def _ce(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean(), np.exp(logp)


def _data(n=40, d=5, k=3):
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


def test_recorded_loss_is_data_loss_plus_the_l2_term_over_all_weights_not_biases():
    X, y = _data()
    lam, m, batch = 0.7, len(X), 10
    model = nn.Sequential(nn.Linear(5, 4, rng=np.random.default_rng(1)), nn.Tanh(),
                          nn.Linear(4, 3, rng=np.random.default_rng(2)))
    for layer in (model[0], model[2]):  # biases away from 0, so leaving them out of the penalty is visible
        layer.bias.data[...] = 0.5
    W1, b1, W2, b2 = (p.data.astype(np.float64).copy() for p in (model[0].weight, model[0].bias, model[2].weight,
                                                                   model[2].bias))
    h = fit(model, X, y, optimizer=optim.SGD(lr=1e-12), epochs=1, batch_size=batch, l2=lam, shuffle=False,
            dtype=np.float64, divergence=None)
    xb, yb = X[:batch], y[:batch]  # the first batch, unshuffled
    ce, _ = _ce(np.tanh(xb @ W1.T + b1) @ W2.T + b2, yb)
    # m is the number of training examples (40), not the batch size (10)
    expected = ce + lam / (2 * m) * ((W1 ** 2).sum() + (W2 ** 2).sum())
    assert abs(h.step_loss[0] - expected) < 1e-12 * abs(expected)
    assert abs(expected - ce) > 0.1  # the term is large enough that a wrong m or a bias in it would show


def test_one_sgd_step_follows_the_gradient_of_the_l2_objective():
    X, y = _data()
    lam, lr, m, k = 0.3, 0.5, len(X), 3
    model = nn.Sequential(nn.Linear(5, k, rng=np.random.default_rng(3)))
    model[0].bias.data[...] = 0.25
    W, b = model[0].weight.data.astype(np.float64).copy(), model[0].bias.data.astype(np.float64).copy()
    fit(model, X, y, optimizer=optim.SGD(lr=lr), steps=1, batch_size=None, l2=lam, shuffle=False, dtype=np.float64,
        divergence=None)
    _, p = _ce(X @ W.T + b, y)
    d = (p - np.eye(k)[y]) / m  # ∂CE/∂logits
    W_next = W - lr * (d.T @ X + lam / m * W)  # ∂/∂W (λ/2m)‖W‖² = (λ/m)·W
    b_next = b - lr * d.sum(axis=0)  # no decay on the bias
    np.testing.assert_allclose(model[0].weight.data, W_next, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model[0].bias.data, b_next, rtol=1e-12, atol=1e-14)
    assert np.abs(W_next - (W - lr * d.T @ X)).max() > 1e-3  # the decay moved W visibly
