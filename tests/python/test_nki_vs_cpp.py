"""The NKI twins of C++ library kernels (examples/nki/*_isa.py) against the C++ kernels
(trnsim.kernels): same input, same bits, same simulated time, same instruction count.

Both sides emit through the one C++ kernel builder and run on the same simulator, so equal
instruction sequences with equal SBUF placement and DMA queues must give equal results exactly.
"""
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from trnsim import nki
from trnsim import kernels as K

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "nki"))
nki.install_import_aliases()
import rmsnorm_isa  # noqa: E402 (current-style NKI scripts: `import nki`)
import softmax_isa  # noqa: E402


def _host(a, dtype):
    return a.astype(ml_dtypes.bfloat16) if dtype == "bfloat16" else a


def _bits(a, dtype):
    """The raw bits of the values as stored in HBM."""
    a = np.asarray(a)
    if dtype == "bfloat16":
        return a.astype(ml_dtypes.bfloat16).view(np.uint16)
    return a.astype(np.float32).view(np.uint32)


def _check_same(y_nki, y_cpp, info, dtype):
    run = nki.last_run()
    assert y_nki.shape == y_cpp.shape
    assert np.array_equal(_bits(y_nki, dtype), _bits(y_cpp, dtype))
    assert run.instructions == info["instructions"]
    assert run.simulated_ns == info["simulated_ns"]  # exact: same program, same simulator
    assert run.simulated_ns > 0


# (300, 512): a partial last tile of 44 rows.
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(256, 256), (300, 512), (512, 1024)])
def test_softmax_nki_equals_cpp(dtype, shape):
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32) * 3
    y_cpp, info = K.softmax(x, dtype=dtype)
    y_nki = softmax_isa.softmax_kernel(_host(x, dtype))
    _check_same(y_nki, y_cpp, info, dtype)
    assert info["instructions"] == 6 * -(-shape[0] // 128)


# The last shape of each dtype only fits two buffers per stream (the C++ kernel picks 2 or 3
# by free SBUF; the NKI twin makes the same choice).
@pytest.mark.parametrize("dtype,shape", [
    ("float32", (256, 256)), ("float32", (300, 512)), ("float32", (512, 1024)),
    ("float32", (384, 8192)),
    ("bfloat16", (256, 256)), ("bfloat16", (300, 512)), ("bfloat16", (512, 1024)),
    ("bfloat16", (384, 16384)),
])
def test_rmsnorm_nki_equals_cpp(dtype, shape):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32)
    y_cpp, info = K.rmsnorm(x, w, dtype=dtype)
    y_nki = rmsnorm_isa.rmsnorm_kernel(_host(x, dtype), _host(w, dtype))
    _check_same(y_nki, y_cpp, info, dtype)
    assert info["instructions"] == 1 + 5 * -(-shape[0] // 128)


@pytest.mark.parametrize("example", ["softmax_isa.py", "rmsnorm_isa.py"])
def test_isa_examples_run_unmodified(example):
    r = subprocess.run([sys.executable, "-m", "trnsim.nki.compat",
                        os.path.join(ROOT, "examples", "nki", example)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "matches numpy" in r.stdout
