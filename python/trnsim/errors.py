"""The exception classes of trnsim's core, one per error code (docs/python.md).

They are defined once, next to the table that maps each core error code to its class
(python/src/errors.cpp); this module only gives them a public home. ``Error`` is the base
(a RuntimeError); caller mistakes (``InvalidArgumentError``, ``ParseError``, ``ConfigError``)
are also ValueError, ``NotSupportedError`` is also NotImplementedError.
"""

from ._trnsim import (CapacityError, ConfigError, CorruptError, Error,  # noqa: F401
                      InternalError, InvalidArgumentError, IoError, NotSupportedError,
                      OutOfBoundsError, ParseError, UninitializedReadError, VerifyError,
                      error_codes)

__all__ = ["Error", "InvalidArgumentError", "ParseError", "ConfigError", "VerifyError",
           "CapacityError", "UninitializedReadError", "OutOfBoundsError", "IoError",
           "CorruptError", "NotSupportedError", "InternalError", "error_codes"]
