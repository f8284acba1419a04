"""Not collected by the suite: a module skipped at import, as a missing package would be (see test_conftest.py)."""
import pytest

pytest.skip("module missing (planted)", allow_module_level=True)
