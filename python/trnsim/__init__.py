"""trnsim: a numerically faithful, cycle-approximate simulator of Trainium-class AI chips.

The C++ core lives in the extension module ``trnsim._trnsim``, one submodule per layer
(``numerics``, ``arch``, ``isa``, ``sim``, ``profile``, ``kernels``). The ``trnsim`` command
line is installed next to the Python interpreter (``python -m trnsim`` runs it too).
"""

from . import _trnsim
from ._trnsim import __version__

__all__ = ["__version__"]
