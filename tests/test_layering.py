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


def test_config_imports_neither_diagnose_nor_jobs():
    # diagnose (doctor) and jobs build from the config; an import back would be a cycle (cli: see above)
    found = imports_of(PACKAGE / "config.py")
    bad = sorted(i for i in found if i.split(".")[:2] in (["descend", "diagnose"], ["descend", "jobs"]))
    assert bad == [], f"descend.config imports {bad}"


def test_train_does_not_import_config_or_jobs():
    # config imports train (the stopping rules), so train may not import config back
    bad = sorted((m, i) for m, found in modules().items() if m.startswith("descend.train")
                 for i in found if i.split(".")[:2] in (["descend", "config"], ["descend", "jobs"]))
    assert bad == [], f"descend.train imports {bad}"


# ------------------------------------------------------------------ the house's shape (issue "the house, round two")

def package_of(module: str) -> str:
    """The part of the house a module belongs to: ``descend.nn.functional.dense`` → ``nn``, ``descend.cli`` → ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _root_names() -> dict:
    """The names ``descend/__init__.py`` loads lazily (its ``_NAMES`` table), read from its source."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "_NAMES")
    return ast.literal_eval(table)


ROOT_NAMES = _root_names()


def test_no_import_cycle_between_the_parts_of_the_house():
    mods = modules()
    graph: dict[str, set[str]] = {}
    for m, found in mods.items():
        if m == "descend":
            continue  # the root re-exports everything
        for i in found:
            if i.count(".") == 1 and i not in mods and i.split(".")[1] in ROOT_NAMES:
                i = f"descend.{ROOT_NAMES[i.split('.')[1]]}"  # from descend import fit: loads descend.train
            if i in mods or i.rpartition(".")[0] in mods:
                target = package_of(i if i in mods else i.rpartition(".")[0])
                if target and target != package_of(m):
                    graph.setdefault(package_of(m), set()).add(target)

    def reaches(a, b, seen=()):
        return any(n == b or (n not in seen and reaches(n, b, seen + (n,))) for n in graph.get(a, ()))

    cycles = sorted((a, b) for a in graph for b in graph[a] if reaches(b, a))
    assert cycles == [], f"parts of descend importing each other (a cycle): {cycles}; graph {graph}"


def test_no_import_cycle_between_modules():
    """Module by module (imports inside functions included), ignoring the edges into a package's __init__
    (re-exports): e.g. autodiff's ops and tensor must not import each other, even lazily."""
    mods = modules()
    packages = {m for m in mods if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()}
    graph = {m: {i for i in found if i in mods and i not in packages and i != m} for m, found in mods.items()}

    def cycle_from(start):
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for n in graph.get(node, ()):
                if n == start:
                    return path
                if n not in seen:
                    seen.add(n)
                    stack.append((n, path + (n,)))
        return None

    cycles = {frozenset(c) for m in graph if (c := cycle_from(m))}
    assert not cycles, f"import cycles: {[sorted(c) for c in cycles]}"


def test_no_private_name_imported_from_another_part_of_the_house():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        m = module_name(path)
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if not source.startswith("descend") or package_of(source) == package_of(m):
                    continue
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                private += [p for p in source.split(".") if p.startswith("_") and not p.startswith("__")]
                if private:
                    offenders.append(f"{m}: from {source} import {private}")
    assert offenders == [], offenders


def test_nothing_outside_optim_touches_an_optimizers_private_state():
    import re
    pattern = re.compile(r"optimizer\w*\.(_\w+|state\[|t =)|_ensure_state|_buffer_init")
    offenders = [f"{p.relative_to(PACKAGE)}: {m.group(0)}" for p in PACKAGE.rglob("*.py") if "optim" not in p.parts
                 for m in pattern.finditer(p.read_text())]
    assert offenders == [], offenders


def test_no_file_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}, f"files over 400 lines (split them by concept): {long}"


def test_fit_is_a_short_loop():
    tree = ast.parse((PACKAGE / "train" / "loop.py").read_text())
    fit = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "fit")
    body = fit.body[1:] if isinstance(fit.body[0], ast.Expr) else fit.body  # without the docstring
    lines = body[-1].end_lineno - body[0].lineno + 1
    assert lines <= 120, f"fit's body is {lines} lines; the loop's pieces belong in named modules"


# Module.train()/eval() and summary set the mode of every submodule, past Module.__setattr__: the one exception
MODE_SWITCHES = {("nn/layers.py", "training"), ("nn/summary.py", "training")}


def test_no_attribute_hidden_on_user_objects():
    """``object.__setattr__`` only on ``self`` (a frozen dataclass's __post_init__, Module's own machinery):
    never to hide something on a user's model."""
    offenders = []
    for p in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__setattr__"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "object"
                    and not (node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "self")):
                where = str(p.relative_to(PACKAGE))
                attr = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
                if (where, attr) not in MODE_SWITCHES:
                    offenders.append(f"{where}:{node.lineno}")
    assert offenders == [], offenders
