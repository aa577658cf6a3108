"""The shape of the code: imports at the top of files, the lazy module's targets below their
users, and one predictor contract for every saved model kind. (`lint-imports`, run by
`make test`, checks that the top-of-file imports go down the layers of pyproject.toml.)"""

from __future__ import annotations

import ast
import inspect
import tomllib
from pathlib import Path

import pytest

from newstopic import lazy
from newstopic.predictor import CLASSIFY, SUMMARIZE
from newstopic.catalog import MODELS

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "newstopic"


def module_name(file: Path) -> str:
    parts = file.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports_in_functions(file: Path) -> list[str]:
    found = []
    for function in ast.walk(ast.parse(file.read_text())):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{file.name}:{node.lineno} {name}" for name in names
                      if name.split(".")[0] == "newstopic" or getattr(node, "level", 0)]
    return found


def test_no_project_import_hides_inside_a_function():
    found = [hit for file in sorted(SOURCE.rglob("*.py"))
             for hit in project_imports_in_functions(file)]
    assert found == []


def layer_of() -> dict[str, int]:
    """Each module's layer in the import-linter contract, 0 the top."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["containers"] == ["newstopic"])
    return {f"newstopic.{name.strip()}": depth
            for depth, layer in enumerate(contract["layers"])
            for name in layer.replace(":", "|").split("|")}


def lazy_uses(file: Path) -> set[str]:
    """The modules `file` reaches through `newstopic.lazy`."""
    tree = ast.parse(file.read_text())
    aliases = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module == "newstopic.lazy"
               for alias in node.names}
    if any(isinstance(node, ast.ImportFrom) and node.module == "newstopic"
           and any(a.name == "lazy" for a in node.names) for node in ast.walk(tree)):
        aliases.update({f"lazy.{name}": name for name in vars(lazy)
                        if isinstance(getattr(lazy, name), lazy.LazyModule)})
    used = {ast.unparse(node) for node in ast.walk(tree)
            if isinstance(node, (ast.Name, ast.Attribute))}
    targets = {getattr(lazy, name).name for alias, name in aliases.items()
               if alias in used and isinstance(getattr(lazy, name, None), lazy.LazyModule)}
    return {t for t in targets if t.startswith("newstopic.")}


def test_modules_reached_lazily_sit_below_the_modules_that_reach_them():
    layers = layer_of()
    upward = []
    for file in sorted(SOURCE.rglob("*.py")):
        user = module_name(file)
        if user == "newstopic":  # the package's own TextClassifier, on first use
            continue
        depth = layers[".".join(user.split(".")[:2])]
        for target in lazy_uses(file):
            if layers[target] <= depth and (user, target) != ("newstopic.registry",
                                                               "newstopic.catalog"):
                upward.append(f"{user} -> {target}")
    assert upward == []


@pytest.mark.parametrize("predictor", sorted({spec.predictor for spec in MODELS.values()
                                               if spec.predictor is not None},
                                              key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_every_saved_model_kind_implements_the_predictor_contract(predictor):
    def static(name):
        return inspect.getattr_static(predictor, name)

    assert isinstance(static("load"), classmethod)
    assert callable(static("save")) and callable(static("predict_proba"))
    assert isinstance(static("n_parameters"), property)
    assert isinstance(static("capabilities"), (frozenset, property))
    files = static("prediction_files")
    assert files is None or all(isinstance(name, str) for name in files)
    assert inspect.signature(predictor.load).parameters.keys() == {"directory", "manifest"}


def test_capabilities_name_the_task():
    made = {name: MODELS[name].make(0, {}) for name in ("tfidf-svm", "seq2seq-attention")}
    assert CLASSIFY in made["tfidf-svm"].capabilities
    assert made["seq2seq-attention"].capabilities == {SUMMARIZE}
    assert list(made["seq2seq-attention"].classes_) == []


@pytest.fixture(scope="module")
def model():
    """A module fixture named in SHARED_FIXTURES (tests/conftest.py), costing nothing."""
    return object()


def test_tests_of_a_shared_fixture_are_grouped_on_one_worker(request, model):
    # pytest-xdist marks the group in the node id; some pytest releases stop it (9.2)
    if not request.config.getoption("loadgroup", False):
        pytest.skip("make test runs the suite with --dist loadgroup")
    assert request.node.nodeid.endswith("@test_architecture.model")
