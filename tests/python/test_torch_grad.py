"""Gradients op by op: the forward and the backward graph both on the simulated chip, against
PyTorch's autograd on the CPU in float64.

The cases are test_torch_ops.py's table (every op family the forward supports, odd shapes),
fp32, those with a floating-point input and output. Each is captured by AOTAutograd with the
backend's decomposition table and partitioner (min-cut, as ``torch.compile(backend=
"trnsim")``), the forward and the backward compiled by trnsim.torch's ``compile_graph``
(weights as IR params), and run with a random cotangent per output. Error measure as in
test_torch_ops.py: max |grad - ref| / max |ref| per input; limit: the case's tolerance
(1e-5 pointwise/reductions/norms, 1e-4 matmul/attention) or 4x PyTorch CPU fp32's own error
on the case, whichever is larger.

``make test`` runs the FAST subset (one or two cases per op family), ``make test-slow`` all.
"""
import pytest

torch = pytest.importorskip("torch")

import trnsim.torch as tt  # noqa: E402

from test_torch_ops import (COMPARE, FACTORY, MATMUL, NORM, NOT_YET, POINTWISE, PW,  # noqa: E402
                            REDUCE, RED, MM, ATT, SHAPES, _gen, _leaves, _sdpa_cases, make,
                            scaled_error)

#: Cases run by `make test` (the rest are slow): each op family and the ops whose backward
#: brings ops of its own (scatter, index_put, attention backward, norms).
FAST = {"mul", "div", "exp", "tanh", "gelu", "silu", "pow_2", "where", "masked_fill", "clamp",
        "maximum", "sum_middle", "mean_last_keepdim", "amax_last", "softmax_last",
        "log_softmax", "layer_norm", "rms_norm_pattern", "linear", "bmm", "matmul_bcast",
        "embedding", "permute", "slice", "cat", "select", "index_tensor", "gather", "split",
        "expand", "sdpa_causal", "sdpa_gqa_causal", "sdpa_bool_mask"}


def compile_train(fn, n_inputs: int, args, compiled_bw=None, **options):
    """`fn` captured by AOTAutograd for training, forward and backward compiled for trnsim;
    returns the differentiable callable. `compiled_bw` (a list) receives what the backward
    compiled to."""
    from torch._functorch.aot_autograd import aot_function
    from torch._functorch.partitioners import min_cut_rematerialization_partition
    from trnsim.torch._compile import compile_graph, decomposition_table
    from trnsim.torch._options import Options

    opts = Options.parse(options)
    params = range(n_inputs, len(args))

    def fw(gm, example_inputs):
        return compile_graph(gm, options=opts, name="forward", param_indices=params)

    def bw(gm, example_inputs):
        out = compile_graph(gm, options=opts, name="backward")
        if compiled_bw is not None:
            compiled_bw.append(out)
        return out

    return aot_function(fn, fw_compiler=fw, bw_compiler=bw,
                        partition_fn=min_cut_rematerialization_partition,
                        decompositions=decomposition_table())


def _grads(fn, args, cotangents):
    outs = [o for o in _leaves(fn(*args)) if o.is_floating_point()]
    diff = [a for a in args if a.requires_grad]
    total = sum((o * c.to(o.dtype)).sum() for o, c in zip(outs, cotangents))
    return torch.autograd.grad(total, diff, allow_unused=True)


def _leaf(x, dtype=None):
    x = x.detach().clone()
    if dtype is not None and x.is_floating_point():
        x = x.to(dtype)
    return x.requires_grad_(x.is_floating_point())


def check_grad(cid, fn, specs, weights, tol):
    g = _gen(cid)
    inputs = [make(s, torch.float32, g) for s in specs] + [make(s, torch.float32, g)
                                                           for s in weights]
    if not any(x.is_floating_point() for x in inputs):
        pytest.skip("no floating-point input")
    with torch.no_grad():
        outs = [o for o in _leaves(fn(*inputs)) if o.is_floating_point()]
    if not outs:
        pytest.skip("no floating-point output")
    cot = [torch.randn(o.shape, generator=g) for o in outs]
    args = [_leaf(x) for x in inputs]
    bw = []
    try:
        compiled = compile_train(fn, len(specs), args, compiled_bw=bw)
        got = _grads(compiled, args, cot)
    except tt.UnsupportedOpError as e:
        pytest.xfail(str(e))
    except tt.CompileError as e:
        if e.code == NOT_YET:
            pytest.xfail(str(e))
        raise
    from trnsim.torch._runtime import HostGraph
    run = tt.last_run()
    if bw and isinstance(bw[0], HostGraph):  # nothing for the chip: gradients pass through
        assert not any(n.op == "call_function" and "aten" in str(n.target)
                       for n in bw[0].gm.graph.nodes), "an op-bearing backward ran on the host"
    else:
        assert run is not None and any(r.phase == "backward" for r in run.runs), \
            "the backward did not run on trnsim"
    ref = _grads(fn, [_leaf(x, torch.float64) for x in inputs], [c.double() for c in cot])
    own = _grads(fn, [_leaf(x) for x in inputs], cot)
    for k, (o, r, e) in enumerate(zip(got, ref, own)):
        if r is None:
            assert o is None or not o.abs().any(), f"input {k}: gradient where PyTorch has none"
            continue
        assert o is not None, f"input {k}: no gradient"
        assert o.shape == r.shape and o.dtype == e.dtype
        err, torch_err = scaled_error(o, r), scaled_error(e, r)
        limit = max(tol, 4 * torch_err)
        print(f"{cid} grad {k}: error {err:.3g} (PyTorch CPU {torch_err:.3g}), limit {limit:.3g}")
        assert err <= limit, f"input {k}: gradient scaled error {err:.3g} > {limit:.3g}"


def _cases():
    out = []
    for group, tol in ((POINTWISE, PW), (COMPARE, PW), (REDUCE, RED), (NORM, RED),
                       (MATMUL, MM), (SHAPES, PW), (FACTORY, PW), (_sdpa_cases(), ATT)):
        for case in group:
            cid, fn, specs, *w = case
            marks = () if cid in FAST else (pytest.mark.slow,)
            out.append(pytest.param(cid, fn, specs, w[0] if w else (), tol, id=cid, marks=marks))
    return out


@pytest.mark.parametrize("cid,fn,specs,weights,tol", _cases())
def test_gradient_matches_pytorch_cpu(cid, fn, specs, weights, tol):
    check_grad(cid, fn, specs, weights, tol)


def test_fast_cases_exist():
    ids = {c.values[0] for c in _cases()}
    assert FAST <= ids, f"FAST names cases that are not in the table: {sorted(FAST - ids)}"
