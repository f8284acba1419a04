"""Time of `import descend` in a fresh interpreter next to `import numpy` (bar: at most 2×), and of the first
use of the training loop (`from descend import fit`), best of 7 each.

Run: .venv/bin/python benchmarks/bench_import.py
"""
import subprocess
import sys


def import_time(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
               for _ in range(7))


if __name__ == "__main__":
    numpy_s = import_time("import numpy")
    descend_s = import_time("import descend, numpy")
    fit_s = import_time("from descend import fit")
    print(f"import numpy             {numpy_s * 1e3:6.1f} ms")
    print(f"import descend (+numpy)  {descend_s * 1e3:6.1f} ms  = {descend_s / numpy_s:.2f}× numpy (bar ≤ 2×)")
    print(f"from descend import fit  {fit_s * 1e3:6.1f} ms  = {fit_s / numpy_s:.2f}× numpy (the parts load on use)")
