"""trnsim.nki's modules import one way (issue 13: import cycles). Every relative import of the
package counts, the ones inside functions too: a cycle closed by a function-level import still
ties the two modules together. The primitive instructions the composed ones are built from
(nc_matmul, activation) live in _isa_base.py, which nki.isa re-exports as its own."""

import ast
import pathlib

import numpy as np
import pytest

import trnsim.nki
from trnsim import nki
from trnsim.nki import _isa_base
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

PKG = pathlib.Path(trnsim.nki.__file__).parent


def _import_graph():
    """module -> set of the package's modules it imports (relative imports, anywhere)."""
    mods = {p.stem for p in PKG.glob("*.py")}
    graph = {}
    for m in mods:
        deps = set()
        for node in ast.walk(ast.parse((PKG / f"{m}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
        graph[m] = deps & mods - {m}
    return graph


def _cycles(graph):
    """Each elementary cycle once, as a list starting at its smallest module name."""
    found = set()

    def walk(start, node, path, on_path):
        for nxt in graph[node]:
            if nxt == start:
                found.add(tuple(path))
            elif nxt > start and nxt not in on_path:
                on_path.add(nxt)
                walk(start, nxt, path + [nxt], on_path)
                on_path.discard(nxt)

    for start in sorted(graph):
        walk(start, start, [start], {start})
    return sorted(found)


def test_the_cycle_finder_finds_cycles():
    g = {"a": {"b"}, "b": {"a", "c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [("a", "b"), ("a", "b", "c")]


def test_the_graph_sees_function_level_imports():
    g = _import_graph()
    assert "api" in g["isa"]  # isa.__getattr__ imports api inside the function
    assert {"isa_composed", "mx", "_isa_base"} <= g["isa"]


def test_nki_has_no_import_cycles():
    assert _cycles(_import_graph()) == []


def test_modules_below_nki_isa_do_not_import_it():
    g = _import_graph()
    importers = sorted(m for m, deps in g.items() if "isa" in deps)
    assert importers == ["__init__"], importers


def test_nki_isa_re_exports_the_primitives_as_its_own():
    for name in ("nc_matmul", "activation", "activation_reduce"):
        f = getattr(nisa, name)
        assert f.__wrapped__ is getattr(_isa_base, name), name  # mask= wrapper, as the others
        assert getattr(f, "_masked", False), name


@nki.jit
def _bad_matmul(a):
    t = nl.load(a)
    nisa.nc_matmul(t, 3.0)
    return t


def test_errors_in_the_primitives_name_nki_isa():
    with pytest.raises(nki.errors.NkiTypeError) as ei:
        _bad_matmul(np.ones((4, 4), np.float32))
    assert "bad arguments to nki.isa.nc_matmul" in str(ei.value)
