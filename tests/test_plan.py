"""The execution plan (descend.nn.plan) gives the graph path's bits: loss, output, gradient and whole fits."""
import numpy as np
import pytest

import descend.nn.plan as plan_module
from descend import fit, nn, pack
from descend.autodiff.tensor import Tensor
from descend.nn import functional as F
from descend.nn.plan import Plan
from descend.optim import SGD, Adam
from descend.train import Objective


def _net(kind: str, rng, dtype=np.float32):
    r = lambda: rng  # noqa: E731  (one generator draws every layer, in order)
    nets = {
        "relu": lambda: nn.Sequential(nn.Linear(12, 32, rng=r()), nn.ReLU(), nn.Linear(32, 16, rng=r()), nn.ReLU(),
                                      nn.Linear(16, 5, rng=r())),
        "tanh": lambda: nn.Sequential(nn.Linear(12, 20, rng=r()), nn.Tanh(), nn.Linear(20, 5, rng=r()), nn.Sigmoid(),
                                      nn.Linear(5, 5, rng=r())),
        "leaky_elu": lambda: nn.Sequential(nn.Linear(12, 20, rng=r()), nn.LeakyReLU(0.1), nn.Linear(20, 20, rng=r()),
                                           nn.ELU(0.7), nn.Linear(20, 5, rng=r())),
        "dropout": lambda: nn.Sequential(nn.Dropout(0.2, rng=np.random.default_rng(5)), nn.Linear(12, 32, rng=r()),
                                         nn.ReLU(), nn.Dropout(0.5, rng=np.random.default_rng(6)),
                                         nn.Linear(32, 5, rng=r())),
        "nested_nobias": lambda: nn.Sequential(nn.Sequential(nn.Linear(12, 16, bias=False, rng=r()), nn.ReLU()),
                                               nn.ReLU(), nn.Linear(16, 5, rng=r())),
        "relu_first": lambda: nn.Sequential(nn.ReLU(), nn.Linear(12, 600, rng=r()), nn.ReLU(),
                                            nn.Linear(600, 5, rng=r())),  # wide: the transposed layouts
    }
    model = nets[kind]()
    pack(model, dtype=dtype)
    return model


def _pair(kind, dtype=np.float32, loss=F.cross_entropy):
    a, b = _net(kind, np.random.default_rng(1), dtype), _net(kind, np.random.default_rng(1), dtype)
    return (a, Objective(a, pack(a), loss)), (b, Objective(b, pack(b), loss, plan=False))


def _count_nodes(monkeypatch) -> list:
    """A list that grows by one for every autograd node built from now on."""
    calls, real = [], Tensor.apply
    monkeypatch.setattr(Tensor, "apply", staticmethod(lambda *args, **kw: calls.append(1) or real(*args, **kw)))
    return calls


@pytest.mark.parametrize("kind", ["relu", "tanh", "leaky_elu", "dropout", "nested_nobias", "relu_first"])
@pytest.mark.parametrize("dtype, loss", [(np.float32, F.cross_entropy), (np.float64, F.cross_entropy),
                                         (np.float64, F.mse)])
def test_plan_gives_the_graphs_bits(kind, dtype, loss, monkeypatch):
    (ma, a), (mb, b) = _pair(kind, dtype, loss)
    assert a.plan is not None and b.plan is None
    nodes = _count_nodes(monkeypatch)
    rng = np.random.default_rng(2)
    for bs in (64, 7, 64):
        x = rng.standard_normal((bs, 12)).astype(dtype)
        y = rng.integers(0, 5, bs) if loss is F.cross_entropy else rng.standard_normal((bs, 5))
        a.batch(x, y)
        b.batch(x, y)
        ja, ga = a()
        assert nodes == []  # the plan evaluated this (no node), so the comparison below is plan against graph
        jb, gb = b()
        assert nodes  # and the reference did build its graph
        nodes.clear()
        assert ja == jb
        np.testing.assert_array_equal(ga, gb)
        np.testing.assert_array_equal(a.output, b.output)
        a.params.theta -= 0.01 * ga  # move on, so the next batch sees new weights
        b.params.theta -= 0.01 * gb


def test_a_wrong_feature_count_gets_the_layers_error_on_the_plan(monkeypatch):
    for kind in ("relu", "tanh"):  # the bound chain, the layer-by-layer plan
        (_, a), _ = _pair(kind)
        a.batch(np.ones((4, 13), np.float32), np.arange(4))
        with pytest.raises(ValueError, match="input has 13 features .* expects in_features=12"):
            a()


@pytest.mark.parametrize("kind", ["relu", "tanh", "dropout"])  # the bound chain; the layer-by-layer plan
def test_frozen_layers_scaled_loss_and_mse_match(kind, monkeypatch):
    rng = np.random.default_rng(3)
    for loss, y in ((F.cross_entropy, rng.integers(0, 5, 30)), (F.mse, rng.standard_normal((30, 5)))):
        (ma, a), (mb, b) = _pair(kind, np.float64, loss)
        first = next(i for i, layer in enumerate(ma) if isinstance(layer, nn.Linear))
        for m in (ma, mb):
            m[first].freeze()  # the first affine layer: its input gradient is not needed either
        x = rng.standard_normal((30, 12))
        a.batch(x, y)
        b.batch(x, y)
        nodes = _count_nodes(monkeypatch)
        ja = a.data_loss(scale=30.0)
        assert nodes == []  # the plan evaluated it
        assert ja == b.data_loss(scale=30.0)
        np.testing.assert_array_equal(a.params.grad, b.params.grad)
        assert not a.params.grad[a.params.entry(f"{first}.weight").slice].any()
        monkeypatch.undo()


def test_flatten_input(monkeypatch):
    rng = np.random.default_rng(4)
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 8, rng=np.random.default_rng(0)), nn.ReLU(),  # noqa: E731
                                 nn.Linear(8, 3, rng=np.random.default_rng(1)))
    ma, mb = make(), make()
    a, b = Objective(ma, pack(ma)), Objective(mb, pack(mb), plan=False)
    assert a.plan.chain is not None  # a leading Flatten is the chain's reshape of the input
    nodes = _count_nodes(monkeypatch)
    for x in (rng.standard_normal((9, 3, 4)), rng.standard_normal((9, 1, 3, 4)),
              rng.standard_normal((9, 4, 3)).transpose(0, 2, 1)):  # the last not C-contiguous: reshape copies
        x, y = x.astype(np.float32), rng.integers(0, 3, 9)
        a.batch(x, y)
        b.batch(x, y)
        ja = a()[0]
        assert nodes == []  # the plan's Flatten, not the graph's
        assert ja == b()[0]
        nodes.clear()
        np.testing.assert_array_equal(a.params.grad, b.params.grad)
        np.testing.assert_array_equal(a.output, b.output)
    assert len(a.plan.chain.bound) == 1  # every input reshaped to one C-contiguous (9, 12) batch: bound once


class _Custom(nn.Sequential):
    def forward(self, x):
        return super().forward(x) * 2.0


@pytest.mark.parametrize("model, loss", [
    (nn.Sequential(nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)), nn.Flatten()), F.cross_entropy),
    (nn.Sequential(nn.Linear(4, 4, rng=np.random.default_rng(0)), nn.BatchNorm1d(4)), F.cross_entropy),
    (_Custom(nn.Linear(4, 4, rng=np.random.default_rng(0))), F.cross_entropy),
    (nn.Sequential(nn.Linear(4, 4, rng=np.random.default_rng(0))), F.bce_with_logits),
    (nn.Sequential(nn.ReLU()), F.cross_entropy),
])
def test_models_the_plan_does_not_cover_use_the_graph(model, loss):
    assert Plan.build(model, loss) is None


def test_a_shared_weight_uses_the_graph():
    lin = nn.Linear(4, 4, rng=np.random.default_rng(0))
    assert Plan.build(nn.Sequential(lin, nn.ReLU(), lin), F.cross_entropy) is None


@pytest.mark.parametrize("opt", [lambda: Adam(), lambda: SGD(lr=0.05, momentum=0.9, nesterov=True)])
def test_fit_with_the_plan_equals_fit_on_the_graph(monkeypatch, opt):
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((300, 12)).astype(np.float32), rng.integers(0, 5, 300)
    val = (X[:50], y[:50])

    def run():
        model = _net("dropout", np.random.default_rng(1))
        h = fit(model, X, y, optimizer=opt(), epochs=3, batch_size=32, l2=0.1, validation=val, seed=3)
        return pack(model).theta.copy(), h

    theta_a, ha = run()
    monkeypatch.setattr(plan_module.Plan, "build", classmethod(lambda cls, model, loss: None))
    theta_b, hb = run()
    np.testing.assert_array_equal(theta_a, theta_b)
    assert ha.step_loss == hb.step_loss and ha.epochs == hb.epochs and ha.metric("val_loss")


def test_fit_through_the_bound_chain_equals_fit_on_the_graph(monkeypatch):
    """A whole run on the chain's fast path — batches gathered into recycled arrays, the output copied out of the
    chain's buffers — ends with the graph's θ and losses."""
    import descend.nn.affine_chain as chain_module

    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((400, 784)).astype(np.float32), rng.integers(0, 10, 400)  # 200 KB batches: recycled
    runs, real = [], chain_module._Bound.run
    monkeypatch.setattr(chain_module._Bound, "run", lambda self, *args: runs.append(1) or real(self, *args))

    def run():
        model = _chain((784, 64, 10), (1, 0))
        h = fit(model, X, y, optimizer=Adam(), epochs=2, batch_size=64, l2=0.1, validation=(X[:50], y[:50]), seed=3)
        return pack(model).theta.copy(), h

    theta_a, ha = run()
    assert len(runs) == ha.steps == 14  # every step on the bound chain (6 full batches and a last one of 16)
    monkeypatch.setattr(plan_module.Plan, "build", classmethod(lambda cls, model, loss: None))
    theta_b, hb = run()
    assert len(runs) == 14
    np.testing.assert_array_equal(theta_a, theta_b)
    assert ha.step_loss == hb.step_loss and ha.epochs == hb.epochs


def _chain(sizes, relu, bias=True, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias, rng=rng))
        if relu[i]:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    pack(model, dtype=dtype)
    return model


CHAINS = [  # (sizes, ReLU after layer i): wide and tall products, column-major weights, no ReLU between
    ((12, 32, 16, 5), (1, 1, 0)),
    ((784, 300, 40, 10), (1, 1, 0)),        # 784 > 300: a column-major weight; 300·b wide for b < 300
    ((20, 700, 700, 3), (1, 1, 0)),
    ((30, 200, 10), (0, 0)),                # affine maps without ReLU
    ((50, 600), (1,)),                      # the ReLU's output is the logits
]


@pytest.mark.parametrize("sizes, relu", CHAINS)
@pytest.mark.parametrize("batch", [1, 7, 64, 333])
def test_the_chain_fast_path_gives_the_graphs_bits(sizes, relu, batch, monkeypatch):
    nodes = _count_nodes(monkeypatch)
    for dtype, loss in ((np.float32, F.cross_entropy), (np.float64, F.mse)):
        a, b = _chain(sizes, relu, dtype=dtype), _chain(sizes, relu, dtype=dtype)
        oa, ob = Objective(a, pack(a), loss), Objective(b, pack(b), loss, plan=False)
        assert oa.plan.chain is not None
        rng = np.random.default_rng(batch)
        for step in range(3):
            x = rng.standard_normal((batch, sizes[0])).astype(dtype)
            y = rng.integers(0, sizes[-1], batch) if loss is F.cross_entropy else rng.standard_normal((batch, sizes[-1]))
            oa.batch(x, y)
            ob.batch(x, y)
            scale = 1.0 if step < 2 else float(batch)
            ja = oa.data_loss(scale=scale)
            assert nodes == []  # the plan evaluated it, not the graph
            if loss is F.cross_entropy:  # the bound chain itself (a wide MSE output is the layer-by-layer plan's)
                assert all(type(v).__name__ == "_Bound" for v in oa.plan.chain.bound.values())
            assert ja == ob.data_loss(scale=scale)
            nodes.clear()
            np.testing.assert_array_equal(oa.params.grad, ob.params.grad)
            np.testing.assert_array_equal(oa.output, ob.output)
            oa.params.theta -= 0.01 * oa.params.grad
            ob.params.theta -= 0.01 * ob.params.grad


@pytest.mark.parametrize("frozen", [(0,), (1,), (0, 1), (2,)])
def test_the_chain_with_frozen_layers_and_no_bias(frozen):
    sizes, relu = (784, 300, 40, 10), (1, 1, 0)
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((50, 784)).astype(np.float32), rng.integers(0, 10, 50)
    for bias in (True, False):
        a, b = _chain(sizes, relu, bias), _chain(sizes, relu, bias)
        for m in (a, b):
            for i in frozen:
                m[2 * i].freeze()
        oa, ob = Objective(a, pack(a)), Objective(b, pack(b), plan=False)
        oa.batch(x, y)
        ob.batch(x, y)
        assert oa()[0] == ob()[0]
        np.testing.assert_array_equal(oa.params.grad, ob.params.grad)
        assert oa.plan.chain.bound and all(type(b).__name__ == "_Bound" for b in oa.plan.chain.bound.values())


def test_the_chain_refuses_bad_labels_like_the_graph(monkeypatch):
    model = _chain((12, 32, 5), (1, 0))
    o = Objective(model, pack(model))
    o.batch(np.ones((4, 12), np.float32), np.array([0, 1, 5, 2]))
    nodes = _count_nodes(monkeypatch)
    with pytest.raises(ValueError, match="labels out of range"):
        o()
    assert nodes == []  # the chain's own check, not the graph's


def test_the_chain_adds_to_a_gradient_that_was_not_zeroed_as_the_graph_does():
    """``Plan.run`` computes what forward → loss → backward does: into a gradient not zeroed since the last
    evaluation, backward adds."""
    a, b = _chain((12, 32, 5), (1, 0)), _chain((12, 32, 5), (1, 0))
    pa, pb = pack(a), pack(b)
    plan = Plan.build(a, F.cross_entropy)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 12)).astype(np.float32), rng.integers(0, 5, 16)
    pa.zero_grad(lazy=True)
    plan.run(x, y)
    pa.zero_unwritten()
    assert all(type(v).__name__ == "_Bound" for v in plan.chain.bound.values())
    plan.run(x, y)  # no zeroing in between
    pb.zero_grad()
    for _ in range(2):
        F.cross_entropy(b(x), y).backward()
    np.testing.assert_array_equal(pa.grad, pb.grad)  # 2·g, not g


def test_fit_runs_a_small_networks_steps_on_one_blas_thread():
    """Products of a small network are not worth splitting between BLAS threads (benchmarks/NOTES.md); a
    large network keeps BLAS as it is, and the setting is restored after fit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from descend.common.blas import SMALL_PRODUCT

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen = []

    class Watch:
        def on_step_end(self, state):
            seen.append(blas())

    rng = np.random.default_rng(0)
    small, large = _chain((30, 100, 2), (1, 0)), _chain((784, 200, 10), (1, 0))
    assert 50 * 30 * 100 < SMALL_PRODUCT <= 50 * 784 * 200
    with threadpool_limits(limits=2, user_api="blas"):  # two threads to start from, whatever the machine
        before = blas()
        assert before and all(n == 2 for n in before)
        fit(small, rng.standard_normal((50, 30)), rng.integers(0, 2, 50), optimizer=Adam(), steps=2, batch_size=50,
            callbacks=[Watch()])
        assert seen and all(n == 1 for s in seen for n in s) and blas() == before
        seen.clear()
        fit(large, rng.standard_normal((50, 784)), rng.integers(0, 10, 50), optimizer=Adam(), steps=2,
            batch_size=50, callbacks=[Watch()])
        assert seen and all(s == before for s in seen) and blas() == before


def test_the_chain_follows_a_gradient_moved_to_new_memory(monkeypatch):
    """Data-parallel training moves the flat gradient into MPI shared memory (Params.use_grad): a bound chain
    must write into the new views, not the old ones."""
    a, b = _chain((12, 32, 5), (1, 0)), _chain((12, 32, 5), (1, 0))
    oa, ob = Objective(a, pack(a)), Objective(b, pack(b), plan=False)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 12)).astype(np.float32), rng.integers(0, 5, 16)
    oa.batch(x, y)
    ob.batch(x, y)
    oa()
    oa.params.use_grad(np.zeros_like(oa.params.grad))
    x2 = rng.standard_normal((16, 12)).astype(np.float32)  # another batch: another gradient than the copied one
    oa.batch(x2, y)
    ob.batch(x2, y)
    nodes = _count_nodes(monkeypatch)
    ja = oa()[0]
    assert nodes == [] and all(type(v).__name__ == "_Bound" for v in oa.plan.chain.bound.values())
    assert ja == ob()[0]
    np.testing.assert_array_equal(oa.params.grad, ob.params.grad)


def test_a_callback_failing_at_the_start_leaves_blas_threads_as_they_were():
    from threadpoolctl import threadpool_info, threadpool_limits

    class Fails:
        def on_fit_start(self, state):
            raise RuntimeError("callback failed")

    rng = np.random.default_rng(0)
    with threadpool_limits(limits=2, user_api="blas"):
        before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        with pytest.raises(RuntimeError, match="callback failed"):
            fit(_chain((30, 100, 2), (1, 0)), rng.standard_normal((50, 30)), rng.integers(0, 2, 50),
                optimizer=Adam(), steps=2, callbacks=[Fails()])
        assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_overlapping_runs_share_one_blas_limit_and_the_last_restores_it():
    """Runs in threads (a Dask worker's) overlap: the first to end must not lift the other's limit, and the
    last restores what was there before either."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from descend.common.blas import threads_for

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas()
        with threads_for(1):  # run b, the longer
            with threads_for(1):  # run a, inside b's time
                pass
            assert all(n == 1 for n in blas())  # b still runs
        assert blas() == before
