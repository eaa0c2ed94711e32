"""The package's import graph: no module imports one in a layer above it, and no cycles
(CONTRIBUTING.md, "How the package is layered"). Imports inside functions count too;
imports under ``if TYPE_CHECKING:`` (annotations only, never run) do not."""

import ast
from pathlib import Path

import weightgen

PACKAGE = Path(weightgen.__file__).parent

# the layers of CONTRIBUTING.md, bottom first; a package stands for all its modules
LAYERS = [
    ["errors", "interrupts", "fileio", "rng", "threads", "memory", "distributed"],
    ["split", "idxfiles", "data", "datasets"],
    ["layers", "targets", "cost", "symmetry", "entropy", "terms", "models", "objective"],
    ["uncertainty", "evaluate", "networks", "exchange", "analysis"],
    ["methods", "config"],
    ["pretrained", "runfolder", "tensorboard", "loop"],
    [
        "api",
        "reportsettings",
        "reportpage",
        "report",
        "bench",
        "cliargs",
        "cli",
        "__init__",
        "__main__",
    ],
]
LAYER_OF = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def unit(module: str) -> str:
    """The layer table's name for a module: its top-level module or package."""
    return module.split(".")[0]


def imports(path: Path) -> set[str]:
    """The weightgen modules a file imports (absolute or relative), anywhere in it."""
    here = module_name(path).split(".")
    package = here[:-1] if path.name != "__init__.py" else here[:-1]
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {  # imports under `if TYPE_CHECKING:` never run
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("weightgen"):
                target = node.module.removeprefix("weightgen").lstrip(".")
            else:
                continue
            names = [f"{target}.{a.name}".lstrip(".") for a in node.names]
            found.update(
                n
                if (PACKAGE / n.replace(".", "/")).with_suffix(".py").exists()
                or (PACKAGE / n.replace(".", "/")).is_dir()
                else target
                for n in names
            )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("weightgen."):
                    found.add(alias.name.removeprefix("weightgen."))
    return {f for f in found if f}


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path).removesuffix(".__init__") or "__init__"
        edges[name] = imports(path) - {name}
    return edges


def test_every_module_is_in_the_layer_table():
    missing = sorted({unit(m) for m in graph()} - set(LAYER_OF))
    assert not missing, f"add {missing} to LAYERS here and to CONTRIBUTING.md"


def test_no_module_imports_a_layer_above_it():
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if LAYER_OF[unit(target)] > LAYER_OF[unit(source)]
    ]
    assert not upward, upward


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
