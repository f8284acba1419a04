"""The house's import layering, read from the source (AST), not from what happens to be imported at runtime.

Each check is its own test function; ``imports_of`` gives every module a file imports (top-level or
inside a function, absolute or relative), so new checks are one assertion each.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "descend"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module the file at ``path`` imports; ``from X import y`` counts both X and X.y (y may be a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_of_resolves_relative_imports():
    found = imports_of(PACKAGE / "diagnose" / "doctor.py")
    assert "descend.config" in found and "descend.diagnose.checks" in found and "numpy" in found


def test_cli_is_imported_by_nobody():
    offenders = sorted(m for m, found in modules().items()
                       if m != "descend.cli" and any(i == "descend.cli" or i.startswith("descend.cli.") for i in found))
    assert offenders == [], f"modules importing descend.cli (the command is the top of the house): {offenders}"


def test_doctor_does_not_import_cli():
    found = imports_of(PACKAGE / "diagnose" / "doctor.py")
    assert "descend.cli" not in found, "descend.diagnose.doctor must use descend.config, not descend.cli"


def test_config_imports_neither_diagnose_nor_jobs_nor_cli():
    # diagnose (doctor) and jobs build from the config; an import back would be a cycle
    found = imports_of(PACKAGE / "config.py")
    bad = sorted(i for i in found if i.split(".")[:2] in (["descend", "diagnose"], ["descend", "jobs"],
                                                          ["descend", "cli"]))
    assert bad == [], f"descend.config imports {bad}"


def test_train_does_not_import_config_or_jobs():
    # config imports train (the stopping rules), so train may not import config back
    bad = sorted((m, i) for m, found in modules().items() if m.startswith("descend.train")
                 for i in found if i.split(".")[:2] in (["descend", "config"], ["descend", "jobs"]))
    assert bad == [], f"descend.train imports {bad}"
