"""The import rules between the layers, checked on the source with `ast` (no module is imported).

1. No pipeline imports another pipeline's nodes. A module of pipelines/<a> may import pipelines/<b> (b != a) only to
   compose pipelines: the package itself or its `pipeline` module (create_pipeline and the other pipeline builders),
   never its `nodes` or any other of its modules. What several pipelines share lives below the pipelines, in
   src/gpe_pipeline/ (readings.py, verdicts.py, experiment_parameters.py, stage_training.py, evaluation.py, ...).
   The modules directly in pipelines/ (variant_stages.py) compose stage pipelines under the same rule.
2. The core (src/gpe_pipeline/core) is plain PyTorch: it imports neither Kedro nor MLflow (kedro*, mlflow), nor any
   module of this project outside core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "gpe_pipeline"
PIPELINES = PACKAGE / "pipelines"
CORE = PACKAGE / "core"
# Top-level packages the core must not import: Kedro's and MLflow's.
FRAMEWORKS = ("kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz", "mlflow")


def module_name(path: Path) -> str:
    """gpe_pipeline.pipelines.compare.nodes for src/gpe_pipeline/pipelines/compare/nodes.py (a package: its __init__)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of everything a module's source imports, relative imports resolved.

    `from x import y` gives x.y (y may be a module of package x, or only a name in it: the caller decides);
    imports inside functions count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module
            found += [(node.lineno, origin)]
            found += [(node.lineno, f"{origin}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def pipeline_of(module: str) -> str | None:
    """The pipeline a module belongs to (compare for gpe_pipeline.pipelines.compare.nodes); None outside one."""
    parts = module.split(".")
    if parts[:2] != ["gpe_pipeline", "pipelines"] or len(parts) < 3:
        return None
    return parts[2] if (PIPELINES / parts[2]).is_dir() else None


def is_module(dotted: str) -> bool:
    """Whether a dotted name under gpe_pipeline is a module or package on disk (not a name defined in one)."""
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def pipeline_violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of another pipeline's modules other than its package and its `pipeline` module."""
    own = pipeline_of(module)
    problems = []
    for line, imported in imported_modules(source, module, is_package):
        other = pipeline_of(imported)
        parts = imported.split(".")
        if other is None or other == own or len(parts) < 4:
            continue  # not another pipeline's, or the package itself (its __init__ exports create_pipeline)
        if parts[3] != "pipeline" and is_module(".".join(parts[:4])):
            problems.append(f"{module} line {line} imports {'.'.join(parts[:4])}")
    return list(dict.fromkeys(problems))  # `from b.nodes import x, y` is one import


def core_violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of Kedro, MLflow or a module of this project outside core."""
    problems = []
    for line, imported in imported_modules(source, module, is_package):
        top = imported.split(".")[0]
        outside_core = top == "gpe_pipeline" and not (imported + ".").startswith("gpe_pipeline.core.")
        if top in FRAMEWORKS or outside_core:
            problems.append(f"{module} line {line} imports {imported}")
    return problems


def violations(root: Path, check) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        problems += check(path.read_text(), module_name(path), path.name == "__init__.py")
    return problems


def test_no_pipeline_imports_another_pipelines_nodes():
    problems = violations(PIPELINES, pipeline_violations)
    assert not problems, "move what pipelines share below the pipelines (src/gpe_pipeline/):\n" + "\n".join(problems)


def test_the_core_imports_neither_kedro_nor_mlflow_nor_anything_outside_core():
    problems = violations(CORE, core_violations)
    assert not problems, "the core is plain PyTorch:\n" + "\n".join(problems)


# --- the checks themselves, on hand-written sources ----------------------------------------------------------------

E5 = "gpe_pipeline.pipelines.exp_wallclock.nodes"


@pytest.mark.parametrize(
    "source",
    [
        "from gpe_pipeline.pipelines.compare.nodes import by_variant",
        "from gpe_pipeline.pipelines.compare import nodes",
        "from gpe_pipeline.pipelines.compare import nodes as compare_nodes",
        "import gpe_pipeline.pipelines.compare.nodes",
        "import gpe_pipeline.pipelines.compare.nodes as compare_nodes",
        "from ..compare.nodes import by_variant",
        "from ..compare import nodes",
        "def f():\n    from gpe_pipeline.pipelines.train_encoder.nodes import train_encoder",
    ],
)
def test_an_import_of_another_pipelines_nodes_is_refused(source):
    assert pipeline_violations(source, E5), source


@pytest.mark.parametrize(
    "source",
    [
        "from gpe_pipeline.pipelines import evaluate, ingest",  # composition: the packages' create_pipeline
        "from gpe_pipeline.pipelines.evaluate import create_pipeline",
        "from gpe_pipeline.pipelines.evaluate.pipeline import measurement_pipeline",
        "from gpe_pipeline.pipelines.variant_stages import variant_pipeline",
        "from .nodes import summarise_wallclock",  # the pipeline's own nodes
        "from gpe_pipeline.pipelines.exp_wallclock.nodes import METHODS",
        "from gpe_pipeline.readings import by_variant",
        "from .. import ingest",
    ],
)
def test_composition_and_own_nodes_are_allowed(source):
    assert not pipeline_violations(source, E5), source


def test_the_composing_modules_beside_the_pipelines_may_not_import_nodes_either():
    module = "gpe_pipeline.pipelines.variant_stages"
    assert pipeline_violations("from .evaluate.nodes import compute_metrics", module)
    assert not pipeline_violations("from gpe_pipeline.pipelines import cache_latents, evaluate", module)


@pytest.mark.parametrize(
    "source",
    [
        "import kedro",
        "from kedro.pipeline import Node",
        "import mlflow",
        "from kedro_mlflow.io.artifacts import MlflowArtifactDataset",
        "from gpe_pipeline.params import ParameterError",
        "from gpe_pipeline import tracking",
        "from ..params import ParameterError",
        "from .. import variants",
        "def f():\n    import mlflow",
    ],
)
def test_the_core_refuses_kedro_mlflow_and_the_rest_of_the_project(source):
    assert core_violations(source, "gpe_pipeline.core.metrics"), source


@pytest.mark.parametrize(
    "source",
    ["import torch", "from .losses import gme_loss", "from gpe_pipeline.core.data import to_model_scale", "from . import distributed"],
)
def test_the_core_may_import_torch_and_itself(source):
    assert not core_violations(source, "gpe_pipeline.core.metrics"), source
