"""trnsim.kernels: the C++ kernel library on the simulated chip, from numpy.

Each kernel is written once in C++ (``src/trnsim/kernels/``, on the kernel-building API) and is
the same code the compiler composes for ``torch.compile`` graphs. From Python each function
takes numpy arrays (float32 values; the kernel's dtype, bf16 by default, is what the simulated
chip computes in), a ``chip`` name (``"trn1"``, ``"trn2"``, ``"trn3"`` or a chip JSON file) and
returns ``(out, info)``: the result as numpy and a dict with the simulated time
(``simulated_ns``), the instruction count, TensorE utilization and HBM traffic; ``threads=``
sets the host threads of the functional work (0, the default, one per host core; the results
are the same for any count). The ``time_*``
functions run timing-only on shapes too large to compute and return ``info`` alone.

    >>> import numpy as np, trnsim.kernels as k
    >>> out, info = k.matmul(np.ones((256, 128), np.float32), np.ones((256, 512), np.float32))
    >>> out.shape, info["simulated_ns"] > 0
    ((128, 512), True)

docs/kernels.md lists every kernel with its simulated performance. Errors: ValueError for
shapes or options a kernel does not take (naming them), RuntimeError for a failed run.
"""

from trnsim._trnsim import kernels as _library

#: Every kernel the C++ library binds: this module is that list, nothing more.
__all__ = sorted(name for name in dir(_library) if not name.startswith("_"))

globals().update({name: getattr(_library, name) for name in __all__})
