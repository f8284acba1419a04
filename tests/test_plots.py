"""The run's figures hold the run's numbers: the tests read each figure's lines, not just the PNG's size."""
import numpy as np
import pytest

from descend import nn, optim, plots
from descend.optim.ewa import ewa
from descend.train import EarlyStopping, fit


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.standard_normal(120) > 0).astype(int)
    model = nn.Sequential(nn.Linear(6, 32, rng=rng), nn.ReLU(), nn.Linear(32, 2, rng=rng))
    # a large lr on a small set overfits quickly, so early stopping keeps an epoch before the last
    return fit(model, X[:80], y[:80], optimizer=optim.Adam(lr=0.05), epochs=30, batch_size=16,
               validation=(X[80:], y[80:]), stopping=[EarlyStopping(patience=3)])


def _lines(fig):
    ax = fig.axes[0]
    return {line.get_label(): line for line in ax.get_lines()}


def _close(fig):
    plots.pyplot().close(fig)


def test_loss_figure_has_the_step_loss_its_ewa_the_validation_loss_and_the_best_epoch(history):
    fig = plots.loss_figure(history, beta=0.9)
    lines = _lines(fig)
    _close(fig)
    assert set(lines) == {"loss per step", "EWA β=0.9 (bias-corrected)", "validation loss (end of epoch)",
                          f"best epoch ({history.best['epoch']})"}
    steps = np.arange(1, history.steps + 1)
    raw = lines["loss per step"]
    np.testing.assert_array_equal(raw.get_xdata(), steps)
    np.testing.assert_array_equal(raw.get_ydata(), history.step_loss)
    smooth = lines["EWA β=0.9 (bias-corrected)"].get_ydata()
    # bias-corrected EWA written out: v_t = 0.9·v_{t-1} + 0.1·x_t, shown as v_t / (1 − 0.9^t)
    v, expected = 0.0, []
    for t, x in enumerate(history.step_loss, 1):
        v = 0.9 * v + 0.1 * x
        expected.append(v / (1 - 0.9 ** t))
    np.testing.assert_allclose(smooth, expected, rtol=1e-12)
    np.testing.assert_allclose(smooth, ewa(np.asarray(history.step_loss, float), 0.9), rtol=1e-12)
    val = lines["validation loss (end of epoch)"]
    np.testing.assert_array_equal(val.get_xdata(), [e["step"] for e in history.epochs])
    np.testing.assert_array_equal(val.get_ydata(), [e["val_loss"] for e in history.epochs])
    best = history.best["epoch"]
    assert best < len(history.epochs)  # early stopping kept an earlier epoch, so the mark is not at the end
    assert best == int(np.argmin([e["val_loss"] for e in history.epochs])) + 1
    step_of_best = history.epochs[best - 1]["step"]
    assert list(lines[f"best epoch ({best})"].get_xdata()) == [step_of_best, step_of_best]


def test_accuracy_figure_has_train_and_validation_per_epoch_and_the_best_epoch(history):
    fig = plots.accuracy_figure(history)
    lines = _lines(fig)
    _close(fig)
    best = history.best["epoch"]
    assert set(lines) == {"train", "validation", f"best epoch ({best})"}
    epochs = [e["epoch"] for e in history.epochs]
    for label, key in (("train", "train_accuracy"), ("validation", "val_accuracy")):
        np.testing.assert_array_equal(lines[label].get_xdata(), epochs)
        np.testing.assert_array_equal(lines[label].get_ydata(), [e[key] for e in history.epochs])
    assert list(lines[f"best epoch ({best})"].get_xdata()) == [best, best]


def test_lr_figure_is_the_applied_rate_per_step(history):
    fig = plots.lr_figure(history)
    (line,) = fig.axes[0].get_lines()
    _close(fig)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, history.steps + 1))
    np.testing.assert_array_equal(line.get_ydata(), history.step_lr)
    assert set(history.step_lr) == {0.05}


def test_without_validation_no_validation_line_and_no_mark(history):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    h = fit(nn.Sequential(nn.Linear(3, 2, rng=rng)), X, y, optimizer=optim.SGD(lr=0.1), epochs=2, batch_size=20)
    fig = plots.loss_figure(h)
    labels = set(_lines(fig))
    _close(fig)
    assert labels == {"loss per step", f"EWA β={round(min(0.98, max(0.5, 1 - 20 / 4)), 3)} (bias-corrected)"}


def test_plot_functions_write_pngs(history, tmp_path):
    import matplotlib.image as mpimg
    for fn in (plots.plot_loss, plots.plot_accuracy, plots.plot_lr):
        path = fn(history, tmp_path / f"{fn.__name__}.png")
        image = mpimg.imread(path)
        assert image.ndim == 3 and image[..., :3].std() > 0.01, fn.__name__
