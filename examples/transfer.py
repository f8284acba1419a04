"""Transfer learning, CS231n's advice measured: pretrain on digits 0–4, then learn 5–9 from few labels three ways.

    python examples/transfer.py [--seeds 5] [--plot transfer.png]

An MLP (64 → 64 → 32 → 5) is pretrained on the digits 0–4 of scikit-learn's bundled digits. Then the
digits 5–9 are learned from 5, 20 and 100 labelled examples per class:

- scratch:   the same architecture, new random weights, everything trained;
- frozen:    the pretrained layers frozen (``freeze()``), only a new head (32 → 5) trained;
- fine-tune: the pretrained layers trained at lr/10 (``set_lr_scale(0.1)``), the new head at lr.

Accuracy on every test digit 5–9, mean and spread (standard deviation) over the seeds; the seed
draws the labelled examples and the new weights. Inputs are standardized with the statistics of the
pretraining data in every regime.
"""
from __future__ import annotations

import argparse

import numpy as np

import descend
from descend import nn
from descend.data import Standardize, load_digits
from descend.nn.spec import build, describe
from descend.optim import Adam

SHOTS = (5, 20, 100)
REGIMES = ("scratch", "frozen", "fine-tune")
LR, EPOCHS = 1e-2, 150


def mlp(rng, classes=5):
    return nn.Sequential(nn.Linear(64, 64, rng=rng), nn.ReLU(), nn.Linear(64, 32, rng=rng), nn.ReLU(),
                         nn.Linear(32, classes, rng=rng))


def pretrain(X, y):
    model = mlp(np.random.default_rng(0))
    descend.fit(model, X, y, optimizer=Adam(lr=1e-3), epochs=40, batch_size=32, seed=0)
    return model


def copy_with_new_head(pretrained, rng):
    """The pretrained network (same θ) with a fresh 32 → 5 head."""
    model = build(describe(pretrained))
    descend.pack(model).theta[...] = descend.pack(pretrained).theta
    model[-1] = nn.Linear(32, 5, rng=rng)
    return model


def learn(regime, pretrained, X, y, rng):
    if regime == "scratch":
        model = mlp(rng)
    else:
        model = copy_with_new_head(pretrained, rng)
        for layer in model[:-1]:
            layer.freeze() if regime == "frozen" else layer.set_lr_scale(0.1)
    descend.fit(model, X, y, optimizer=Adam(lr=LR), epochs=EPOCHS, batch_size=None, seed=rng)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--plot", default="transfer.png", help="figure to write ('' for none)")
    args = parser.parse_args(argv)
    ds = load_digits(seed=0)
    low, high = ds.y_train < 5, ds.y_train >= 5
    scale = Standardize().fit(ds.X_train[low])
    pretrained = pretrain(scale.transform(ds.X_train[low]), ds.y_train[low])
    Xpool, ypool = scale.transform(ds.X_train[high]), ds.y_train[high] - 5
    test = ds.y_test >= 5
    Xt, yt = scale.transform(ds.X_test[test]), ds.y_test[test] - 5
    acc = {(r, k): [] for r in REGIMES for k in SHOTS}
    for seed in range(args.seeds):
        for k in SHOTS:
            pick = np.random.default_rng([seed, k])
            idx = np.concatenate([pick.choice(np.flatnonzero(ypool == c), k, replace=False) for c in range(5)])
            for regime in REGIMES:
                model = learn(regime, pretrained, Xpool[idx], ypool[idx], np.random.default_rng([seed, k, 1]))
                acc[regime, k].append(descend.evaluate(model, Xt, yt)["accuracy"])
    print(f"digits 5–9 after pretraining on 0–4: test accuracy (n = {len(yt)}), mean ± std over {args.seeds} seeds")
    print(f"{'examples per class':>20} " + " ".join(f"{r:>15}" for r in REGIMES))
    for k in SHOTS:
        print(f"{k:>20} " + " ".join(f"{np.mean(acc[r, k]):>8.3f} ± {np.std(acc[r, k]):.3f}" for r in REGIMES))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in REGIMES:
            ax.errorbar(SHOTS, [np.mean(acc[r, k]) for k in SHOTS], yerr=[np.std(acc[r, k]) for k in SHOTS],
                        marker="o", capsize=3, label=r)
        ax.set(xscale="log", xticks=SHOTS, xticklabels=[str(k) for k in SHOTS], xlabel="labelled examples per class",
               ylabel="test accuracy (digits 5–9)", title="Transfer from digits 0–4")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"figure: {args.plot}")
    return acc


if __name__ == "__main__":
    main()
