"""nki's threads= run option: host threads for the work inside one instruction (RunOptions::
threads). Outputs and timing must not depend on it; bad values are refused naming the keyword."""
import json

import numpy as np
import pytest

from trnsim import nki
from trnsim._trnsim import nki as _cnki  # the binding trnsim.nki runs kernels through
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl


def matmul_kernel(lhsT, rhs):
    """result[M, N] = lhsT[K, M].T @ rhs[K, N], accumulated over K in PSUM: every
    nc_matmul is 128 x 128 x 512, so its 512 output columns split over several threads."""
    K, M = lhsT.shape
    _, N = rhs.shape
    result = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    TK, TM, TN = 128, 128, 512
    for m in nl.affine_range(M // TM):
        for n in nl.affine_range(N // TN):
            acc = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.psum)
            for k in nl.sequential_range(K // TK):
                a = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                b = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=a, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
                nisa.dma_copy(dst=b, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=acc, stationary=a, moving=b, accumulate=k > 0)
            res = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res, src=acc)
            nisa.dma_copy(dst=result[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res)
    return result


def _inputs():
    rng = np.random.default_rng(7)
    return (rng.standard_normal((512, 256)).astype(np.float32),
            rng.standard_normal((512, 1024)).astype(np.float32))


def _timing(run):
    """What a run's timing amounts to: simulated time, instruction count and the summary
    without the host's wall time (the only part that may differ between runs)."""
    summary = {k: v for k, v in run.summary().items() if "host" not in k}
    return run.simulated_ns, run.instructions, json.dumps(summary, sort_keys=True)


def test_thread_counts_give_the_same_bytes_and_timing(monkeypatch):
    passed = []  # the threads each run handed to the core
    real = _cnki.execute

    def spy(*args, **kwargs):
        passed.append(kwargs.get("threads"))
        return real(*args, **kwargs)
    monkeypatch.setattr(_cnki, "execute", spy)

    lhsT, rhs = _inputs()
    ref = lhsT.astype(np.float64).T @ rhs.astype(np.float64)
    k = nki.jit(matmul_kernel)
    runs = {}
    for threads in (1, 2, 0):
        out = k(lhsT, rhs, threads=threads)
        runs[threads] = (out.tobytes(), _timing(k.last_run))
        np.testing.assert_allclose(out, ref, rtol=2e-2, atol=2e-2)
    assert passed == [1, 2, 0]
    assert runs[1] == runs[2] == runs[0]
    assert runs[1][1][1] >= 8  # 2 x 2 output tiles x 4 K steps of nc_matmul, plus DMAs

    # The decorator's option and simulate_kernel's keyword reach the core the same way.
    passed.clear()
    out = nki.jit(matmul_kernel, threads=2)(lhsT, rhs)
    assert out.tobytes() == runs[1][0]
    out = nki.simulate_kernel(nki.jit(matmul_kernel), lhsT, rhs, threads=1)
    assert out.tobytes() == runs[1][0]
    assert passed == [2, 1]


@pytest.mark.parametrize("bad, cls, text", [
    (-1, ValueError, "threads=-1"),
    (2**32, ValueError, f"threads={2**32}"),
    (1.5, TypeError, "threads=1.5"),
    ("2", TypeError, "threads='2'"),
    (True, TypeError, "threads=True"),
])
def test_bad_threads_are_refused_naming_the_keyword(bad, cls, text):
    lhsT, rhs = _inputs()
    with pytest.raises(cls, match=text) as e:
        nki.jit(matmul_kernel)(lhsT, rhs, threads=bad)
    assert "matmul_kernel" in str(e.value)
    with pytest.raises(cls, match=text):  # at the decorator, before any run
        nki.jit(matmul_kernel, threads=bad)
    with pytest.raises(cls, match=text):  # the multi-chip runs check it the same way
        nki.simulate_multichip(matmul_kernel, [(lhsT, rhs)], threads=bad)


def test_numpy_integer_threads_are_accepted():
    lhsT, rhs = _inputs()
    out = nki.jit(matmul_kernel)(lhsT[:128], rhs[:128, :512], threads=np.int64(2))
    np.testing.assert_allclose(out, lhsT[:128].T @ rhs[:128, :512], rtol=2e-2, atol=2e-2)
