"""Run unmodified NKI kernel files: make ``nki``, ``nki.language``, ``nki.isa``,
``neuronxcc.nki``, ``neuronxcc.nki.language``, ``neuronxcc.nki.isa`` and
``neuronxcc.nki.typing`` resolve to trnsim.nki.

    python -m trnsim.nki.compat kernel.py [args]     # runs kernel.py as __main__

or ``trnsim nki run kernel.py [args]`` (the CLI runs this module), or
``trnsim.nki.install_import_aliases()`` inside a test harness.
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


def _user_frame(tb):
    """(file, line) of the innermost traceback frame in the user's own code: not in the
    trnsim package, the standard library or site-packages (None if there is none)."""
    import os
    import sysconfig
    skip = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            skip.append(path)
    loc = None
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if not any(os.path.abspath(f).startswith(d + os.sep) for d in skip) and \
                not f.startswith("<"):
            loc = (f, tb.tb_lineno)
        tb = tb.tb_next
    return loc


def error_line(e: BaseException) -> str:
    """The one line ``trnsim nki run`` prints for an exception a script raised:
    ``trnsim: error: <file>:<line>: <message>``, the place being the kernel line for trnsim.nki
    errors and the script's own line otherwise; control characters escaped."""
    from .errors import NkiError, escape
    if isinstance(e, NkiError) and getattr(e, "file", None):
        text = str(e)
    elif isinstance(e, SyntaxError) and e.filename:
        text = f"{escape(e.filename)}:{e.lineno}: SyntaxError: {escape(e.msg)}"
    else:
        loc = _user_frame(e.__traceback__)
        what = str(e) if isinstance(e, NkiError) else f"{type(e).__name__}: {e}"
        if isinstance(e, NkiError):
            what = getattr(e, "message", None) or what
        text = f"{escape(loc[0])}:{loc[1]}: {escape(what)}" if loc else escape(what)
    return "trnsim: error: " + " ".join(text.splitlines())


def main(argv=None) -> int:
    """Runs a script with the NKI aliases installed. An exception the script raises prints as
    one ``trnsim: error: file:line: message`` line on stderr (exit status 1); ``--traceback``
    before the script, or TRNSIM_TRACEBACK=1, prints Python's full traceback instead."""
    import os
    import runpy
    argv = list(sys.argv[1:] if argv is None else argv)
    show_tb = os.environ.get("TRNSIM_TRACEBACK", "") not in ("", "0")
    if argv and argv[0] == "--traceback":
        show_tb = True
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m trnsim.nki.compat [--traceback] script.py [args...]\n"
              "Runs an unmodified NKI script with nki / neuronxcc.nki resolving to trnsim.nki.\n"
              "An error prints as one 'trnsim: error: file:line: message' line; --traceback\n"
              "(or TRNSIM_TRACEBACK=1) prints the full Python traceback instead.")
        return 0 if argv else 2
    script = argv[0]
    if not os.path.isfile(script):
        from .errors import escape
        why = "is a directory" if os.path.isdir(script) else "no such file"
        print(f"trnsim: error: {escape(script)}: cannot run the script: {why}", file=sys.stderr)
        return 1
    install_import_aliases()
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as e:  # noqa: BLE001 (the CLI's top level: one line, exit 1)
        sys.stdout.flush()
        if show_tb:
            import traceback
            traceback.print_exc()
        else:
            print(error_line(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
