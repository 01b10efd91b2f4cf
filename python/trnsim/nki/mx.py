"""Microscaling (MX, OCP MX v1.0) for nki.isa.nc_matmul_mx / quantize_mx, composed of simulator
instructions (the simulator has no MX datapath; the values are exact, the timeline shows the
parts).

Representation (docs/nki.md, "MX formats"):
- ``float8_e4m3fn_x4`` / ``float8_e5m2_x4`` tiles are uint32 words, each packing four fp8
  values, element k of the four in byte k (little-endian), the four consecutive along the
  contraction axis (NKI: "the x4 dimension within each packed element").
- ``float8_e8m0fnu`` scales are uint8 bytes s, value 2**(s - 127).
- A scale group is 8 partitions x one x4 element (32 values). Scales of a data tile spanning
  quadrant q (32 partitions) sit at scale partitions q*32 + g, g = 0..3 the 8-partition group;
  a data tile of 32 partitions or fewer takes a 4-partition scale tile (partition g).

nc_matmul_mx decodes each byte plane of each operand to float32 (integer shifts and masks, then
sign * mantissa * 2**exponent with an exact pow), multiplies by the group's scale (spread over
its 8 partitions by a 0/1 matmul: exact), and accumulates the four planes' nc_matmuls in PSUM.
Each decoded value is an fp8 value times a power of two, so it is exact in float32.
"""

from __future__ import annotations

import numpy as _np

from . import _context, _dtypes, _isa_base, _names, _outputs, _tile
from . import errors as _err
from ._names import ALU as _ALU
from ._names import PSUM as _PSUM
from ._tile import NkiTensor
from ._context import here as _here

# format -> (exponent bits, mantissa bits, bias, largest exponent of a normal value)
_FP8 = {"float8_e4m3fn_x4": (4, 3, 7, 8), "float8_e5m2_x4": (5, 2, 15, 15),
        "float4_e2m1fn_x4": (2, 1, 1, 2)}
_GROUP = 8      # partitions of one scale group
_QUAD = 32      # partitions of an SBUF quadrant
_E8M0_BIAS = 127


def fmt_of(t, what):
    name = getattr(t.dtype, "name", None)
    if name not in _FP8:
        raise _context.fail(_err.NkiTypeError,
                            f"{what} must be a float8_e4m3fn_x4, float8_e5m2_x4 or "
                            f"float4_e2m1fn_x4 tile (declare it "
                            f"with that dtype: nl.ndarray(shape, dtype=nl.float8_e4m3fn_x4, "
                            f"buffer=nl.sbuf)), not {t.dtype!r}")
    return name


def _ts(b, dst, src, op0, s0, op1=None, s1=None, r0=False):
    """dst = (src <op0> s0) [<op1> s1] on the Vector Engine (r0: s0 <op0> src)."""
    if isinstance(s0, NkiTensor):
        s0 = s0._pattern()
    if isinstance(s1, NkiTensor):
        s1 = s1._pattern()
    b.tensor_scalar(dst._pattern(), src._pattern(), _ALU[op0], s0, _ALU[op1] if op1 else 0, s1,
                    r0, False, _names.VECTOR)


def _tt(b, dst, x, y, op):
    b.tensor_tensor(dst._pattern(), x._pattern(), y._pattern(), _ALU[op], _names.VECTOR)


def _f32(shape):
    return _tile.new_tile(shape, "float32")


def _u32(shape):
    return _tile.new_tile(shape, "uint32")


def _pow2(b, dst, e):
    """dst = 2 ** e (exact for integer e)."""
    _ts(b, dst, e, "pow", 2.0, r0=True)


def _decode_plane(b, words, k, fmt):
    """float32 values of element k of each packed word (bits w*k .. w*k + w-1, w = 8 for fp8
    and 4 for fp4)."""
    ebits, mbits, bias, _ = _FP8[fmt]
    w = 1 + ebits + mbits
    shape = tuple(words.shape)
    field = _u32(shape)
    vals = []
    for shift, mask in ((w * k + mbits, (1 << ebits) - 1), (w * k, (1 << mbits) - 1),
                        (w * k + w - 1, 1)):
        _ts(b, field, words, "logical_right_shift", float(shift), "bitwise_and", float(mask))
        v = _f32(shape)
        b.tensor_copy(v._pattern(), field._pattern(), _names.VECTOR)
        vals.append(v)
    e, m, s = vals
    # mantissa with the hidden bit of a normal value: m + 2**mbits * (e > 0)
    hid = _f32(shape)
    _ts(b, hid, e, "is_gt", 0.0, "multiply", float(1 << mbits))
    _tt(b, m, m, hid, "add")
    # 2 ** (max(e, 1) - bias - mbits)
    _ts(b, e, e, "max", 1.0, "subtract", float(bias + mbits))
    _pow2(b, hid, e)
    _tt(b, m, m, hid, "multiply")
    # sign: 1 - 2 s
    _ts(b, s, s, "multiply", -2.0, "add", 1.0)
    _tt(b, m, m, s, "multiply")
    return m


def _spread_scales(b, scale, parts, cols):
    """[parts, cols] float32: scale value 2**(s - 127) of each data partition's group, the
    groups' scale rows gathered by DMA (only the partitions that hold scales are read) and
    spread over their 8 partitions by a 0/1 selection matmul (exact)."""
    sp = scale.partitions
    want = parts if parts > _QUAD else _QUAD // _GROUP
    if sp != want and not (parts <= _QUAD and sp == parts):
        raise _context.fail(_err.VerifyError,
                            f"MX scale tile spans {sp} partitions; for data over {parts} partitions "
                            f"it must span {want} (NKI: 4 for one quadrant, else the data's)")
    G = (parts + _GROUP - 1) // _GROUP
    sval = _f32((G, cols))
    for g in range(G):
        q, r = divmod(g, _QUAD // _GROUP)
        row = q * _QUAD + r
        b.dma_copy(sval[g:g + 1, :]._pattern(), scale[row:row + 1]._pattern(), -1, None, 0,
                   False)
    _ts(b, sval, sval, "subtract", float(_E8M0_BIAS))
    _pow2(b, sval, sval)
    sel = _np.zeros((G, parts), _np.float32)
    sel[_np.arange(parts) // _GROUP, _np.arange(parts)] = 1.0
    selt = _f32((G, parts))
    b.dma_copy(selt._pattern(), _tile.new_constant(sel, "float32")._pattern(), -1, None, 0, False)
    out = _tile.new_tile((parts, cols), "float32", _PSUM)
    b.nc_matmul(out._pattern(), selt._pattern(), sval._pattern(), False, False, False)
    res = _f32((parts, cols))
    b.tensor_copy(res._pattern(), out._pattern(), _names.VECTOR)
    return res


def dequantized_planes(b, data, scale, what):
    """The four float32 [P, F] planes (byte k of every word) of an x4 tile times its scales."""
    fmt = fmt_of(data, what)
    if data.ndim != 2:
        raise _context.fail(_err.VerifyError, f"{what}: an MX tile is 2-D [partitions, x4 "
                            f"elements], not {list(data.shape)}")
    P, F = data.shape
    if P % _QUAD and P > _QUAD:
        raise _context.fail(_err.VerifyError, f"{what}: {P} partitions; MX data spans whole "
                            "quadrants (32, 64, 96 or 128 partitions)")
    if tuple(scale.shape[1:]) != (F,) and scale.free_size != F:
        raise _context.fail(_err.VerifyError, f"{what} scale: {scale.free_size} scales per "
                            f"partition for {F} x4 elements; one scale per x4 element column")
    sc = _spread_scales(b, scale, P, F)
    if _dtypes.dtname(fmt) != "uint32":  # fp4 x4: 16-bit words, widened once
        wide = _u32((P, F))
        b.tensor_copy(wide._pattern(), data._pattern(), _names.VECTOR)
        data = wide
    planes = []
    for k in range(4):
        v = _decode_plane(b, data, k, fmt)
        _tt(b, v, v, sc, "multiply")
        planes.append(v)
    return planes


def nc_matmul_mx(dst, stationary, moving, stationary_scale, moving_scale, tile_position=None,
                 tile_size=None, accumulate=None, name=None, **kw):
    """dst[M, N] (+)= dequant(stationary)[K, M].T @ dequant(moving)[K, N], K = partitions x 4.

    tile_position / tile_size (row tiling) place the work on the PE array; values are the same.
    accumulate as nisa.nc_matmul (None: accumulate when dst already holds a matmul result).
    """
    b = _here()
    for t, what in ((dst, "dst"), (stationary, "stationary"), (moving, "moving"),
                    (stationary_scale, "stationary_scale"), (moving_scale, "moving_scale")):
        if not isinstance(t, NkiTensor):
            raise _context.fail(_err.NkiTypeError, f"nc_matmul_mx: {what} must be a tile")
    if stationary.partitions != moving.partitions:
        raise _context.fail(_err.VerifyError,
                            f"nc_matmul_mx: stationary ({stationary.partitions} partitions) and "
                            f"moving ({moving.partitions}) must contract over the same partitions")
    st = dequantized_planes(b, stationary, stationary_scale, "nc_matmul_mx stationary")
    mv = dequantized_planes(b, moving, moving_scale, "nc_matmul_mx moving")
    M, N = st[0].shape[1], mv[0].shape[1]
    if dst.partitions != M or dst.free_size != N:
        raise _context.fail(_err.VerifyError,
                            f"nc_matmul_mx: dst must be [{M}, {N}] (stationary's free size x "
                            f"moving's), not {list(dst.shape)}")
    fp32 = _dtypes.dtname(dst.dtype) == "float32"
    target = dst if fp32 else _tile.new_tile((M, N), "float32", _PSUM)
    for k in range(4):
        acc = (accumulate if fp32 else False) if k == 0 else True
        _isa_base.nc_matmul(dst=target, stationary=st[k], moving=mv[k], accumulate=acc)
    if not fp32:
        b = _here()
        if accumulate:
            b.tensor_tensor(dst._pattern(), dst._pattern(), target._pattern(), _ALU["add"],
                            _names.VECTOR)
        else:
            b.tensor_copy(dst._pattern(), target._pattern(), _names.VECTOR)
    _outputs.mark_written(dst)
    return dst


def _floor_log2(b, dst, a):
    """dst = floor(log2(a)) for a > 0, exact: an estimate from ln, then corrected by exact
    comparisons with powers of two."""
    shape = tuple(a.shape)
    ln = _f32(shape)
    b.activation(ln._pattern(), _names.ACT["log"], a._pattern(), None, 1.0, 0, None)
    _ts(b, ln, ln, "multiply", 1.0 / _np.log(2.0))
    frac = _f32(shape)
    _ts(b, frac, ln, "mod", 1.0)
    _tt(b, dst, ln, frac, "subtract")
    p = _f32(shape)
    c = _f32(shape)
    _ts(b, c, dst, "add", 1.0)
    _pow2(b, p, c)
    _tt(b, c, a, p, "is_ge")       # a >= 2**(e + 1): one more
    _tt(b, dst, dst, c, "add")
    _pow2(b, p, dst)
    _tt(b, c, a, p, "is_lt")       # a < 2**e: one less
    _tt(b, dst, dst, c, "subtract")


def _transpose32(b, dst, src):
    """dst[F, P] = src[P, F] (float32, F and P <= 128) through PSUM."""
    t = _tile.new_tile((src.shape[1], src.shape[0]), "float32", _PSUM)
    b.nc_transpose(t._pattern(), src._pattern(), _names.TENSOR)
    b.tensor_copy(dst._pattern(), t._pattern(), _names.VECTOR)


def _repeat_last(t, n):
    """A view of the on-chip tile t [..., k] as [..., k, n] repeating each element n times."""
    return NkiTensor(t._rec, tuple(t.shape) + (n,), t.dtype, t._off, tuple(t._st) + (0,), t._pd)


def quantize_mx(dst, src, dst_scale, name=None, **kw):
    """MXFP8 quantization of src [P, F] (fp16/bf16) into dst [P, F/4] (x4) and dst_scale.

    Per group (8 partitions x 4 consecutive elements): amax = max |x|; scale byte
    s = clamp(floor(log2(amax)) - emax + 1 + 127, 0, 254) (NKI: "a block scale two times
    larger" than OCP's floor(log2(amax)) - emax; emax = 8 for e4m3fn, 15 for e5m2; an all-zero
    group gets s = 0); dst = fp8(x / 2**(s - 127)) rounded to nearest even.
    """
    from . import language as _nl
    b = _here()
    for t, what in ((dst, "dst"), (src, "src"), (dst_scale, "dst_scale")):
        if not isinstance(t, NkiTensor):
            raise _context.fail(_err.NkiTypeError, f"quantize_mx: {what} must be a tile")
    fmt = fmt_of(dst, "quantize_mx dst")
    if fmt not in ("float8_e4m3fn_x4", "float8_e5m2_x4"):
        raise _context.fail(_err.VerifyError, f"quantize_mx: dst must be float8_e4m3fn_x4 or "
                            f"float8_e5m2_x4 (NKI quantizes to MXFP8 only), not {fmt}")
    ebits, mbits, bias, emax = _FP8[fmt]
    if _dtypes.dtname(src.dtype) not in ("float16", "bfloat16"):
        raise _context.fail(_err.VerifyError, f"quantize_mx: src must be float16 or bfloat16, not "
                            f"{_dtypes.dtname(src.dtype)}")
    if src.ndim != 2 or src.shape[0] % _QUAD or src.shape[0] > 128 or src.shape[1] % 4:
        raise _context.fail(_err.VerifyError,
                            f"quantize_mx: src must be [P, F] with P a multiple of 32 (<= 128) and F "
                            f"a multiple of 4, not {list(src.shape)}")
    P, F = src.shape
    C = F // 4
    if tuple(dst.shape) != (P, C):
        raise _context.fail(_err.VerifyError, f"quantize_mx: dst must be [{P}, {C}] (four fp8 "
                            f"values per x4 element), not {list(dst.shape)}")
    sp = _QUAD // _GROUP if P == _QUAD else P
    if dst_scale.partitions != sp or dst_scale.free_size != C:
        raise _context.fail(_err.VerifyError, f"quantize_mx: dst_scale must span {sp} partitions "
                            f"with {C} scales each, not {list(dst_scale.shape)}")
    G = P // _GROUP
    # |x| and its max over each x4 element's 4 values
    a = _f32((P, F))
    _ts(b, a, src, "abs_max", 0.0)
    m1 = _f32((P, C))
    _nl._reduce(a.reshape((P, C, 4)), "max", 2, "float32", False, False, out=m1)
    inv = _f32((P, C))   # 1 / scale per (partition, x4 element)
    for c0 in range(0, C, 128):
        c = min(128, C - c0)
        mt = _f32((c, P))
        _transpose32(b, mt, m1[:, c0:c0 + c])
        gm = _f32((c, G))  # amax per group
        _nl._reduce(mt.reshape((c, G, _GROUP)), "max", 2, "float32", False, False, out=gm)
        _ts(b, gm, gm, "max", 2.0 ** -149)
        e = _f32((c, G))
        _floor_log2(b, e, gm)
        s = _f32((c, G))   # the scale byte
        _ts(b, s, e, "add", float(_E8M0_BIAS + 1 - emax), "max", 0.0)
        _ts(b, s, s, "min", 254.0)
        # scale bytes to dst_scale: group (q, g) -> partition q*32 + g
        st = _f32((G, c))
        _transpose32(b, st, s)
        for g in range(G):
            q, r = divmod(g, _QUAD // _GROUP)
            row = q * _QUAD + r if sp > _QUAD // _GROUP else r
            b.dma_copy(dst_scale[row:row + 1, c0:c0 + c]._pattern(),
                       st[g:g + 1, :]._pattern(), -1, None, 0, False)
        # 1 / scale = 2**(127 - s), spread over the group's 8 partitions
        _ts(b, s, s, "multiply", -1.0, "add", float(_E8M0_BIAS))
        _pow2(b, s, s)
        wide = _f32((c, P))
        b.tensor_copy(wide.reshape((c, G, _GROUP))._pattern(), _repeat_last(s, _GROUP)._pattern(),
                      _names.VECTOR)
        _transpose32(b, inv[:, c0:c0 + c], wide)
    _outputs.mark_written(dst_scale)
    # quantize: fp8(x / scale), then back to float32 (exact) to encode the bytes
    q = _f32((P, F))
    _tt(b, q.reshape((P, C, 4)), src.reshape((P, C, 4)), _repeat_last(inv, 4), "multiply")
    f8 = _tile.new_tile((P, F), "float8_e4m3" if fmt == "float8_e4m3fn_x4" else "float8_e5m2")
    b.tensor_copy(f8._pattern(), q._pattern(), _names.VECTOR)
    b.tensor_copy(q._pattern(), f8._pattern(), _names.VECTOR)
    byte = _encode_fp8(b, q, mbits, bias)
    # pack byte k of each group of 4 into bits 8k..8k+7 of the word
    bu = _u32((P, F))
    b.tensor_copy(bu._pattern(), byte._pattern(), _names.VECTOR)
    planes = bu.reshape((P, C, 4))
    sh = _u32((P, C))
    b.tensor_copy(dst._pattern(), planes[:, :, 0]._pattern(), _names.VECTOR)
    for k in range(1, 4):
        _ts(b, sh, planes[:, :, k], "left_shift", float(8 * k))
        _tt(b, dst, dst, sh, "bitwise_or")
    _outputs.mark_written(dst)
    return dst


def _encode_fp8(b, v, mbits, bias):
    """The fp8 byte (as float32) of each value of v (float32 values exactly representable in
    the format): sign * 128 + exponent field * 2**mbits + mantissa field."""
    shape = tuple(v.shape)
    sgn = _f32(shape)   # 1 / v keeps the sign of a zero (-0.0 -> -inf): the sign bit of -0
    _ts(b, sgn, v, "divide", 1.0, r0=True)
    _ts(b, sgn, sgn, "is_lt", 0.0, "multiply", 128.0)
    a = _f32(shape)
    _ts(b, a, v, "abs_max", 0.0)
    tiny = 2.0 ** (1 - bias)            # smallest normal
    normal = _f32(shape)
    _ts(b, normal, a, "is_ge", tiny)
    ac = _f32(shape)
    _ts(b, ac, a, "max", tiny)
    e = _f32(shape)
    _floor_log2(b, e, ac)               # >= 1 - bias
    # mantissa field: a * 2**(mbits - e) - 2**mbits * normal
    t = _f32(shape)
    _ts(b, t, e, "multiply", -1.0, "add", float(mbits))
    _pow2(b, t, t)
    _tt(b, t, t, a, "multiply")
    m = _f32(shape)
    _ts(b, m, normal, "multiply", float(-(1 << mbits)))
    _tt(b, m, m, t, "add")
    # exponent field: (e + bias) * normal, times 2**mbits
    _ts(b, e, e, "add", float(bias), "multiply", float(1 << mbits))
    _tt(b, e, e, normal, "multiply")
    _tt(b, m, m, e, "add")
    _tt(b, m, m, sgn, "add")
    return m
