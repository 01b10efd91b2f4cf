"""fp8 weights (``options={"weights": "fp8"}``): which parameters are linear-layer weights, and
the quantization recipe.

A parameter qualifies when it is a 2-D float tensor that the graph reads only as a matmul's
weight: ``mm``/``addmm``'s second operand, either through ``permute(w, [1, 0])`` (``F.linear``:
w is ``[out, in]``) or as stored (``x @ w``: w is ``[in, out]``). It is stored in simulated HBM
as ``float8_e4m3fn`` with one bf16 scale per output channel, ``scale = amax(|w|) / 448`` over
the input dim (448 is e4m3's largest finite value) rounded up to bf16,
``q = (w / scale).to(float8_e4m3fn)``,
laid out ``[in, out]`` (an ``[out, in]`` weight is transposed once, on the host, when it is
uploaded: TensorE wants the contraction dim on partitions, and the chip has no DMA transpose
for 1-byte elements, so a weight stored ``[out, in]`` would be transposed on TensorE at every
call; Neuron's inference stack also lays weights out at load time). The IR dequantizes it as
PyTorch code would (``(q.float() * scale).to(dtype)``, transposed back with a permute that
cancels the model's own), and the compiler's fp8_matmul pass turns that back into a matmul
reading q and scaling its output columns. A parameter read in any other way (an embedding tied to the LM head, a norm's
weight, a bias) keeps its dtype.
"""

from __future__ import annotations

import torch

#: e4m3's largest finite value.
E4M3_MAX = 448.0

_MATMULS = (torch.ops.aten.mm.default, torch.ops.aten.addmm.default)


def fp8_quantize(w: torch.Tensor, dim: int = -1):
    """``(q, scale)`` with ``q`` float8_e4m3fn and ``scale`` bfloat16 such that
    ``q.float() * scale.float()`` approximates ``w``: one scale per slice along `dim` reduced
    (``dim=-1``, the default: one per row of an ``[out, in]`` linear weight),
    ``scale = amax(|w|) / 448`` rounded up to bf16 (so ``|w| / scale <= 448``; 1 for an all-zero
    slice), ``q = w / scale`` rounded to nearest even. The recipe trnsim's ``weights="fp8"``
    option applies to each linear weight. (bf16 scales: the matmul broadcasts a block's scales
    over the output partitions with one single-pass bf16 TensorE matmul; fp32 would take four.)"""
    w32 = w.detach().to(torch.float32)
    amax = w32.abs().amax(dim=dim, keepdim=True)
    # bf16 rounds to nearest within 2**-9: scaling up by 2**-8 first rounds up.
    scale = torch.where(amax > 0, amax / E4M3_MAX * (1 + 2.0 ** -8), torch.ones_like(amax))
    scale = scale.to(torch.bfloat16)
    q = (w32 / scale.float()).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, scale


def _reads_as_weight(user: torch.fx.Node, node: torch.fx.Node) -> bool:
    """Whether `user` is mm/addmm reading `node` as its second operand (and only there)."""
    if user.target not in _MATMULS:
        return False
    b = 1 if user.target is torch.ops.aten.mm.default else 2
    return len(user.args) > b and user.args[b] is node and all(
        a is not node for i, a in enumerate(user.args) if i != b)


def weight_layout(node: torch.fx.Node, val) -> str | None:
    """``"transposed"`` for an ``[out, in]`` weight read through permute [1, 0], ``"stored"``
    for an ``[in, out]`` one read as it is, None when the parameter is not only a weight."""
    if not isinstance(val, torch.Tensor) or val.dim() != 2 or not val.is_floating_point() \
            or val.dtype in (torch.float8_e4m3fn, torch.float8_e5m2) or not node.users:
        return None
    layouts = set()
    for u in node.users:
        if u.target is torch.ops.aten.permute.default and list(u.args[1]) == [1, 0] \
                and u.users and all(_reads_as_weight(m, u) for m in u.users):
            layouts.add("transposed")
        elif _reads_as_weight(u, node):
            layouts.add("stored")
        else:
            return None
    return layouts.pop() if len(layouts) == 1 else None


class Fp8Weight:
    """The upload transforms of one parameter: its fp8 values ``[in, out]`` and its scales
    ``[1, out]``, computed once per tensor state (the runtime asks for both when the parameter
    changes)."""

    def __init__(self, layout: str):
        self.transposed = layout == "transposed"
        self._key = None
        self._parts = None

    def _quantized(self, t: torch.Tensor):
        try:
            version = t._version
        except RuntimeError:
            version = None
        key = (id(t), t.data_ptr(), version)
        if key != self._key:
            q, s = fp8_quantize(t, -1 if self.transposed else 0)
            if self.transposed:
                q, s = q.t().contiguous(), s.t().contiguous()
            self._parts = (q, s)
            self._key = key
        return self._parts

    def values(self, t: torch.Tensor) -> torch.Tensor:
        return self._quantized(t)[0]

    def scales(self, t: torch.Tensor) -> torch.Tensor:
        return self._quantized(t)[1]
