"""The README's Python example runs as printed, learns, and prints what the history says."""
import ast
import re
from pathlib import Path

import numpy as np


def test_readme_example_runs(capsys):
    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    history = namespace["history"]
    X_test = (namespace["ds"].X_test - namespace["mu"]) / namespace["sd"]
    result = namespace["evaluate"](namespace["model"], X_test, namespace["ds"].y_test)
    assert result["accuracy"] > 0.93
    # the example prints the stop reason, then the test metrics: both exactly what the objects hold
    reason, metrics = capsys.readouterr().out.strip().splitlines()[-2:]
    assert reason == history.stop_reason
    assert ast.literal_eval(metrics) == result
    # the reason agrees with the history: early stopping before the limit, or the limit of 50 epochs,
    # and the θ kept is the epoch of the lowest validation loss
    val = [e["val_loss"] for e in history.epochs]
    best = int(np.argmin(val)) + 1
    assert history.best["epoch"] == best
    if len(history.epochs) < 50:
        assert reason.startswith("early stopping: val_loss did not improve"), reason
    else:
        assert reason == f"reached the maximum of 50 epochs; restored θ of the best epoch ({best})"
