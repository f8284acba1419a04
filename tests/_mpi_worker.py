"""One data-parallel training job for the MPI tests: ``train(spec)`` in-process, or ``python _mpi_worker.py SPEC OUT``
under ``mpiexec`` (rank 0 writes θ, the optimizer state and the history to OUT.npz / OUT.json)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from descend import nn, optim
from descend.train import fit


def data(spec):
    rng = np.random.default_rng(7)
    n, d = spec.get("n", 50), 6
    centers = 2 * rng.standard_normal((3, d))
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.standard_normal((n, d))
    Xv = centers[y[:17]] + rng.standard_normal((17, d))
    return X, y, Xv, y[:17]


def model(spec):
    rng = np.random.default_rng(3)
    layers = [nn.Linear(6, 12, bias=not spec.get("bn"), rng=rng)]  # a bias before BN has a zero gradient
    if spec.get("bn"):
        layers.append(nn.BatchNorm1d(12))
    layers += [nn.ReLU(), nn.Linear(12, 3, rng=rng)]
    return nn.Sequential(*layers)


def optimizer(spec):
    if spec.get("optimizer", "adam") == "adam":
        return optim.Adam(lr=0.01)
    if spec["optimizer"] == "lbfgs":
        return optim.LBFGS(max_iter=5)
    return optim.SGD(lr=0.05, momentum=0.9)


def train(spec, distributed=None, callbacks=()):
    """(θ, optimizer state, history) of the spec's run; ``distributed`` None = one process."""
    X, y, Xv, yv = data(spec)
    m = model(spec)
    opt = optimizer(spec)
    hist = fit(m, X, y, optimizer=opt, steps=spec.get("steps", 50), batch_size=spec.get("batch", 11),
               dtype=np.dtype(spec.get("dtype", "float64")), l2=spec.get("l2", 0.0), validation=(Xv, yv),
               seed=spec.get("seed", 0), checkpoint=spec.get("checkpoint"),
               checkpoint_every=spec.get("checkpoint_every"), resume=spec.get("resume"), distributed=distributed,
               divergence=None, callbacks=callbacks)
    params = nn.pack(m)
    buffers = {k: np.array(v) for k, v in params.buffers().items()}
    state = {k: v for k, v in opt.state_dict().items() if isinstance(v, np.ndarray)}
    record = {"step_loss": hist.step_loss, "epochs": hist.epochs, "steps": hist.steps,
              # fit lends BatchNorm the all-reduce for the run only: nothing collective stays on the model
              "still_synced": any(getattr(mod, "sync", None) is not None for _, mod in m.named_modules())}
    return params.theta.copy(), state, buffers, record


class _Perturb:
    """A callback changing θ on one rank only: the checksum must catch the drift."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            state.params.theta[0] += 1e-3


def _counting(Distributed):
    class Counting(Distributed):
        """Counts this rank's all-reduces: every rank must make the same number."""

        reductions = 0

        def sum(self, buf):
            self.reductions += 1
            return super().sum(buf)

        def sum_vector(self, summer):
            self.reductions += 1
            return super().sum_vector(summer)
    return Counting


def main(spec_json: str, out: str) -> None:
    """Run each spec of the JSON list in turn; rank 0 writes OUT-i.npz / OUT-i.json for spec i."""
    from descend.train.distributed import Distributed

    for i, spec in enumerate(json.loads(spec_json)):
        dist = _counting(Distributed).from_launch(sync_batchnorm=spec.get("sync", True),
                                                  check_every=spec.get("check_every", 100),
                                                  shared_memory=spec.get("shared_memory", True))
        spec.update(spec.get("on_rank", {}).get(str(dist.rank), {}))  # a rank started differently
        if spec.get("pidfile") and dist.writer:
            Path(spec["pidfile"]).write_text(json.dumps(dist.processes))
        if spec.get("fail_rank") == dist.rank:  # a fault on one rank: the job must abort, not hang
            raise RuntimeError(f"injected failure on rank {dist.rank}")
        callbacks = [_Perturb(spec["perturb_at"])] if "perturb_at" in spec else []
        theta, state, buffers, record = train(spec, dist, callbacks=callbacks)
        record["reductions"] = dist.comm.allgather(dist.reductions)
        record["released"] = dist.released  # the gradient's shared memory given back at fit's end
        node = dist.comm.Split_type(dist.MPI.COMM_TYPE_SHARED)  # which ranks MPI sees on one node
        record["node_sizes"] = dist.comm.allgather(node.Get_size())
        node.Free()
        if dist.writer:
            np.savez(f"{out}-{i}.npz", theta=theta, **{f"opt_{k}": v for k, v in state.items()},
                     **{f"buf_{k}": v for k, v in buffers.items()})
            Path(f"{out}-{i}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
