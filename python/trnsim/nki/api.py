"""The one list of NKI's public API names and what trnsim does with each.

Every public name of ``nki`` (the launch decorators and ``nki.tensor``), ``nki.language``,
``nki.isa``, ``nki.compiler``, ``nki.tensor``'s methods, ``nki.typing`` and
``nki.collectives`` of both API generations (``neuronxcc.nki`` and the newer ``nki``), as the
public NKI API reference lists them, with its status:

- ``yes``: works with the documented semantics (the note says how trnsim does it where that
  matters);
- ``no``: the name exists and raises ``NotSupportedError`` at the kernel's line, saying why
  (the note is that reason).

The modules take their not-supported names from here (``unsupported(module)``), and
docs/nki.md's coverage table is generated from this list by ``tools/nki_api_table.py``
(``tests/python/test_nki_api.py`` checks both), so there is no second list to drift.
"""

from __future__ import annotations

YES, NO = "yes", "no"

_DYN = ("indices read from device memory at run time: trnsim traces a kernel into a fixed "
        "instruction stream and has no data-dependent addressing in its ISA yet")
_REG = ("data-dependent control flow: trnsim unrolls kernels at trace time into a fixed "
        "instruction stream, so a value read from memory at run time cannot steer it")

#: (module, name, status, note)
API: list[tuple[str, str, str, str]] = []


def _add(module, names, status=YES, note=""):
    for n in names.split():
        API.append((module, n, status, note))


# ---- nki: launch decorators and types ----------------------------------------------------------
_add("nki", "jit baremetal benchmark profile simulate_kernel simulate trace")
_add("nki", "tensor", note="the class of kernel tensors and tiles; an annotation")
_add("nki", "FrameworkKernel", NO,
     "builds an XLA custom-call (HLO backend_config) for a framework; trnsim runs kernels "
     "directly and has no XLA integration")

# ---- nki.tensor (methods and properties of tensors and tiles) ----------------------------------
_add("nki.tensor", "shape dtype ndim itemsize reshape broadcast_to expand_dims astype "
                   "assert_shape ap")
_add("nki.tensor", "view", note="a bit cast of an on-chip tile to a dtype of the same width, "
     "computed exactly on chip (bitcast.py); width-changing views and HBM tensors raise "
     "NotSupportedError")

# ---- nki.typing ----------------------------------------------------------------------------------
_add("nki.typing", "tensor mutable_tensor scalar tile", note="annotation only")

# ---- nki.language ----------------------------------------------------------------------------------
_L = "nki.language"
_add(_L, "load store load_transpose2d copy")
_add(_L, "atomic_rmw", note="per indexed row: indirect-DMA read, Vector Engine op, "
     "indirect-DMA write, in program order (rows named twice accumulate twice)")
_add(_L, "ndarray zeros zeros_like ones ones_like full full_like empty_like rand random_seed "
         "shared_identity_matrix shared_constant")
_add(_L, "add subtract multiply divide power maximum minimum fmod mod max min mean var sum "
         "prod all any abs negative sign trunc floor ceil exp exp2 expm1 log log2 log1p cos sin "
         "tan tanh sinh cosh arctan sqrt rsqrt reciprocal sigmoid relu gelu gelu_dx "
         "gelu_apprx_tanh gelu_apprx_sigmoid silu silu_dx erf erf_dx softplus softplus_dx mish "
         "square softmax rms_norm logsumexp clip isnan isinf isfinite dropout matmul transpose "
         "argmax argmin cumsum")
_add(_L, "arcsin arccos gelu_apprx_sigmoid_dx mish_dx",
     note="composed of several Scalar/Vector Engine instructions")
_add(_L, "layer_norm", NO, "not implemented by trnsim.nki yet (write it with nl.mean / nl.var "
     "or nisa.bn_stats / bn_aggr)")
_add(_L, "bitwise_and bitwise_or bitwise_xor invert bitwise_not left_shift right_shift")
_add(_L, "equal not_equal greater greater_equal less less_equal logical_and logical_or "
         "logical_xor logical_not")
_add(_L, "ds arange mgrid ogrid expand_dims broadcast_to static_cast transpose2d")
_add(_L, "where")
_add(_L, "gather_flattened", note="one GpSimd local_gather after an index offset per "
     "partition")
_add(_L, "sort invert_permutation", NO,
     "data-dependent permutations need run-time indexing: " + _DYN)
_add(_L, "all_reduce", note="the programs of the grid are traced in lockstep (one thread "
     "each, switching at every all_reduce) onto one NeuronCore, the reduction is Vector Engine "
     "tensor_tensor ops in grid order in float32; across nl.nc cores: NotSupportedError")
_add(_L, "static_range affine_range sequential_range dynamic_range fori_loop")
_add(_L, "while_loop", note="conditions that are Python values at trace time (a tile "
     "condition raises NotSupportedError: it is known only at run time)")
_add(_L, "par_dim psum sbuf hbm private_hbm shared_hbm")
_add(_L, "hbm_view psum_view sbuf_view", NO,
     "newer NKI memory-view objects are not implemented by trnsim.nki yet")
_add(_L, "virtual_register", note="a register whose value is known at trace time (registers.py)")
_add(_L, "program_id num_programs program_ndim spmd_dim nc device_print loop_reduce tile_size")
_add(_L, "num_programs_per_core", NO,
     "newer NKI name not implemented by trnsim.nki yet (use nl.num_programs with an nl.nc "
     "grid axis)")
_add(_L, "tfloat32 bfloat16 float8_e4m3 float8_e4m3fn float8_e5m2 float32 float16 int32 "
         "uint32 int16 uint16 int8 uint8 bool_")
_add(_L, "float8_e8m0fnu float8_e4m3fn_x4 float8_e5m2_x4 float4_e2m1fn_x4",
     note="MX storage: fp8 x4 = a uint32 word of four fp8 values (byte k = element k), fp4 x4 = "
     "a uint16 word of four fp4 values (nibble k), e8m0 = a uint8 scale byte s worth "
     "2**(s - 127); consumed by nc_matmul_mx / quantize_mx")
_add(_L, "float8_e3m4", note="IEEE-like fp8 (bias 3, inf, max 15.5), rounded as ml_dtypes."
     "float8_e3m4 (RNE or stochastic); Tensor/Vector Engine rates are those of every 1-byte "
     "dtype, and double_row fp8 matmul takes only e4m3/e5m2")
_add(_L, "matmul_mx", NO, "the public NKI reference trnsim follows documents no semantics for "
     "nl.matmul_mx (block layout, scale arguments); use nisa.nc_matmul_mx")

# ---- nki.isa ---------------------------------------------------------------------------------------
_I = "nki.isa"
_add(_I, "nc_matmul nc_transpose activation activation_reduce tensor_reduce "
         "tensor_partition_reduce tensor_tensor tensor_tensor_scan scalar_tensor_tensor "
         "tensor_scalar tensor_scalar_reduce tensor_copy tensor_copy_predicated reciprocal iota "
         "dropout affine_select range_select select_reduce memset bn_stats bn_aggr local_gather "
         "dma_copy dma_transpose max8 nc_find_index8 nc_match_replace8 rng rand2 set_rng_seed "
         "rand_set_state rand_get_state sendrecv core_barrier")
_add(_I, "engine reduce_cmd dge_mode oob_mode matmul_perf_mode dma_engine nc_version "
         "get_nc_version")
_add(_I, "tensor_engine vector_engine scalar_engine gpsimd_engine unknown_engine",
     note="older engine names (nisa.engine members)")
_add(_I, "quantize_mx", note="composed: group amax by a reduce and transposes, the scale "
     "exponent by an exactly corrected log2, an fp8 cast, and the bytes packed with integer "
     "shifts (NKI: one Vector Engine instruction)")
_add(_I, "nc_matmul_mx", note="each fp8 byte plane decoded to float32 and scaled (exact), then "
     "four float32 nc_matmuls into PSUM (NKI: one MX Tensor Engine instruction)")
_add(_I, "tensor_copy_dynamic_src tensor_copy_dynamic_dst", note="src[i_p, off_tile[0, k] + "
     "i_f]: the run-time offset spread over the partitions by a matmul, element indices built "
     "on chip, one GpSimd local_gather (_dst: gather + predicated copy into a contiguous "
     "window)")
_add(_I, "nc_n_gather", note="one GpSimd local_gather after an index offset per partition")
_add(_I, "dma_compute", note="sum of the sources in float32: each source DMAed to SBUF, added "
     "on the Vector Engine, DMAed to dst (NKI: inside the DMA engines); the indirect "
     "(vector_offset) read-modify-write mode raises NotSupportedError")
_add(_I, "register_alloc register_move register_store", note="registers holding values known "
     "at trace time (compile-time ints, other registers): dynamic_range bounds, while "
     "conditions, register_store as a memset")
_add(_I, "register_load", NO, "a register loaded from memory holds a value known only at run "
     "time: " + _REG)
_add(_I, "topk", note="NKI 2.33.0's signature and snake layout (docs/nki.md says which page): "
     "composed of SBUF DMAs and ceil(k/8) rounds of max8 + nc_match_replace8 per 16-partition "
     "group; results largest first; sorted=True raises NotSupportedError")
_add(_I, "nonzero_with_count", note="per active partition (0, 16, ..., 112): a Vector Engine "
     "scan ranks the nonzeros and one Tensor Engine matmul with a one-hot matrix places their "
     "indices (at most 512 elements per partition)")
_add(_I, "nc_stream_shuffle", note="one SBUF/PSUM DMA per run of consecutive partitions of the "
     "shuffle (NKI: one Vector Engine instruction)")
_add(_I, "sequence_bounds", note="two Vector Engine scans, left to right and right to left "
     "(NKI: one GpSimd instruction)")
_add(_I, "exponential", note="one Scalar Engine activation (NKI: Vector Engine, NeuronCore-v4)")
_add(_I, "tensor_scalar_cumulative", note="tensor_scalar + tensor_tensor_scan")
_add(_I, "activate2", note="the tensor-scalar stage as one Vector Engine tensor_scalar, then "
     "one Scalar Engine activation; relu_param and cross-call accumulation raise "
     "NotSupportedError")
_add(_I, "builtin_custom_op", NO,
     "runs a vendor-supplied binary on the GpSimd cores, which trnsim cannot execute")

# ---- nki.compiler ------------------------------------------------------------------------------
_C = "nki.compiler"
_add(_C, "skip_middle_end_transformations enable_stack_allocator force_auto_alloc",
     note="accepted; no effect (the kernel runs as written)")
_add(_C, "sbuf.alloc sbuf.mod_alloc sbuf.auto_alloc psum.alloc psum.mod_alloc psum.auto_alloc",
     note="placements checked against capacity; trnsim allocates")
_add(_C, "sbuf psum")

# ---- nki.collectives -----------------------------------------------------------------------------
_K = "nki.collectives"
_add(_K, "all_reduce all_gather reduce_scatter all_to_all collective_permute "
         "collective_permute_implicit collective_permute_implicit_reduce "
         "collective_permute_implicit_current_processing_rank_id rank_id ReplicaGroup "
         "rg_partition_op")
_add(_K, "all_to_all_v all_gather_v", NO,
     "variable-size collectives need run-time sizes: " + _DYN)


def unsupported(module: str) -> dict:
    """{name: reason} of the names of ``module`` that raise NotSupportedError."""
    return {n: note for m, n, s, note in API if m == module and s == NO}


def coverage() -> tuple[int, int]:
    """(names that work, all names)."""
    return sum(1 for e in API if e[2] == YES), len(API)


def coverage_line() -> str:
    n, m = coverage()
    return f"**Coverage: {n} of {m} names ({100.0 * n / m:.1f}%)** of NKI's public API work."


def table_markdown() -> str:
    """docs/nki.md's generated section: the coverage line and one table per module."""
    out = [coverage_line(), ""]
    modules = []
    for m, *_ in API:
        if m not in modules:
            modules.append(m)
    for m in modules:
        rows = [e for e in API if e[0] == m]
        n = sum(1 for e in rows if e[2] == YES)
        out += [f"### `{m}`: {n} of {len(rows)}", "", "| name | works | note |", "|---|---|---|"]
        for _, name, status, note in rows:
            out.append(f"| `{name}` | {status} | {note.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)


def not_supported_stub(module: str, name: str, reason: str):
    """A callable for an unsupported name: raises NotSupportedError at the kernel line."""
    def _unsupported(*a, **k):
        from . import _context
        from . import errors as _err
        if _context._CTX is not None:
            _context.here()
            raise _context.fail(_err.NotSupportedError, f"{module}.{name} is not supported by "
                                f"trnsim: {reason}")
        raise _err.NotSupportedError(f"{module}.{name} is not supported by trnsim: {reason}")
    _unsupported.__name__ = name
    _unsupported.__qualname__ = name
    _unsupported._not_supported = reason
    return _unsupported
