"""The README's Python example runs as printed and learns."""
import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    result = namespace["evaluate"](namespace["model"], (namespace["ds"].X_test - namespace["mu"]) / namespace["sd"],
                                   namespace["ds"].y_test)
    assert result["accuracy"] > 0.93
    assert "early stopping" in capsys.readouterr().out or namespace["history"].stop_reason
