"""Run unmodified NKI kernel files: make ``nki``, ``nki.language``, ``nki.isa``,
``neuronxcc.nki``, ``neuronxcc.nki.language``, ``neuronxcc.nki.isa`` and
``neuronxcc.nki.typing`` resolve to trnsim.nki.

    python -m trnsim.nki.compat kernel.py [args]     # runs kernel.py as __main__

or ``trnsim.nki.install_import_aliases()`` inside a test harness. (A ``trnsim nki run``
subcommand of the C++ CLI is planned; until then use the module form.)
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

_ALIASES = {
    "nki": "trnsim.nki",
    "nki.language": "trnsim.nki.language",
    "nki.isa": "trnsim.nki.isa",
    "nki.typing": "trnsim.nki.typing",
    "nki.collectives": "trnsim.nki.collectives",
    "nki.compiler": "trnsim.nki.compiler",
    "neuronxcc.nki": "trnsim.nki",
    "neuronxcc.nki.compiler": "trnsim.nki.compiler",
    "neuronxcc.nki.language": "trnsim.nki.language",
    "neuronxcc.nki.isa": "trnsim.nki.isa",
    "neuronxcc.nki.typing": "trnsim.nki.typing",
    "neuronxcc.nki.collectives": "trnsim.nki.collectives",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        import importlib as _il
        return _il.import_module(self.target)

    def exec_module(self, module):
        pass


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves the NKI module names to trnsim's modules (the very same module objects)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "neuronxcc":
            spec = importlib.util.spec_from_loader(fullname, _PackageLoader(), is_package=True)
            return spec
        t = _ALIASES.get(fullname)
        if t is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(t), is_package=True)


class _PackageLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []


_FINDER = _AliasFinder()


def install_import_aliases(replace_existing: bool = True) -> None:
    """Makes the NKI module names import trnsim.nki (idempotent). With replace_existing, a
    real ``nki``/``neuronxcc`` already imported is replaced in sys.modules."""
    import importlib as _il
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name in list(_ALIASES) + ["neuronxcc"]:
        if replace_existing and name in sys.modules and not getattr(
                sys.modules[name], "__name__", "").startswith(("trnsim", "neuronxcc")):
            del sys.modules[name]
    import trnsim.nki  # noqa: F401
    for alias, target in _ALIASES.items():
        sys.modules[alias] = _il.import_module(target)
    # `import neuronxcc.nki as nki` needs the attribute on the parent package too.
    parent = _il.import_module("neuronxcc")
    parent.nki = sys.modules["trnsim.nki"]


def main(argv=None) -> int:
    import runpy
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m trnsim.nki.compat script.py [args...]\n"
              "Runs an unmodified NKI script with nki / neuronxcc.nki resolving to trnsim.nki.")
        return 0 if argv else 2
    install_import_aliases()
    script = argv[0]
    sys.argv = argv
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
