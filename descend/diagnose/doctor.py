"""``descend doctor``: babysit a training config — run every check, name the faults, write the pictures.

CS231n's procedure, automated: check the initial loss, look at the activations, measure the
update/weight ratios, overfit 20 examples, sweep the learning rate, train briefly and read the
loss curve and the train/validation gap. The checks' problems are then reconciled into faults
named in plain words (the table ``FAULTS``): a fault that explains another's symptoms silences
them (a learning rate 100× too low is why 20 examples cannot be overfit; it is not a second fault).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config
from .. import data as D
from .activations import activation_stats
from .checks import gap_verdict, initial_loss_check, loss_curve_verdict, overfit_small_subset
from .lr_range import lr_range_test
from .updates import update_ratios

__all__ = ["FAULTS", "Finding", "Report", "doctor"]

# fault code → what to call it and what to do (the report's vocabulary, in priority order)
FAULTS = {
    "init_too_large": ("initialization scale too large",
                       "scale the initial weights down: He (ReLU) or Xavier (tanh/sigmoid) — model.init = \"auto\""),
    "init_too_small": ("initialization scale too small",
                       "scale the initial weights up: He (ReLU) or Xavier (tanh/sigmoid) — model.init = \"auto\""),
    "dead_relu": ("dead ReLUs", "start biases at 0 (or 0.01), lower the learning rate, use He initialization "
                                "or a leaky ReLU"),
    "lr_too_high": ("learning rate too high", "lower optimizer.lr toward the LR range test's suggestion"),
    "lr_too_low": ("learning rate too low", "raise optimizer.lr toward the LR range test's suggestion"),
    "labels_mismatch": ("labels don't match inputs (no signal)",
                        "check that X and y are aligned (same order, same files); the model can only memorize"),
    "bad_init": ("bad initialization (flat start)", "use He (ReLU) or Xavier (tanh) initialization"),
    "cannot_overfit": ("cannot overfit a tiny subset", "look for a bug in the model/loss or add capacity"),
    "overfitting": ("overfitting", "add regularization (train.l2, model.dropout), more data, or stop earlier"),
    "underfitting": ("underfitting", "increase capacity (model.hidden) or train longer"),
}

# check problem → fault it is evidence of
_EVIDENCE = {
    ("initial_loss", "init_loss_high"): "init_too_large",
    ("activations", "saturated"): "init_too_large",
    ("activations", "exploding"): "init_too_large",
    ("activations", "vanishing"): "init_too_small",
    ("activations", "dead_relu"): "dead_relu",
    ("updates", "zero_gradient"): "dead_relu",
    ("updates", "update_too_large"): "lr_too_high",
    ("updates", "nonfinite_gradient"): "lr_too_high",
    ("updates", "update_too_small"): "lr_too_low",
    ("lr_range", "lr_too_high"): "lr_too_high",
    ("lr_range", "lr_too_low"): "lr_too_low",
    ("loss_curve", "lr_too_high"): "lr_too_high",
    ("loss_curve", "lr_too_low"): "lr_too_low",
    ("loss_curve", "not_learning"): "lr_too_low",
    ("loss_curve", "bad_init"): "bad_init",
    ("gap", "no_signal"): "labels_mismatch",
    ("overfit", "cannot_overfit"): "cannot_overfit",
    ("gap", "overfitting"): "overfitting",
    ("gap", "underfitting"): "underfitting",
    ("activations_after", "dead_relu"): "dead_relu",
}

_ROOT = ("init_too_large", "init_too_small", "dead_relu")  # problems of the network as built


@dataclass
class Finding:
    """One check's outcome as the report shows it."""

    check: str
    ok: bool
    problem: str | None
    verdict: str


@dataclass
class Report:
    """What ``doctor`` found: every check's finding, the reconciled faults (codes of ``FAULTS``, most
    fundamental first), the evidence for each, the figures written, and the raw check results."""

    findings: list
    faults: list
    evidence: dict
    plots: list
    seconds: float
    results: dict = field(repr=False, default_factory=dict)
    config: dict = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.faults

    def render(self) -> str:
        lines = ["descend doctor", ""]
        for f in self.findings:
            mark = "ok " if f.ok else "!! "
            lines.append(f"{mark} {f.check:<18} {f.verdict}")
        lines.append("")
        if self.faults:
            lines.append("diagnosis:")
            for code in self.faults:
                title, advice = FAULTS[code]
                lines.append(f"  - {title} (from {', '.join(self.evidence[code])}): {advice}")
        else:
            lines.append("diagnosis: healthy — no check raised an alarm")
        lines.append("")
        lines.append(f"{self.seconds:.1f} s; figures: {', '.join(p.name for p in self.plots)}")
        return "\n".join(lines)

    __str__ = render

    def to_dict(self) -> dict:
        return {"faults": self.faults, "fault_names": [FAULTS[c][0] for c in self.faults],
                "evidence": self.evidence, "findings": [vars(f) for f in self.findings],
                "plots": [str(p) for p in self.plots], "seconds": round(self.seconds, 3)}


def _prepare(cfg: dict, data):
    """The data of ``descend train`` (``config.prepare_data``), standardized by training statistics here."""
    X, y, Xv, yv, _, _, num_classes, scaler = config.prepare_data(cfg, data)
    if scaler is not None:
        X, Xv = scaler.fit_transform(X), scaler.transform(Xv)
    X, y = D.check_Xy(X, y)
    return X, y, Xv, yv, num_classes


def _reconcile(findings: list[Finding]) -> tuple[list[str], dict]:
    evidence: dict[str, list[str]] = {}
    for f in findings:
        code = _EVIDENCE.get((f.check, f.problem))
        if code:
            evidence.setdefault(code, []).append(f.check)
    found = set(evidence)
    root = found & set(_ROOT)
    lr = found & {"lr_too_high", "lr_too_low"}
    if root:
        # with a broken network, the LR sweep and the loss curve measure the wrong thing
        # (tiny weights also make ‖ΔW‖/‖W‖ large): keep an lr fault only if two checks agree on it
        for code in ("lr_too_high", "lr_too_low"):
            if code in evidence and len(evidence[code]) < 2:
                found.discard(code)
        found -= {"bad_init"}
    if "init_too_large" in found or "init_too_small" in found:
        if evidence.get("dead_relu") == ["activations_after"]:
            found.discard("dead_relu")
    if "lr_too_high" in found and evidence.get("dead_relu") == ["activations_after"]:
        found.discard("dead_relu")  # knocked out by the large steps: the lr is the fault
    if {"lr_too_high", "lr_too_low"} <= found:  # contradictory: keep the direct measurement's side
        direct = [c for c in ("lr_too_high", "lr_too_low") if "updates" in evidence[c]]
        found -= {"lr_too_high", "lr_too_low"} - set(direct[:1])
    if root or found & {"lr_too_high", "lr_too_low"}:
        found -= {"cannot_overfit", "overfitting", "underfitting", "labels_mismatch"}
        found -= {"bad_init"} if lr else set()
    if "labels_mismatch" in found:
        found -= {"overfitting", "underfitting"}
    if "cannot_overfit" in found:
        found -= {"underfitting"}
    faults = [c for c in FAULTS if c in found]
    return faults, {c: evidence[c] for c in faults}


def doctor(cfg: dict, out_dir, *, data=None, model=None, epochs: int = 8, sweep_steps: int = 150,
           verbose: bool = False) -> Report:
    """Run the babysitting checks on a training config and write the report and figures to ``out_dir``.

    ``cfg``: the TOML config of ``descend train`` as a dict (missing keys take ``config.DEFAULT_CONFIG``).
    ``data``: a ``descend.data.Dataset`` to use instead of ``cfg["data"]["dataset"]``; ``model``:
    a model to use instead of building the config's (it is trained in place by the short run).
    The short training run lasts ``min(epochs, train.epochs)`` epochs. Writes ``report.txt``,
    ``report.json`` and PNGs (activation histograms at initialization and after training, the LR
    sweep, the update ratios, loss and accuracy curves). With ``verbose`` the report is printed.
    """
    from .. import plots as P
    from ..train import fit
    from . import plots as DP

    t0 = time.perf_counter()
    cfg = config.resolve(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = cfg["train"]
    X, y, Xv, yv, C = _prepare(cfg, data)
    if model is None:
        model = config.build_model(cfg, X.shape[1:], C, np.random.default_rng(t["seed"]))
    new_opt = lambda: config.build_optimizer(cfg)  # noqa: E731 — a fresh optimizer state per check
    schedule = config.build_schedule(cfg)  # a descend schedule carries its own clock unit
    lr = float(cfg["optimizer"].get("lr", new_opt().lr))
    full_batch = type(new_opt()).__name__ == "LBFGS"
    if t["batch_size"] == "auto":
        raise config.ConfigError('train.batch_size = "auto" is measured by descend train / descend batch-size; '
                                 'give doctor a number or "full"')
    bs = None if full_batch or t["batch_size"] == "full" else t["batch_size"]
    sample = X[:256]

    results, findings = {}, []

    def record(name, result):
        results[name] = result
        findings.append(Finding(name, result.ok, result.problem, result.verdict))

    record("initial_loss", initial_loss_check(model, X[:1024], y[:1024], num_classes=C, l2=t["l2"], n_train=len(X)))
    record("activations", activation_stats(model, sample))
    if not full_batch:
        record("updates", update_ratios(model, X, y, optimizer=new_opt(), batch_size=bs, lr=lr))
    record("overfit", overfit_small_subset(model, X, y, optimizer=new_opt()))
    if not full_batch:
        record("lr_range", lr_range_test(model, X, y, optimizer=new_opt(), batch_size=bs, lr=lr, steps=sweep_steps))
    history = fit(model, X, y, optimizer=new_opt(), epochs=max(1, min(epochs, t["epochs"])), batch_size=bs,
                  schedule=schedule, l2=t["l2"], validation=(Xv, yv),
                  divergence=t["divergence"] or None, seed=t["seed"])
    results["history"] = history
    record("loss_curve", loss_curve_verdict(history, divergence=t["divergence"] or 3.0))
    record("gap", gap_verdict(history=history, num_classes=C))
    record("activations_after", activation_stats(model, sample))

    plots = [DP.plot_activation_histograms(results["activations"], out / "activations_init.png",
                                           title="Activations at initialization"),
             DP.plot_activation_histograms(results["activations_after"], out / "activations_trained.png",
                                           title=f"Activations after {len(history.epochs)} epochs")]
    if "lr_range" in results:
        plots.append(DP.plot_lr_range(results["lr_range"], out / "lr_range.png"))
    if "updates" in results:
        plots.append(DP.plot_update_ratios(results["updates"], out / "update_ratios.png"))
    plots.append(P.plot_loss(history, out / "loss.png"))
    if history.epochs:
        plots.append(P.plot_accuracy(history, out / "accuracy.png"))

    faults, evidence = _reconcile(findings)
    report = Report(findings, faults, evidence, plots, time.perf_counter() - t0, results, cfg)
    (out / "report.txt").write_text(report.render() + "\n")
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=_json) + "\n")
    if verbose:
        print(report.render())
    return report


def _json(x):
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    return str(x)
