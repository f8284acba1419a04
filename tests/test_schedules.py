"""Learning-rate schedules: the lecture's table, closed forms, and torch.optim.lr_scheduler as oracle."""
import math

import numpy as np
import pytest

from descend.optim.schedules import (Constant, Cosine, ExponentialDecay, InverseSqrtDecay, InverseTimeDecay, LinearWarmup,
                               PiecewiseConstant, Sequence, StepDecay, preview, warmup_cosine)


def test_inverse_time_lecture_table():
    s = InverseTimeDecay(0.2, 1.0)
    assert s(0) == 0.2
    np.testing.assert_allclose([s(e) for e in (1, 2, 3, 4)], [0.1, 0.2 / 3, 0.05, 0.04], rtol=1e-12, atol=0)
    assert [round(s(e), 4) for e in (1, 2, 3, 4)] == [0.1, 0.0667, 0.05, 0.04]
    assert s.unit == "epoch"


def test_closed_forms_and_step0():
    assert Constant(0.3)(0) == Constant(0.3)(1000) == 0.3
    e = ExponentialDecay(0.2, 0.95)
    assert e(0) == 0.2 and math.isclose(e(3), 0.2 * 0.95 ** 3, rel_tol=1e-15)
    k = InverseSqrtDecay(0.5)
    assert k(0) == k(1) == 0.5 and math.isclose(k(4), 0.25, rel_tol=1e-15) and k.unit == "epoch"
    assert InverseSqrtDecay(0.5, unit="step")(16) == 0.125
    p = PiecewiseConstant((3, 5), (1.0, 0.5, 0.25))
    assert [p(i) for i in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    w = LinearWarmup(0.9, 3, start_factor=0.1)
    np.testing.assert_allclose(preview(w, 5), [0.09, 0.09 + 0.27, 0.09 + 0.54, 0.9, 0.9], rtol=1e-12)
    c = Cosine(1.0, 4, min_lr=0.2)
    np.testing.assert_allclose(preview(c, 6), [1.0, 0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, 0.6,
                                               0.2 + 0.8 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.2, 0.2], rtol=1e-12)
    seq = warmup_cosine(1.0, 2, 6)
    assert seq(0) == 1.0 / 3.0 and seq(2) == 1.0 and seq(6) == 0.0
    assert preview(seq, 3).dtype == np.float64 and preview(seq, 3).shape == (3,)


@pytest.mark.parametrize("bad", [
    lambda: InverseTimeDecay(0.0, 1.0), lambda: InverseTimeDecay(0.1, -1.0), lambda: StepDecay(0.1, 0),
    lambda: PiecewiseConstant((5, 3), (1.0, 0.5, 0.1)), lambda: PiecewiseConstant((3,), (1.0,)),
    lambda: Cosine(0.1, 10, min_lr=0.2), lambda: Constant(0.1, unit="batch"), lambda: LinearWarmup(0.1, 5, start_factor=0),
    lambda: Sequence((Constant(0.1), Constant(0.2)), ()), lambda: Sequence((Constant(0.1), InverseTimeDecay(0.1, 1.0)), (3,)),
    lambda: warmup_cosine(0.1, 10, 5), lambda: Constant(0.1)(-1), lambda: Constant(0.1)(1.5)])
def test_invalid(bad):
    with pytest.raises(ValueError):
        bad()


def test_frozen():
    s = Constant(0.1)
    with pytest.raises(Exception):
        s.lr = 0.2


torch = None


def torch_lrs(make_sched, n, lr=0.5):
    global torch
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_sched(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def test_against_torch():
    pytest.importorskip("torch")
    from torch.optim import lr_scheduler as L
    n = 40
    cases = [
        (StepDecay(0.5, 7, gamma=0.3), lambda o: L.StepLR(o, step_size=7, gamma=0.3)),
        (ExponentialDecay(0.5, 0.9), lambda o: L.ExponentialLR(o, gamma=0.9)),
        (Cosine(0.5, 25, min_lr=0.01), lambda o: L.CosineAnnealingLR(o, T_max=25, eta_min=0.01)),
        (LinearWarmup(0.5, 10, start_factor=0.25), lambda o: L.LinearLR(o, start_factor=0.25, total_iters=10)),
        (PiecewiseConstant((5, 12, 30), (0.5, 0.05, 0.005, 0.0005)),
         lambda o: L.MultiStepLR(o, milestones=[5, 12, 30], gamma=0.1)),
        (Sequence((LinearWarmup(0.5, 8, start_factor=0.1), Cosine(0.5, 20)), (8,)),
         lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=8), L.CosineAnnealingLR(o, T_max=20)],
                                  milestones=[8])),
        (Sequence((Constant(0.5), ExponentialDecay(0.5, 0.8, unit="step")), (10,)),
         lambda o: L.SequentialLR(o, [L.ConstantLR(o, factor=1.0, total_iters=1), L.ExponentialLR(o, gamma=0.8)],
                                  milestones=[10])),
    ]
    for ours, make in cases:
        # torch's cosine rises again after T_max (it is periodic); ours stays at min_lr, so compare up to T_max
        m = 26 if isinstance(ours, Cosine) else 29 if isinstance(ours, Sequence) and isinstance(ours.schedules[1], Cosine) else n
        np.testing.assert_allclose(preview(ours, m), torch_lrs(make, m), rtol=1e-12, atol=1e-15, err_msg=repr(ours))


def test_staircase_inverse_time_and_exponential_hand_computed():
    """Keras' meaning of decay_steps/staircase: t/decay_steps, floored when staircase (values by hand)."""
    s = InverseTimeDecay(0.1, 0.5, decay_steps=2, staircase=True)
    # 0.1/(1 + 0.5·⌊t/2⌋): t = 0, 1 → 0.1; 2, 3 → 0.1/1.5; 7 → 0.1/2.5 = 0.04
    np.testing.assert_allclose([s(t) for t in (0, 1, 2, 3, 7)], [0.1, 0.1, 0.1 / 1.5, 0.1 / 1.5, 0.04], rtol=1e-12, atol=0)
    c = InverseTimeDecay(0.1, 0.5, decay_steps=2)
    # continuous: 0.1/(1 + 0.5·t/2): t = 1 → 0.1/1.25 = 0.08; t = 6 → 0.1/2.5 = 0.04
    np.testing.assert_allclose([c(0), c(1), c(6)], [0.1, 0.08, 0.04], rtol=1e-12, atol=0)
    e = ExponentialDecay(0.5, 0.25, decay_steps=4, staircase=True, unit="step")
    # 0.5·0.25^⌊t/4⌋: t = 0..3 → 0.5; 4..7 → 0.125; 9 → 0.03125
    np.testing.assert_allclose([e(t) for t in (0, 3, 4, 7, 9)], [0.5, 0.5, 0.125, 0.125, 0.03125], rtol=1e-12, atol=0)
    ec = ExponentialDecay(0.5, 0.25, decay_steps=4)
    # 0.5·0.25^(t/4): t = 2 → 0.5·0.5 = 0.25; t = 6 → 0.5·0.125 = 0.0625
    np.testing.assert_allclose([ec(2), ec(6)], [0.25, 0.0625], rtol=1e-12, atol=0)
    # Keras' documented ExponentialDecay example: initial 0.1, decay_steps=100000, decay_rate=0.96, staircase=True
    k = ExponentialDecay(0.1, 0.96, decay_steps=100000, staircase=True, unit="step")
    np.testing.assert_allclose([k(0), k(99999), k(100000), k(250000)], [0.1, 0.1, 0.096, 0.09216], rtol=1e-12, atol=0)
    # the defaults (decay_steps=1, no staircase) are the lecture's formulas, unchanged
    assert InverseTimeDecay(0.2, 1.0, decay_steps=1, staircase=True)(3) == InverseTimeDecay(0.2, 1.0)(3) == 0.05


@pytest.mark.parametrize("bad, err", [
    (lambda: InverseTimeDecay(0.1, 1.0, decay_steps=0), ValueError), (lambda: ExponentialDecay(0.1, 0.9, decay_steps=-2), ValueError),
    (lambda: ExponentialDecay(0.1, 0.9, decay_steps=1.5), TypeError), (lambda: InverseTimeDecay(0.1, 1.0, staircase=1), TypeError),
    (lambda: InverseTimeDecay(0.1, 1.0, "epoch", 2), TypeError)])  # decay_steps is keyword-only
def test_staircase_arguments_checked(bad, err):
    with pytest.raises(err):
        bad()
