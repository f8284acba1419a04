"""`import descend` loads none of the heavy optional pieces (its time is measured in benchmarks/bench_import.py)."""
import json
import subprocess
import sys


def test_import_descend_loads_no_heavy_dependency():
    code = ("import sys, descend; print(__import__('json').dumps(sorted(m for m in "
            "('torch', 'matplotlib', 'sklearn', 'numba', 'scipy', 'tqdm', 'safetensors', 'mnist1d', 'mpi4py') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_top_level_api():
    import descend
    for name in descend.__all__:
        assert getattr(descend, name) is not None
    assert descend.fit is descend.train.fit


def test_distributed_module_imports_mpi4py_only_when_used():
    code = ("import sys, descend.train.distributed as d, descend.jobs; "
            "print('mpi4py' in sys.modules, d.launched_by_mpiexec())")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PMI", "OMPI", "MPI_LOCAL"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "False"]
