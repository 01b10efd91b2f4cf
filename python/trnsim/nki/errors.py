"""Exceptions of trnsim.nki, and the one place that maps the core's error codes to them.

Every error names the kernel's own ``file:line`` first, then the rule that was broken. The
classes also derive from the matching ``trnsim._trnsim.sim`` exception, so code that catches
the simulator's errors catches these too.
"""

from __future__ import annotations

import re

from .._trnsim import sim as _sim


class NkiError(Exception):
    """Base of every trnsim.nki error. ``.file``/``.line`` name the kernel source line."""

    file: str | None = None
    line: int | None = None
    code: str = "kInternal"


class VerifyError(NkiError, _sim.VerifyError):
    """An instruction breaks a hardware rule (shapes, partitions, buffers, dtypes)."""


class CapacityError(NkiError, _sim.CapacityError):
    """SBUF, PSUM or HBM capacity exceeded, or allocations overlap."""


class OutOfBoundsError(NkiError, _sim.OutOfBoundsError):
    """An access outside its tensor."""


class UninitializedReadError(NkiError, _sim.UninitializedReadError):
    """An instruction read memory that nothing wrote."""


class NkiValueError(NkiError, ValueError):
    """A bad argument to an nki.language / nki.isa call."""


class NkiTypeError(NkiError, TypeError):
    """An argument of the wrong kind (e.g. a numpy array where a tile is expected)."""


class NotSupportedError(NkiError, NotImplementedError):
    """A public NKI name or option that trnsim does not implement yet."""


class NkiRuntimeError(NkiError, RuntimeError):
    """Any other error of the core."""


class NkiNarrowingWarning(UserWarning):
    """A float64 input was rounded to float32 (the chip holds no float64); once per call site."""


#: ErrorCode name (support/status.h) -> exception class.
_BY_CODE = {
    "verification error": VerifyError,
    "capacity error": CapacityError,
    "out of bounds": OutOfBoundsError,
    "uninitialized read": UninitializedReadError,
    "invalid argument": NkiValueError,
    "parse error": NkiValueError,
    "config error": NkiValueError,
    "not supported yet": NotSupportedError,
    "kVerify": VerifyError,
    "kCapacity": CapacityError,
    "kOutOfBounds": OutOfBoundsError,
    "kUninitializedRead": UninitializedReadError,
    "kInvalidArgument": NkiValueError,
    "kParse": NkiValueError,
    "kConfig": NkiValueError,
    "kUnsupported": NotSupportedError,
}

_AT = re.compile(r" at (.+?):(\d+)\b")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), so a file or tensor name
    holding terminal escape sequences cannot act on the terminal. Newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def make_error(cls, message: str, loc=None, code: str | None = None) -> NkiError:
    """An exception whose message starts with the kernel location ``file:line``."""
    message = escape(message)
    file, line = loc if loc else (None, None)
    text = f"{escape(file)}:{line}: {message}" if file else message
    e = cls(text)
    e.file, e.line = file, line
    e.message = message
    if code:
        e.code = code
    return e


def relocate(e: NkiError, loc) -> NkiError:
    """Puts ``e`` at kernel location ``loc`` (file, line): its message is rewritten to start
    with it. Errors made without a location get one this way at the trace boundary."""
    if not loc or not loc[0]:
        return e
    message = getattr(e, "message", None)
    if message is None:
        message = escape(str(e))
    file, line = loc
    e.args = (f"{escape(file)}:{line}: {message}",)
    e.file, e.line, e.message = file, line, message
    return e


def from_core(err, loc=None) -> NkiError:
    """Maps a core error (``trnsim.errors.Error``, args: code, where, message, text; see
    docs/python.md) to the class of this module for its code.

    The location comes from the error's own place ("instruction 3 (nc_matmul) at k.py:40")
    when it has one, else from ``loc`` (the kernel line of the call that failed).
    """
    if isinstance(err, NkiError):
        return err  # made here already (its class derives from the core's)
    code, where, _message, text = err.args
    m = _AT.search(where or "")
    if not m and (not where or str(where).startswith("rank ")):
        # A cluster error (a deadlock names each waiting rank's instruction and line in its
        # message): placed at the first line it names.
        m = _AT.search(text or "")
    exact = bool(m)
    if m:
        loc = (m.group(1), int(m.group(2)))
    e = make_error(_BY_CODE.get(code, NkiRuntimeError), text, loc, code)
    e.located_by_core = exact  # the core's own place: kept at the trace boundary
    return e


def not_supported(name: str) -> NotSupportedError:
    return NotSupportedError(
        f"{name} is not supported yet by trnsim.nki (docs/nki.md lists what works)")
