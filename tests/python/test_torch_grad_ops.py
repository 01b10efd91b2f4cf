"""The ops that training graphs add to the forward ones, through ``torch.compile(fn,
backend="trnsim")`` against PyTorch on the CPU: attention's backward (and the forward's
logsumexp it reads), index_put (embedding's backward, with repeated indices), scatter
(cross-entropy's and top-k's backward), scatter_add (gather's backward), slice_scatter / select_scatter (the backward of
slicing), copy and prims.fma (optimizer steps), native_dropout.

Each test checks that the op really is in a graph that ran on trnsim (the IR text the
compiler got) and compares with PyTorch CPU in fp32: max |out - ref| / max |ref| <= 1e-4.
bf16 attention backward on trn2 goes through the library's flash kernel; its bound is stated
there. Shapes are odd on purpose (not multiples of 128).
"""
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from torch_checks import assert_ran, compiled, err  # noqa: E402

TOL = 1e-4
BF16_ULP = 2.0 ** -7


pytestmark = pytest.mark.usefixtures("module_cache_dir")


def grads_of(fn, inputs, cotangent_seed=0, dtype=None):
    """fn(*inputs) and the gradients of every input that requires grad for a random
    cotangent; `dtype` casts the inputs first (the leaves stay the ones given)."""
    for x in inputs:
        x.grad = None
    out = fn(*[x.to(dtype) if dtype and x.is_floating_point() else x for x in inputs])
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(cotangent_seed)).to(
        out.dtype)
    out.backward(g)
    return out.detach(), [x.grad.clone() for x in inputs if x.requires_grad]


# ---- attention backward ----

def _attn_inputs(B, H, Hkv, Sq, Sk, D, seed=0, mask=None):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Sq, D, generator=g).requires_grad_()
    k = torch.randn(B, Hkv, Sk, D, generator=g).requires_grad_()
    v = torch.randn(B, Hkv, Sk, D, generator=g).requires_grad_()
    if mask == "bool":
        m = torch.rand(Sq, Sk, generator=g) > 0.3
        m[:, 0] = True
        return [q, k, v, m]
    if mask == "float":
        return [q, k, v, torch.randn(B, 1, Sq, Sk, generator=g)]
    return [q, k, v]


ATTN_CASES = [
    # id, fn, (B, H, Hkv, Sq, Sk, D), mask
    ("causal_gqa", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=True, enable_gqa=True), (2, 4, 2, 37, 37, 16), None),
    ("causal_more_queries", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=0.3), (1, 3, 3, 45, 29, 8), None),
    ("float_mask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
     (2, 2, 2, 19, 23, 12), "float"),
    ("bool_mask_gqa", lambda q, k, v, m: F.scaled_dot_product_attention(
        q, k, v, attn_mask=m, enable_gqa=True), (1, 6, 2, 21, 21, 12), "bool"),
]


@pytest.mark.parametrize("cid,fn,dims,mask", ATTN_CASES, ids=[c[0] for c in ATTN_CASES])
def test_attention_backward_fp32(ir_texts, cid, fn, dims, mask):
    inputs = _attn_inputs(*dims, mask=mask)
    out, grads = grads_of(compiled(fn), inputs)
    assert_ran(ir_texts, "_scaled_dot_product_flash_attention_for_cpu_backward")
    ref_out, ref = grads_of(fn, inputs)
    assert err(out, ref_out) <= TOL
    for name, a, b in zip("qkv", grads, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert err(a, b) <= TOL, f"d{name}: {err(a, b):.3g}"


def test_attention_logsumexp_of_the_general_path_is_pytorchs():
    """The forward's logsumexp output on the general (fp32) path: the log-sum-exp of the
    scaled, masked scores, as PyTorch's CPU kernel defines it (fully masked rows: 0)."""
    q, k, v = (t.detach() for t in _attn_inputs(1, 2, 2, 13, 13, 8))
    m = torch.zeros(13, 13)
    m[5] = float("-inf")
    m[:, 2] = float("-inf")

    def fn(q, k, v, m):
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, True, attn_mask=m)

    out, lse = compiled(fn)(q, k, v, m)
    ref_out, ref_lse = fn(q, k, v, m)
    assert lse.dtype == torch.float32 and lse.shape == (1, 2, 13)
    assert err(lse, ref_lse) <= TOL and err(out, ref_out) <= TOL


def test_attention_backward_bf16_flash_kernel(ir_texts):
    """bf16 on trn2 (DMA transpose): forward and backward through the library's flash kernels
    (head_dim 64, 128 queries, causal, GQA). Reference: float64 autograd on the same
    bf16-rounded inputs. Bound: 2 bf16 ulps of the largest gradient (P and dS are rounded to
    bf16 for TensorE; measured about 0.5, as PyTorch CPU's own bf16 error), or 2x PyTorch CPU
    bf16's own error if that is larger."""
    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    g = torch.Generator().manual_seed(3)
    leaves = [torch.randn(*s, generator=g).to(torch.bfloat16).requires_grad_()
              for s in ((1, 2, 128, 64), (1, 1, 128, 64), (1, 1, 128, 64))]
    _, grads = grads_of(compiled(fn, chip="trn2"), leaves)
    assert_ran(ir_texts, "_scaled_dot_product_flash_attention_for_cpu_backward")
    assert any("bf16[1, 2, 128, 64]" in t and "_backward(" in t for t in ir_texts)
    wide = [x.detach().double().requires_grad_() for x in leaves]
    _, ref = grads_of(fn, wide)
    _, own = grads_of(fn, leaves)  # PyTorch CPU in bf16
    for name, a, b, o in zip("qkv", grads, ref, own):
        assert a.dtype == torch.bfloat16
        limit = max(2 * BF16_ULP, 2 * err(o, b))
        assert err(a, b) <= limit, f"d{name}: {err(a, b):.3g} > {limit:.3g}"


# ---- index_put ----

def test_embedding_backward_adds_repeated_ids(ir_texts):
    emb = torch.nn.Embedding(131, 72)
    ids = torch.tensor([[5, 7, 5, 130, 0, 7, 7, 3, 5, 99, 0], [0, 1, 2, 130, 5, 6, 7, 8, 9, 5, 5]])

    def fn(w, ids):
        return F.embedding(ids, w) * 2

    w = emb.weight.detach().clone().requires_grad_()
    _, (gw,) = grads_of(compiled(fn), [w, ids])
    assert_ran(ir_texts, "index_put")
    _, (ref,) = grads_of(fn, [w, ids])
    assert err(gw, ref) <= TOL
    assert ref[5].abs().sum() > 0 and ref[4].abs().sum() == 0


def test_index_put_accumulate_and_overwrite(ir_texts):
    def fn(x, i, v, j, k, u):
        a = torch.index_put(x, (i,), v, accumulate=True)
        b = x.clone()
        b[:, j, k] = u  # index_put with two index tensors on dims 1, 2 (no repeats)
        return a, b

    g = torch.Generator().manual_seed(5)
    x = torch.randn(150, 6, 9, generator=g)
    i = torch.tensor([3, 149, -1, 3, 0, 3, 77, -150] * 20)  # repeats and negative indices
    v = torch.randn(160, 6, 9, generator=g)
    j, k = torch.tensor([0, 5, -1, 2]), torch.tensor([8, 0, 3, -9])
    u = torch.randn(150, 4, generator=g)
    a, b = compiled(fn)(x, i, v, j, k, u)
    assert_ran(ir_texts, "index_put")
    ra, rb = fn(x, i, v, j, k, u)
    assert err(a, ra) <= TOL
    assert torch.equal(b, rb)


# ---- scatter ----

def test_cross_entropy_backward_scatters_the_targets(ir_texts):
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(22, 131, generator=g).requires_grad_()
    target = torch.randint(0, 131, (22,), generator=g)
    _, (gl,) = grads_of(compiled(lambda x, t: F.cross_entropy(x, t) * 3), [logits, target])
    assert_ran(ir_texts, "scatter")
    _, (ref,) = grads_of(lambda x, t: F.cross_entropy(x, t) * 3, [logits, target])
    assert err(gl, ref) <= TOL


def test_scatter_src_and_value(ir_texts):
    def fn(x, idx, src, y, t):
        return torch.scatter(x, -1, idx, src), torch.scatter(y, 0, t, -2.5)

    g = torch.Generator().manual_seed(8)
    x = torch.randn(22, 37, generator=g)
    idx = torch.stack([torch.randperm(37, generator=g)[:5] for _ in range(22)])
    src = torch.randn(22, 9, generator=g)
    y = torch.randn(40, 3, generator=g)
    t = torch.randint(0, 40, (1, 3), generator=g)
    a, b = compiled(fn)(x, idx, src, y, t)
    assert_ran(ir_texts, "scatter")
    ra, rb = fn(x, idx, src, y, t)
    assert torch.equal(a, ra) and torch.equal(b, rb)


def test_gather_backward_scatter_adds_repeated_indices(ir_texts):
    def fn(x, i, j):
        return torch.gather(x, -1, i).sin().sum(-1) + torch.gather(x, 0, j).cos().sum(0)[:22]

    g = torch.Generator().manual_seed(15)
    x = torch.randn(22, 37, generator=g).requires_grad_()
    i = torch.randint(0, 37, (22, 9), generator=g)  # repeats within a row
    j = torch.randint(0, 22, (30, 37), generator=g)
    _, (gx,) = grads_of(compiled(fn), [x, i, j])
    assert_ran(ir_texts, "scatter_add")
    _, (ref,) = grads_of(fn, [x, i, j])
    assert err(gx, ref) <= TOL


def test_slice_and_select_scatter(ir_texts):
    """(Core ATen decomposes select_scatter into slice_scatter of an unsqueeze; the op table's
    select_scatter serves graphs that keep it: tests/compiler/ops_grad_test.cpp.)"""
    def fn(x, s, r):
        return (torch.slice_scatter(x, s, dim=1, start=3, end=-2, step=4),
                torch.select_scatter(x, r, 0, -1))

    g = torch.Generator().manual_seed(9)
    x, s, r = torch.randn(5, 130, generator=g), torch.randn(5, 32, generator=g), torch.randn(130)
    a, b = compiled(fn)(x, s, r)
    assert_ran(ir_texts, "slice_scatter")
    ra, rb = fn(x, s, r)
    assert torch.equal(a, ra) and torch.equal(b, rb)


def test_backward_of_slices_and_selects(ir_texts):
    def fn(x):
        return x[:, 3:-2:4].sin().sum(1) + x[1].cos()[:5].sum() + x[..., 7:].exp().mean()

    x = torch.randn(5, 130, generator=torch.Generator().manual_seed(10)).requires_grad_()
    _, (gx,) = grads_of(compiled(fn), [x])
    assert_ran(ir_texts, "slice_scatter")
    _, (ref,) = grads_of(fn, [x])
    assert err(gx, ref) <= TOL


# ---- optimizer ops: copy, prims.fma ----

def test_copy_and_fma(ir_texts):
    import torch._inductor.inductor_prims  # noqa: F401  (registers prims.fma)

    def fn(a, c, d, s):
        return (torch.ops.prims.fma(a, 0.0010000000000000009, c), torch.ops.prims.fma(a, d, c),
                torch.ops.aten.copy(s, d), torch.ops.aten.copy(c, a.to(torch.bfloat16)))

    g = torch.Generator().manual_seed(11)
    a, c, d = torch.randn(33, 7, generator=g), torch.randn(33, 7, generator=g), torch.randn(7)
    s = torch.zeros(33, 7, dtype=torch.int32)
    out = compiled(fn)(a, c, d, s)
    assert_ran(ir_texts, "prims.fma")
    assert_ran(ir_texts, "copy")
    for o, r in zip(out, fn(a, c, d, s)):
        assert o.dtype == r.dtype and torch.equal(o, r)  # bit-exact: (a * b) + c, two roundings


def test_compiled_adamw_step(ir_texts):
    """torch.compile of AdamW.step(): its graph copies and fma's the parameters and states."""
    torch.manual_seed(12)
    model = torch.nn.Linear(37, 11)
    ref_model = torch.nn.Linear(37, 11)
    ref_model.load_state_dict(model.state_dict())
    x = torch.randn(5, 37)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ref_opt = torch.optim.AdamW(ref_model.parameters(), lr=1e-2)
    step = compiled(lambda: opt.step())
    for _ in range(2):
        for m, o in ((model, opt), (ref_model, ref_opt)):
            o.zero_grad()
            m(x).square().sum().backward()
        step()
        ref_opt.step()
    assert_ran(ir_texts, "prims.fma")
    for p, r in zip(model.parameters(), ref_model.parameters()):
        assert err(p.detach(), r.detach()) <= 1e-5


# ---- native_dropout ----

def test_native_dropout_applies_its_mask(ir_texts):
    def fn(x, y):
        o, m = torch.ops.aten.native_dropout(x, 0.3, True)
        e, em = torch.ops.aten.native_dropout(x, 0.3, False)
        z, zm = torch.ops.aten.native_dropout(y, 0.25, True)
        return o, m, e, em, z, zm

    g = torch.Generator().manual_seed(13)
    x = torch.randn(40, 301, generator=g)
    y = torch.randn(7, 130, generator=g).to(torch.bfloat16)
    o, m, e, em, z, zm = compiled(fn)(x, y)
    assert_ran(ir_texts, "native_dropout")
    assert m.dtype == torch.bool and zm.dtype == torch.bool and z.dtype == torch.bfloat16
    # Binomial(12040, 0.7): sd 50.3; 5 sd.
    assert abs(m.sum().item() - 0.7 * x.numel()) < 5 * (x.numel() * 0.21) ** 0.5
    assert abs(zm.float().mean().item() - 0.75) < 0.06
    # out is the input times the mask actually returned, scaled as PyTorch does (x * mask * s).
    assert torch.equal(o, x * m * (1 / (1 - 0.3)))
    assert torch.equal(z, y * zm * (1 / (1 - 0.25)))
    assert torch.equal(e, x) and em.all()


def test_dropout_backward_uses_the_forward_mask(ir_texts):
    def fn(x):
        return F.dropout(x, p=0.4, training=True) * 3

    x = torch.randn(29, 131, generator=torch.Generator().manual_seed(14)).requires_grad_()
    out, (gx,) = grads_of(compiled(fn), [x])
    assert_ran(ir_texts, "native_dropout")
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.6) < 0.03
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(gx, cot * kept * 3 / 0.6, rtol=1e-6, atol=0)
