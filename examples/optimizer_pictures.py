"""Regenerate the pictures of docs/optimizers.md: `python examples/optimizer_pictures.py [OUT_DIR]`.

Each picture is a `descend compare` race (the optimizers' real `step`, the 3× rule) drawn by
descend.compare.figures; the table of each race is printed so the numbers quoted in the doc can be checked.
"""
import sys
from pathlib import Path

from descend.compare import compare_on_function
from descend.compare.figures import plot_gap, plot_network, plot_trajectories
from descend.compare.names import FUNCTION_LR, OPTIMIZERS, make_optimizer
from descend.compare.network import compare_on_network
from descend.config import resolve
from descend.optim import SGD, Adagrad, Adam, Newton, RMSprop
from descend.optim.testfunctions import BOOTH, HIMMELBLAU, ROSENBROCK, SADDLE, quadratic

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "img" / "optimizers"

RACES = {
    # the long narrow valley: same lr, SGD crawls along the valley floor, momentum and Nesterov overshoot and settle
    "valley": (quadratic(condition=50.0), {"sgd": SGD(lr=0.025), "momentum": SGD(lr=0.025, momentum=0.9),
                                           "nesterov": SGD(lr=0.025, momentum=0.9, nesterov=True)}, 150, None),
    # per-coordinate step sizes: AdaGrad's shrink, RMSProp and Adam walk straight down
    "adaptive": (quadratic(condition=50.0), {"sgd": SGD(lr=0.025), "adagrad": Adagrad(lr=1.0),
                                             "rmsprop": RMSprop(lr=0.1), "adam": Adam(lr=0.5)}, 150, None),
    # the saddle x² − y²: plain SGD started on the ridge barely moves off it; momentum and Adam escape;
    # Newton jumps to the stationary point, the saddle itself
    "saddle": (SADDLE, {"sgd": SGD(lr=0.01), "momentum": SGD(lr=0.01, momentum=0.9), "adam": Adam(lr=0.05),
                        "newton": Newton()}, 200, None),
    # second-order methods: Newton solves a quadratic in one step, BFGS and L-BFGS in a few
    "booth": (BOOTH, {n: make_optimizer(n, FUNCTION_LR[n]) for n in ("sgd", "adam", "bfgs", "lbfgs", "newton")}, 100,
              None),
    # the banana valley: every optimizer of `descend compare` with its default lr
    "rosenbrock": (ROSENBROCK, {n: make_optimizer(n, FUNCTION_LR[n]) for n in OPTIMIZERS}, 300, None),
    # four minima: where each method ends depends on its path
    "himmelblau": (HIMMELBLAU, {n: make_optimizer(n, FUNCTION_LR[n]) for n in ("momentum", "adam", "bfgs", "newton")},
                   200, (0.5, -0.5)),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (function, optimizers, steps, start) in RACES.items():
        race = compare_on_function(function, optimizers, steps=steps, start=start)
        plot_trajectories(race, OUT / f"{name}.png")
        plot_gap(race, OUT / f"{name}_gap.png")
        print(f"## {name}: {function.name}, {steps} steps\n{race.table()}\n")
    # on a network: the config's MLP on digits, each optimizer from one θ on one batch order, 8 epochs
    cfg = resolve({"train": {"epochs": 8}})
    race = compare_on_network(cfg, ["adam", "sgd", "momentum", "rmsprop"])
    plot_network(race, OUT / "network.png")
    print(f"## network: {cfg['data']['dataset']}, 8 epochs\n{race.table()}\n")
    print(f"pictures in {OUT}")


if __name__ == "__main__":
    main()
