"""The runner's layers, read from the source with `ast` (nothing is imported, so this is cheap).

Every module of src/runner belongs to one layer of LAYERS, lowest first: the entry with the
longest module prefix that names it:

    base < theory < nets < record < tasks < training < config < results < trackers < run < papers < entry

(each entry of LAYERS says why it sits where it does). Three rules hold:

- a module imports nothing of a higher layer (imports under `if TYPE_CHECKING:` count too: a
  type that names a higher layer is still a dependency on it);
- every import inside a function is in LAZY with its reason (startup time or an optional
  dependency), so an import moved into a function to dodge a cycle fails here;
- the imports that run when a module loads (those at module level, with the package `__init__`s
  Python runs on the way) have no cycle, within a layer as well as between layers.

A module's layer is judged on the modules it names; the `__init__` of a package it reaches
through is a module of its own, judged on its own imports.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# (layer, module prefixes, why it sits where it does), lowest first.
LAYERS: list[tuple[str, tuple[str, ...], str]] = [
    ("base", ("runner", "runner.checks", "runner.numerics", "runner.expression", "runner.resolvers",
              "runner.faults"),
     "leaves every layer uses: argument checks that fail in one line, the float kernel set, the "
     "formula language of activations and PDEs, Hydra's resolvers, and how a run stops (signals, "
     "a full disk); they import no other layer"),
    ("theory", ("runner.theory",),
     "pure functions of an Activation (Gaussian expectations, kernels, NTK, criticality, the "
     "forecast) and what an Init draws; it needs only the base, and every layer above asks it"),
    ("nets", ("runner.nets",),
     "the networks: EnsembleMLP draws its layers by a theory Init and applies its Activation; the "
     "tasks and the training both take a network, so it sits below both"),
    ("record", ("runner.results.files", "runner.results.summary", "runner.results.record"),
     "what a run writes, shared by the writers below the results and the readers in them: files "
     "written atomically, the summary.json contract with the one rule of a member's statistics "
     "and fate, and the typed run record; the tasks write their outputs and the training logs "
     "member statistics through them, so these modules of results/ sit below the tasks"),
    ("tasks", ("runner.tasks",),
     "the data, loss, metrics and plots of one experiment, over a network; a task trains nothing "
     "itself, so it imports no training"),
    ("training", ("runner.training",),
     "the LightningModule, the compiled step, callbacks, optimizers and regularizers: a "
     "net trained on a task"),
    ("config", ("runner.config",),
     "Hydra's composition and the checked top-level settings; objects go down, never the whole "
     "config, so nothing from the training down reads it, only what sees a whole run"),
    ("results", ("runner.results",),
     "what is made of run records: jobs, tables, plots, verdicts and claims"),
    ("trackers", ("runner.trackers",),
     "the experiment trackers in one place: the loggers a run builds (metrics.csv, W&B, "
     "TensorBoard) and what they get when a run or a sweep ends, read from run records and jobs "
     "(with the trackers' defaults from conf/); only what drives whole runs uses them"),
    ("run", ("runner.run", "runner.sweeps", "runner.aggregate", "runner.screen"),
     "the composition root (run.py builds every group's object) and what drives whole runs and "
     "sweeps: sweep plans and estimates, the aggregate, the screen"),
    ("papers", ("runner.papers",),
     "what two papers claim, checked on the generic results, and the report; the generic layer "
     "never imports it"),
    ("entry", ("runner.__main__", "runner.theory.__main__", "runner.screen.__main__"),
     "command lines: they compose a config and may call any layer"),
]

# Imports inside functions, by (module, imported module), with why: startup time (a heavy library
# loads only where it is used) or an optional dependency. None dodges a cycle.
LAZY: dict[tuple[str, str], str] = {
    ("runner.__main__", "runner.faults"): "startup: torch and Lightning load after the command line is checked",
    ("runner.__main__", "runner.results.record"): "startup: after the command line is checked",
    ("runner.__main__", "runner.results.summary"): "startup: after the command line is checked (torch)",
    ("runner.__main__", "runner.run"): "startup: after the command line is checked (torch, Lightning)",
    ("runner.__main__", "runner.numerics"): "startup: after every job composed (torch)",
    ("runner.aggregate", "runner.trackers.reports"): "startup: Lightning and wandb only for --wandb",
    ("runner.results.files", "matplotlib"): "startup: matplotlib only where a figure is drawn",
    ("runner.results.files", "matplotlib.pyplot"): "startup: matplotlib only where a figure is drawn",
    ("runner.results.plots", "matplotlib.colors"): "startup: matplotlib only where a figure is drawn",
    ("runner.results.members", "pandas"): "startup: pandas only where a DataFrame is asked for",
    ("runner.trackers.reports", "wandb"): "startup: wandb only where a W&B run is reported",
    ("runner.trackers.loggers", "wandb"): "startup: wandb only where a W&B run is made",
    ("runner.tasks.digits", "sklearn.datasets"): "startup: scikit-learn only where the digits task is built",
    ("runner.tasks.digits", "sklearn.model_selection"): "startup: scikit-learn only where the digits task is built",
    ("runner.tasks.pde.burgers", "scipy.io"): "startup: scipy.io only where a .mat reference is read",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def modules() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of src/runner, parsed: {name: (path, tree)}."""
    return {module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted((SRC / "runner").rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index in LAYERS of the entry with the longest prefix naming `module` (the root package
    `runner` only by its own name, so a new top-level module must be placed here by hand)."""
    best, index = "", -1
    for i, (_, prefixes, _) in enumerate(LAYERS):
        for prefix in prefixes:
            names = module == prefix or (prefix != "runner" and module.startswith(prefix + "."))
            if names and len(prefix) > len(best):
                best, index = prefix, i
    return index


def targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The modules an import statement names: `from pkg import sub` names pkg.sub where that is a
    module of src/runner, else pkg (the name is an attribute of its __init__)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base for alias in node.names]


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str) -> list[tuple[str, int, str]]:
    """(where, line, target) of every import of `module`; where: "top" (runs when the module
    loads), "typing" (under `if TYPE_CHECKING:`) or "function" (inside a function)."""
    path, tree = modules()[module]
    is_package = path.name == "__init__.py"
    found = []

    def walk(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inner = "function"
            elif isinstance(child, ast.If) and is_type_checking(child.test) and where == "top":
                for stmt in child.body:
                    walk(ast.Module(body=[stmt], type_ignores=[]), "typing")
                for stmt in child.orelse:
                    walk(ast.Module(body=[stmt], type_ignores=[]), "top")
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((inner, child.lineno, t) for t in targets(child, module, is_package))
            walk(child, inner)

    walk(tree, "top")
    return found


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if layer_of(m) < 0]
    assert not unplaced, f"place these modules in a layer of LAYERS: {unplaced}"


def test_no_module_imports_a_higher_layer():
    upward = []
    for module in modules():
        own = layer_of(module)
        for where, line, target in imports(module):
            if where != "function" and target.split(".")[0] == "runner" and layer_of(target) > own:
                upward.append(f"{module}:{line} ({LAYERS[own][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_every_import_inside_a_function_is_a_listed_lazy_import():
    seen = {(module, target): line for module in modules()
            for where, line, target in imports(module) if where == "function"}
    unlisted = [f"{module}:{line} imports {target}" for (module, target), line in seen.items()
                if (module, target) not in LAZY]
    assert not unlisted, ("imports inside functions that are not in LAZY; import them at the top, or, "
                          "where it is for startup time or an optional dependency, list them with why:\n"
                          + "\n".join(unlisted))
    stale = [key for key in LAZY if key not in seen]
    assert not stale, f"LAZY lists imports that are no longer inside a function: {stale}"


def test_the_imports_that_run_at_load_have_no_cycle():
    """Module-level imports, each with the package __init__s Python runs on the way to it (not the
    importer's own packages, which are already loading)."""
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for module in modules():
        ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for where, _, target in imports(module):
            if where != "top" or target not in modules():
                continue
            parts = target.split(".")
            graph[module] |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} - ancestors - {module}
    cycle = find_cycle(graph)
    assert not cycle, "an import cycle: " + " -> ".join(cycle)


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` as a path that returns to its start, or [] when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_checks_catch_what_they_are_for():
    """The rules on small made-up graphs and sources: a cycle is found, a lower layer naming a
    higher one is placed below it, and an import inside a method counts as inside a function."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert layer_of("runner.tasks.base") < layer_of("runner.training.module")
    assert layer_of("runner.nets.mlp") < layer_of("runner.tasks.base")
    assert layer_of("runner.results.summary") < layer_of("runner.tasks.base") < layer_of("runner.results.jobs")
    assert layer_of("runner.theory.__main__") > layer_of("runner.config") > layer_of("runner.theory.kernels")
    assert layer_of("runner.newmodule") == -1  # the root package does not take in new modules
    tree = ast.parse("class A:\n    def f(self):\n        from runner.run import run\n")
    modules()["runner._example"] = (SRC / "runner" / "_example.py", tree)
    try:
        assert imports("runner._example") == [("function", 3, "runner.run")]
    finally:
        del modules()["runner._example"]
