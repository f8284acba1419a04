"""Forks checkpoint writers for the crash-safety test, so that each one starts at once (imports done).

Protocol on stdin/stdout, one line each:
  ``fork``  → start a child that saves checkpoints A, B, A, … (B, A, … every other time) to PATH
              until it is killed; prints its pid
  ``reap``  → waits for that child (which the test has SIGKILLed); prints its wait status
  ``quit``  → exits
A and B come from ``contents(which, size)`` (which the test uses to recognise them): a θ of ``size``
float32 values plus a second array and metadata, all different between A and B.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from descend.train.checkpoint import save_checkpoint


def contents(which: str, size: int):
    rng = np.random.default_rng(0 if which == "A" else 1)
    arrays = {"theta": rng.standard_normal(size).astype(np.float32), "optimizer.m": rng.standard_normal(size // 4)}
    meta = {"which": which, "history": {"step_loss": rng.standard_normal(50).tolist()}}
    return arrays, meta


def main(path: str, size: int) -> None:
    versions = [contents("A", size), contents("B", size)]
    child, forks = None, 0
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "fork":
            forks += 1
            child = os.fork()
            if child == 0:  # the writer: save until killed, starting with A or B in turn
                try:
                    i = forks % 2
                    while True:
                        save_checkpoint(path, *versions[i % 2])
                        i += 1
                finally:
                    os._exit(1)
            print(child, flush=True)
        elif cmd == "reap":
            _, status = os.waitpid(child, 0)
            print(status, flush=True)
        else:
            return


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
