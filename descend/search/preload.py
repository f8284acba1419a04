"""What the local pool's forkserver imports once, so every worker forked from it starts ready to train.

``multiprocessing``'s forkserver preload imports modules, so the work is this module's import: the
trial's code, the training loop, threadpoolctl, and Numba's compiler. Numba loads its compiler (its
typing and lowering registries, the runtime) on the first compile or cache load, which was most of a
worker's first trial (numbers: benchmarks/NOTES.md); one eager compile of a tiny function does it
here, once, instead of in every worker. Nothing runs a parallel kernel, so the server starts no
thread pool before it forks.
"""
import numba
import threadpoolctl  # noqa: F401  (the workers' initializer pins BLAS with it)

from .. import optim  # noqa: F401  (the trial's optimizer; descend.train does not import it)
from ..train import fit  # noqa: F401
from . import trial  # noqa: F401

numba.njit("int64(int64)")(lambda x: x + 1)
