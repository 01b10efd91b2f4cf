"""Elementwise add in the older NKI style (neuronxcc.nki, nl.load/nl.store, nl.mgrid), tiled
over an SPMD grid. Runs unmodified with: python -m trnsim.nki.compat examples/nki/tensor_add.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def tensor_add_kernel(a_input, b_input):
    c_output = nl.ndarray(a_input.shape, dtype=a_input.dtype, buffer=nl.shared_hbm)
    # One program per 128 x 512 tile of the grid.
    offset_i_x = nl.program_id(0) * 128
    offset_i_y = nl.program_id(1) * 512
    ix, iy = nl.mgrid[0:128, 0:512]
    a_tile = nl.load(a_input[offset_i_x + ix, offset_i_y + iy])
    b_tile = nl.load(b_input[offset_i_x + ix, offset_i_y + iy])
    c_tile = a_tile + b_tile
    nl.store(c_output[offset_i_x + ix, offset_i_y + iy], value=c_tile)
    return c_output


if __name__ == "__main__":
    a = np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32)
    c = nki.simulate_kernel(tensor_add_kernel[2, 2], a, b)
    assert np.allclose(c, a + b), "mismatch"
    print("tensor_add: matches numpy", c.shape)
