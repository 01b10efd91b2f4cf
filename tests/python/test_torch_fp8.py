"""fp8 weights on the simulated chip (docs/torch.md, "fp8 weights").

Two ways in: a model that stores its weights as float8 with a scale and dequantizes them in
its forward (``F.linear(x, w.to(bf16) * scale)``, the usual weight-only fp8 pattern), and the
``weights="fp8"`` option, which stores an ordinary model's linear weights as float8_e4m3fn with a
bf16 scale per output channel (``trnsim.torch.fp8_quantize``). Either way the compiler's
fp8_matmul pass makes the matmul read the fp8 weight (1 byte per element in HBM) and scale its
fp32 sums per output column before the one rounding to the output dtype.

Tolerances (derived from the dtypes):
- against float64 of the same fp8 values and scales: the chip's error is the output's one
  rounding (bf16: 2**-8 relative) plus fp32 accumulation (a few 2**-24 of sum |x w|), so
  ``|out - ref| <= 2**-8 |ref| + 1e-5 sum|x w|`` elementwise (fp32 outputs: 1e-5 of the max);
- against PyTorch's own bf16 forward, which rounds each dequantized weight to bf16 (2**-9) and
  its output (2**-8): max error <= 2**-6 of the output's max;
- a transformers model with weights="fp8" against its fp32 logits: e4m3 keeps 3 mantissa bits
  (relative rounding up to 2**-4 per weight, random in sign), measured 0.051 of the logits'
  max for the tiny Llama; bound 0.1, and top-1 agreement >= 90% (random-weight logits are
  close together: the bf16 model agrees on 100%, fp8 on 95.5% of positions).
"""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trnsim._trnsim")

import torch.nn.functional as F  # noqa: E402

import trnsim.torch as tt  # noqa: E402
from torch_checks import compiled, err  # noqa: E402

pytestmark = pytest.mark.usefixtures("module_cache_dir")


class Fp8Linear(torch.nn.Module):
    """A linear layer as weight-only fp8 code writes it: fp8 weight and a scale as buffers,
    dequantized in the forward."""

    def __init__(self, w, bias, *, fp8=torch.float8_e4m3fn, per_channel=True,
                 dtype=torch.bfloat16):
        super().__init__()
        top = 448.0 if fp8 == torch.float8_e4m3fn else 57344.0
        amax = w.abs().amax(dim=1, keepdim=True) if per_channel else w.abs().amax()
        scale = (amax / top).to(dtype)
        self.register_buffer("weight", (w / scale.float()).to(fp8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.to(dtype))
        self.dtype = dtype

    def forward(self, x):
        return F.linear(x, self.weight.to(self.dtype) * self.scale, self.bias)

    def dequantized(self):
        return self.weight.double() * self.scale.double()


def _exact_ref(x, w, bias):
    ref = x.double() @ w.T
    absum = x.double().abs() @ w.abs().T
    if bias is not None:
        ref = ref + bias.double()
    return ref, absum


@pytest.mark.parametrize("fp8,per_channel,bias,chip", [
    (torch.float8_e4m3fn, True, True, "trn2"),
    (torch.float8_e4m3fn, False, False, "trn2"),
    (torch.float8_e5m2, True, False, "trn2"),
    (torch.float8_e4m3fn, True, True, "trn1"),
])
def test_fp8_weight_module_matches_pytorch(ir_texts, capsys, fp8, per_channel, bias, chip):
    torch.manual_seed(0)
    w = torch.randn(104, 72) * 0.1
    b = torch.randn(104) if bias else None
    m = Fp8Linear(w, b, fp8=fp8, per_channel=per_channel).eval()
    x = torch.randn(2, 5, 72).to(torch.bfloat16)
    with torch.no_grad():
        out = compiled(m, chip=chip, print_after=["fp8_matmul"])(x)
        eager = m(x)
    # The matmul reads the fp8 buffer: nothing casts or scales the weight on the chip.
    after = capsys.readouterr().out.split("// IR after fp8_matmul:")[-1]
    ir = "f8e4m3" if fp8 == torch.float8_e4m3fn else "f8e5m2"
    assert "mm(" in after and "_to_copy" not in after and f"{ir}[104, 72] param" in after
    ref, absum = _exact_ref(x, m.dequantized(), m.bias)
    diff = (out.double() - ref).abs()
    assert (diff <= 2.0 ** -8 * ref.abs() + 1e-5 * absum + 1e-30).all(), diff.max()
    assert err(out, eager) <= 2.0 ** -6
    # HBM: the weight counts 1 byte per element.
    mem = tt.last_run().step()["memory"]["weights"]
    scale_bytes = m.scale.numel() * 2
    bias_bytes = 0 if b is None else 104 * 2
    assert mem == 104 * 72 + scale_bytes + bias_bytes


def test_fp8_weight_stored_in_out_is_read_as_stored(capsys):
    """``x @ (w.to(bf16) * s)`` with w [in, out] and s [out]: no transpose at all."""
    torch.manual_seed(1)
    q = (torch.randn(72, 40) * 50).to(torch.float8_e4m3fn)
    s = (torch.rand(40) * 0.01 + 0.001).to(torch.bfloat16)

    def f(x, q, s):
        return x @ (q.to(torch.bfloat16) * s)

    x = torch.randn(11, 72).to(torch.bfloat16)
    out = compiled(f, print_after=["fp8_matmul"])(x, q, s)
    after = capsys.readouterr().out.split("// IR after fp8_matmul:")[-1]
    assert "mm(" in after and "transpose_b" not in after and "mul(" not in after
    ref, absum = _exact_ref(x, (q.double() * s.double()).T, None)
    assert ((out.double() - ref).abs() <= 2.0 ** -8 * ref.abs() + 1e-5 * absum).all()


def test_weights_option_fp32_mlp():
    """weights="fp8" on an fp32 MLP: the values are those of the same model with its linear
    weights replaced by fp8_quantize's dequantized values (fp32: 1e-5 of the max)."""
    torch.manual_seed(2)
    mlp = torch.nn.Sequential(torch.nn.Linear(72, 104), torch.nn.GELU(),
                              torch.nn.Linear(104, 40, bias=False)).eval()
    x = torch.randn(2, 5, 72)
    with torch.no_grad():
        out = compiled(mlp, weights="fp8")(x)
        ref_model = torch.nn.Sequential(torch.nn.Linear(72, 104), torch.nn.GELU(),
                                        torch.nn.Linear(104, 40, bias=False)).double().eval()
        ref_model.load_state_dict(mlp.state_dict())
        for lin in (ref_model[0], ref_model[2]):
            q, s = tt.fp8_quantize(lin.weight)
            assert q.dtype == torch.float8_e4m3fn and s.dtype == torch.bfloat16
            assert (q.float().abs().amax(dim=1) <= 448).all()
            lin.weight.copy_(q.double() * s.double())
        ref = ref_model(x.double())
        full = mlp(x)
    assert err(out, ref) <= 1e-5
    assert err(full, ref) > 1e-3  # the fp8 weights do change the values
    # Weights in HBM: fp8 values, bf16 scales, the fp32 bias as it is.
    assert tt.last_run().step()["memory"]["weights"] == 72 * 104 + 104 * 2 + 104 * 4 + 104 * 40 \
        + 40 * 2


def test_weights_option_through_torch_export():
    """trnsim.torch.compile (torch.export) takes the option too: the same values as the
    Dynamo path (same quantization, same programs)."""
    torch.manual_seed(4)
    lin = torch.nn.Linear(72, 40).eval()
    x = torch.randn(3, 72)
    with torch.no_grad():
        exported = tt.compile(lin, (x,), weights="fp8")(x)
        dynamo = compiled(lin, weights="fp8")(x)
        q, s = tt.fp8_quantize(lin.weight)
        ref = x.double() @ (q.double() * s.double()).T + lin.bias.double()
    assert err(exported, ref) <= 1e-5
    assert torch.equal(exported, dynamo)


def test_weights_option_requantizes_a_changed_weight():
    torch.manual_seed(3)
    lin = torch.nn.Linear(72, 40, bias=False).eval()
    c = compiled(lin, weights="fp8")
    x = torch.randn(4, 72)
    with torch.no_grad():
        first = c(x)
        lin.weight.mul_(2.0)
        second = c(x)
    assert err(second, 2 * first) <= 1e-5


@pytest.fixture(scope="module")
def llama_runs():
    """The tiny Llama (torch_models.py) in bf16 on trn2, its weights as they are and with
    weights="fp8"; and its fp32 logits on the CPU."""
    pytest.importorskip("transformers")
    import torch_models as tm

    ids = tm.input_ids()
    ref = tm.logits(tm.build("llama"), ids)
    runs = {}
    for mode in ("bf16", "fp8"):
        model = tm.build("llama", dtype=torch.bfloat16)
        opts = {"chip": "trn2"}
        if mode == "fp8":
            opts["weights"] = "fp8"
        torch._dynamo.reset()
        c = torch.compile(model, backend="trnsim", dynamic=False, options=opts)
        logits = tm.logits(c, ids)
        weights = [p for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n]
        runs[mode] = dict(logits=logits, step=tt.last_run().step(),
                          linear=sum(p.numel() for p in weights),
                          out_channels=sum(p.shape[0] for p in weights),
                          embedding=model.model.embed_tokens.weight.numel())
    torch._dynamo.reset()
    return ref, runs


def test_llama_fp8_weights_logits_close_to_fp32(llama_runs):
    ref, runs = llama_runs
    for mode, bound, top1 in (("bf16", 0.02, 1.0), ("fp8", 0.1, 0.9)):
        got = runs[mode]["logits"]
        assert err(got, ref) <= bound, mode
        agree = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
        assert agree >= top1, (mode, agree)
    assert err(runs["fp8"]["logits"], ref) > err(runs["bf16"]["logits"], ref)


def test_llama_fp8_weights_halve_the_linear_weight_bytes(llama_runs):
    _, runs = llama_runs
    bf16, fp8 = runs["bf16"], runs["fp8"]
    # The rest (embedding, norms' weights, RoPE's inv_freq) stays bf16 in both.
    other = bf16["step"]["memory"]["weights"] - 2 * bf16["linear"]
    assert 2 * bf16["embedding"] <= other < 2 * bf16["embedding"] + 2000
    # Linear weights 1 byte per element plus a bf16 scale per output channel.
    assert fp8["step"]["memory"]["weights"] == fp8["linear"] + 2 * fp8["out_channels"] + other
    # Every weight is read once per forward: HBM reads drop by about the linear bytes saved.
    saved = bf16["step"]["hbm_read_bytes"] - fp8["step"]["hbm_read_bytes"]
    assert saved >= 0.8 * (bf16["linear"] - 2 * fp8["out_channels"]), saved


def test_llama_fp8_weights_tensor_engine_time(llama_runs):
    """Weight-only fp8 with bf16 activations: TensorE runs at the bf16 rate (the fp8 rate,
    double_row on trn2, needs both operands fp8) and reads the weights as stored; the only
    TensorE work added is the broadcast of each block's scales (one single-pass matmul of
    [1, 128] x [1, N] per 512 columns). So TensorE time stays within that of bf16 plus that
    broadcast, and the step is not slower."""
    _, runs = llama_runs

    def tensor_ns(step):
        return step["engine_busy_percent"].get("tensor", 0.0) * step["simulated_ns"] / 100

    bf16, fp8 = runs["bf16"]["step"], runs["fp8"]["step"]
    matmuls = 7 * 2 + 1  # q k v o gate up down per layer, the LM head
    broadcast_ns = matmuls * 2 * (64 + 131) / 1.4  # generous: <= 2 chunks, fixed cost, ~1.4 GHz
    assert tensor_ns(fp8) <= tensor_ns(bf16) + broadcast_ns
    assert fp8["simulated_ns"] <= 1.01 * bf16["simulated_ns"]


def test_weights_option_errors():
    with pytest.raises(tt.OptionsError, match="weights"):
        tt.compile(torch.nn.Linear(2, 2), (torch.randn(1, 2),), weights="int4")
    lin = torch.nn.Linear(8, 8)
    with pytest.raises(Exception) as info:  # Dynamo wraps it in BackendCompilerFailed
        compiled(lin, weights="fp8")(torch.randn(2, 8, requires_grad=True)).sum().backward()
    inner = getattr(info.value, "inner_exception", info.value)
    assert isinstance(inner, tt.OptionsError) and "inference" in str(inner)
