"""Time of `import descend` in a fresh interpreter (bar: under 0.3 s), best of 7, next to `import numpy`.

Run: .venv/bin/python benchmarks/bench_import.py
"""
import subprocess
import sys


def import_time(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
               for _ in range(7))


if __name__ == "__main__":
    numpy_s, descend_s = import_time("numpy"), import_time("descend")
    print(f"import numpy   {numpy_s * 1e3:6.1f} ms")
    print(f"import descend {descend_s * 1e3:6.1f} ms (includes numpy; bar 300 ms)")
