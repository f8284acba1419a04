"""`import descend` loads none of the heavy optional pieces (its time is measured in benchmarks/bench_import.py),
and the top-level API is exactly what ``__all__`` says, each name the object of the part it comes from."""
import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

HEAVY = ('torch', 'matplotlib', 'sklearn', 'numba', 'scipy', 'tqdm', 'safetensors', 'mnist1d', 'mpi4py', 'dask')


def test_import_descend_loads_no_heavy_dependency():
    # the same child process then loads a plot and a kernel: the probe sees a module once it is loaded,
    # so the empty answer above it is not an accident of how modules are looked up
    code = ("import sys, json, descend; before = sorted(m for m in %r if m in sys.modules); "
            "import descend.plots as p; p.pyplot(); from descend.optim import _kernels; "
            "print(json.dumps([before, sorted(m for m in %r if m in sys.modules)]))" % (HEAVY, HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out)
    assert before == []
    assert "matplotlib" in after and "numba" in after


def test_top_level_api():
    import descend
    from descend import nn, train
    assert len(set(descend.__all__)) == len(descend.__all__)
    # every public object is listed (submodules loaded on the way, e.g. descend.config, are not API)
    public = {k for k, v in vars(descend).items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public <= set(descend.__all__), public - set(descend.__all__)
    parts = {"autodiff", "nn", "optim", "data", "train", "diagnose"}
    for name in parts:
        assert isinstance(getattr(descend, name), types.ModuleType) and getattr(descend, name).__name__ == f"descend.{name}"
    for name in ("fit", "evaluate", "predict", "load_model"):
        assert getattr(descend, name) is getattr(train, name), name
    for name in ("pack", "Params", "summary"):
        assert getattr(descend, name) is getattr(nn, name), name
    version = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["version"]
    assert descend.__version__ == version


def test_distributed_module_imports_mpi4py_only_when_used():
    code = ("import sys, descend.train.distributed as d, descend.jobs; "
            "print('mpi4py' in sys.modules, d.launched_by_mpiexec())")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PMI", "OMPI", "MPI_LOCAL"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "False"]
