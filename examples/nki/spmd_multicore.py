"""A kernel sharded over two NeuronCores without changing its body (older NKI style,
neuronxcc.nki): the launch grid's first axis is nl.spmd_dim(nl.nc(2), 2), so NeuronCore 0 runs
programs 0 and 1 and NeuronCore 1 runs programs 2 and 3, all on one HBM. Each program scales a
block of rows; the last block is partial and masked (mask=(row < n)).

Runs unmodified with: trnsim nki run examples/nki/spmd_multicore.py
(or python -m trnsim.nki.compat examples/nki/spmd_multicore.py)
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def scale_rows_kernel(x, scale):
    n, d = x.shape
    out = nl.ndarray((n, d), dtype=x.dtype, buffer=nl.shared_hbm)
    rows_per_program = 128
    i = nl.program_id(0)
    i_p = nl.arange(rows_per_program)[:, None]
    i_f = nl.arange(d)[None, :]
    row = i * rows_per_program + i_p
    s = nl.load(scale.broadcast_to((rows_per_program, d)))  # one row repeated on partitions
    tile = nl.load(x[row, i_f], mask=(row < n))
    res = nl.multiply(tile, s, mask=(row < n))
    nl.store(out[row, i_f], value=res, mask=(row < n))
    return out


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((450, 256)).astype(np.float32)  # 3.5 blocks of 128 rows
    scale = rng.standard_normal((1, 256)).astype(np.float32)
    y = scale_rows_kernel[nl.spmd_dim(nl.nc(2), 2)](x, scale)
    assert np.array_equal(y, x * scale), "mismatch"
    run = nki.last_run()
    print(f"spmd_multicore: matches numpy {y.shape}, {len(run.programs)} NeuronCore programs, "
          f"{run.simulated_ns / 1000:.2f} us simulated")
