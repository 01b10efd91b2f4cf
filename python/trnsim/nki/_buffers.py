"""nki.language's memory buffers (nl.sbuf, nl.psum, nl.hbm, ...): where a tensor lives."""

from __future__ import annotations

from . import errors as _err
from ._names import HBM as _HBM
from ._names import PSUM as _PSUM
from ._names import SBUF as _SBUF


class _Buffer:
    def __init__(self, name, space, kind):
        self.name, self.space, self.kind = name, space, kind

    def __repr__(self):
        return f"nl.{self.name}"

    def view(self, *a, **k):
        raise _err.not_supported(f"nl.{self.name}.view")


sbuf = _Buffer("sbuf", _SBUF, None)
psum = _Buffer("psum", _PSUM, None)
hbm = _Buffer("hbm", _HBM, "output")
shared_hbm = _Buffer("shared_hbm", _HBM, "output")
private_hbm = _Buffer("private_hbm", _HBM, "internal")
