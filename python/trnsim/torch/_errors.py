"""Exceptions of trnsim.torch.

Errors that come from a graph name the user's model line (the full ``path:line`` of the FX
node's stack trace) so the message points at the code to change. Under ``torch.compile``,
Dynamo wraps a backend's exception in ``torch._dynamo.exc.BackendCompilerFailed``; the
original is its ``.inner_exception`` (and its message is repeated in Dynamo's).
"""

from __future__ import annotations


class TrnsimTorchError(Exception):
    """Base of the errors raised by trnsim.torch."""


class UnsupportedOpError(TrnsimTorchError, NotImplementedError):
    """An ATen op that trnsim's op table does not have (and ``fallback`` is not ``"cpu"``).

    ``.op`` is the op's IR name (``"histc"``), ``.aten`` the full overload
    (``"aten.histc.default"``), ``.where`` the model line (``"/path/model.py:42"``) or None,
    ``.ops`` every unsupported op of the graph as ``(op, where)`` pairs."""

    def __init__(self, op: str, aten: str, where: str | None, ops=()):
        self.op, self.aten, self.where = op, aten, where
        self.ops = list(ops) or [(op, where)]
        at = f" at {where}" if where else ""
        more = ""
        others = sorted({o for o, _ in self.ops if o != op})
        if others:
            more = f" (also unsupported in this graph: {', '.join(others)})"
        super().__init__(
            f"op '{op}' ({aten}){at} is not supported by trnsim{more}; pass "
            "options={'fallback': 'cpu'} to run unsupported ops on the host")


class DtypeError(TrnsimTorchError, TypeError):
    """A value whose dtype or values the IR cannot carry (complex, int64 outside int32)."""


class DynamicShapeError(TrnsimTorchError, NotImplementedError):
    """A graph with symbolic shapes or scalars: trnsim compiles static shapes only."""


class CompileError(TrnsimTorchError, RuntimeError):
    """The C++ compiler rejected a graph. ``.code``, ``.where``, ``.message`` come from the
    core's ``CompileError``; ``.loc`` is the model line (full path) of the node it names, if
    any; ``.ir_text`` is the IR text that was sent."""

    def __init__(self, code, where, message, ir_text, loc=None):
        self.code, self.where, self.message, self.ir_text, self.loc = (
            code, where, message, ir_text, loc)
        at = f" (model line {loc})" if loc else ""
        super().__init__(f"{where}: {message}{at}" if where else f"{message}{at}")


class OptionsError(TrnsimTorchError, ValueError):
    """A bad entry in ``options``."""


def from_core(e: Exception, sg) -> CompileError:
    """A ``trnsim._trnsim.compiler.CompileError`` (args: code, where, message, full text) as a
    CompileError naming the model line of the node it mentions (`sg`: the SerializedGraph)."""
    if len(e.args) >= 3:
        code, where, message = e.args[0], e.args[1], e.args[2]
    else:
        code, where, message = None, None, str(e)
    loc = sg.full_loc(str(where or "")) or sg.full_loc(str(message or ""))
    return CompileError(code, where, message, sg.text, loc=loc)
