"""The one list of NKI API names (python/trnsim/nki/api.py): every name it says works
exists, every name it says does not raises NotSupportedError at the kernel line with the
reason, docs/nki.md's table is generated from it; and the composite nl math against numpy."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import api
from trnsim.nki import language as nl

HERE = __file__
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RNG = np.random.default_rng(7)

MODULES = {
    "nki": nki, "nki.language": nki.language, "nki.isa": nki.isa, "nki.compiler": nki.compiler,
    "nki.collectives": nki.collectives, "nki.typing": nki.typing,
}


def resolve(module, name):
    if module == "nki.tensor":
        return getattr(nki.tensor, name)
    obj = MODULES[module]
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def test_doc_table_is_generated_from_the_list():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "nki_api_table.py"),
                        "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(ROOT, "docs", "nki.md")) as f:
        doc = f.read()
    assert api.coverage_line() in doc
    n, m = api.coverage()
    assert f"{n} of {m} names" in api.coverage_line()


def test_each_name_once():
    keys = [(m, n) for m, n, _, _ in api.API]
    assert len(keys) == len(set(keys)), [k for k in keys if keys.count(k) > 1]
    assert all(s in (api.YES, api.NO) for _, _, s, _ in api.API)
    assert all(note for _, _, s, note in api.API if s == api.NO)


@pytest.mark.parametrize("module,name", [(m, n) for m, n, s, _ in api.API if s == api.YES])
def test_supported_names_exist(module, name):
    obj = resolve(module, name)
    assert not hasattr(obj, "_not_supported"), f"{module}.{name} is listed as working"


@pytest.mark.parametrize("module,name,reason",
                         [(m, n, r) for m, n, s, r in api.API if s == api.NO and m != "nki.tensor"])
def test_unsupported_names_raise_at_the_kernel_line(module, name, reason):
    stub = resolve(module, name)

    @nki.jit
    def k(a):
        stub(a)  # MARK
        return a
    src, start = inspect.getsourcelines(k.fn)
    line = start + next(i for i, l in enumerate(src) if "# MARK" in l)
    with pytest.raises(nki.NotSupportedError) as ei:
        k(np.zeros((128, 8), np.float32))
    assert ei.value.file == HERE and ei.value.line == line, str(ei.value)
    assert reason in str(ei.value) and f"{module}.{name}" in str(ei.value)


def test_tensor_view_names_line():
    @nki.jit
    def k(a):
        x = nl.load(a)
        return x.view(nl.bfloat16)  # MARK (a width-changing view)
    src, start = inspect.getsourcelines(k.fn)
    line = start + next(i for i, l in enumerate(src) if "# MARK" in l)
    with pytest.raises(nki.NotSupportedError) as ei:
        k(np.zeros((128, 8), np.float32))
    assert ei.value.line == line and "element width" in str(ei.value)


# ---- composite math against numpy ---------------------------------------------------------------

FUNCS = {
    "exp2": (lambda x: nl.exp2(x), np.exp2, 2e-6),
    "expm1": (lambda x: nl.expm1(x), np.expm1, 1e-5),
    "log2": (lambda x: nl.log2(nl.abs(x) + 0.5), lambda a: np.log2(np.abs(a) + 0.5), 1e-5),
    "log1p": (lambda x: nl.log1p(nl.abs(x)), lambda a: np.log1p(np.abs(a)), 1e-5),
    "tan": (lambda x: nl.tan(x * 0.5), lambda a: np.tan(a * 0.5), 1e-5),
    "sinh": (lambda x: nl.sinh(x), np.sinh, 1e-5),
    "cosh": (lambda x: nl.cosh(x), np.cosh, 1e-5),
    "erf_dx": (lambda x: nl.erf_dx(x), lambda a: 2 / np.sqrt(np.pi) * np.exp(-a * a), 1e-5),
    "softplus_dx": (lambda x: nl.softplus_dx(x), lambda a: 1 / (1 + np.exp(-a)), 1e-5),
    "gelu_apprx_sigmoid": (lambda x: nl.gelu_apprx_sigmoid(x),
                           lambda a: a / (1 + np.exp(-1.702 * a)), 1e-5),
    "clip": (lambda x: nl.clip(x, -0.5, 0.25), lambda a: np.clip(a, -0.5, 0.25), 0),
    "floor": (lambda x: nl.floor(x * 3.0), lambda a: np.floor(a * np.float32(3.0)), 0),
    "ceil": (lambda x: nl.ceil(x * 3.0), lambda a: np.ceil(a * np.float32(3.0)), 0),
    "trunc": (lambda x: nl.trunc(x * 3.0), lambda a: np.trunc(a * np.float32(3.0)), 0),
    "isfinite": (lambda x: nl.isfinite(x, dtype=nl.float32), lambda a: np.isfinite(a), 0),
    "isnan": (lambda x: nl.isnan(x, dtype=nl.float32), lambda a: np.isnan(a), 0),
    "isinf": (lambda x: nl.isinf(x, dtype=nl.float32), lambda a: np.isinf(a), 0),
    "cumsum": (lambda x: nl.cumsum(x, axis=1), lambda a: np.cumsum(a, axis=1), 1e-5),
    "logsumexp": (lambda x: nl.logsumexp(x, axis=1),
                  lambda a: np.log(np.exp(a).sum(1, keepdims=True)), 1e-5),
    "rms_norm": (lambda x: nl.rms_norm(x, x[0:1, :], axis=1, n=x.shape[1]),
                 lambda a: a / np.sqrt((a * a).mean(1, keepdims=True) + 1e-6) * a[0:1], 1e-5),
    "transpose2d": (lambda x: nl.transpose2d(x[:, 0:64]), lambda a: a[:, :64].T, 0),
    "arcsin": (lambda x: nl.arcsin(nl.tanh(x)), lambda a: np.arcsin(np.tanh(a)), 1e-5),
    "arccos": (lambda x: nl.arccos(nl.tanh(x)), lambda a: np.arccos(np.tanh(a)), 1e-5),
    "gelu_apprx_sigmoid_dx": (lambda x: nl.gelu_apprx_sigmoid_dx(x), lambda a: (
        lambda s: s + 1.702 * a * s * (1 - s))(1 / (1 + np.exp(-1.702 * a))), 1e-5),
    "mish_dx": (lambda x: nl.mish_dx(x), lambda a: (lambda t: t + a * (1 - t * t) / (
        1 + np.exp(-a)))(np.tanh(np.log1p(np.exp(a)))), 1e-5),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_composite_math(name):
    f, ref, tol = FUNCS[name]

    @nki.jit
    def k(a):
        y = f(nl.load(a))
        out = nl.ndarray(y.shape, nl.float32, buffer=nl.shared_hbm)
        nl.store(out, nl.copy(y, dtype=nl.float32))
        return out
    a = RNG.standard_normal((128, 96)).astype(np.float32)
    if name in ("isfinite", "isnan", "isinf"):
        a[3, 5], a[7, 1], a[9, 9] = np.nan, np.inf, -np.inf
    want = ref(a).astype(np.float32)
    got = k(a)
    if tol:
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


def test_argmax_argmin_fori_loop_shared_constant():
    @nki.jit
    def k(a):
        x = nl.load(a)
        c = nl.load(nl.shared_constant(np.arange(96, dtype=np.float32)[None, :].repeat(128, 0)))
        y = nl.fori_loop(0, 3, lambda i, v: v + c, x)
        out = nl.ndarray((128, 2), nl.uint32, buffer=nl.shared_hbm)
        vals = nl.ndarray((128, 96), nl.float32, buffer=nl.shared_hbm)
        nl.store(out[:, 0:1], nl.argmax(x, axis=1))
        nl.store(out[:, 1:2], nl.argmin(x, axis=1))
        nl.store(vals, y)
        return out, vals
    a = RNG.standard_normal((128, 96)).astype(np.float32)
    idx, vals = k(a)
    np.testing.assert_array_equal(idx[:, 0], a.argmax(1))
    np.testing.assert_array_equal(idx[:, 1], a.argmin(1))
    c = np.arange(96, dtype=np.float32)
    np.testing.assert_array_equal(vals, ((a + c) + c) + c)


def test_isa_exponential_and_tensor_scalar_cumulative():
    nisa = nki.isa

    @nki.jit
    def k(a):
        x = nl.load(a)
        m = nl.max(x, axis=1, keepdims=True)
        e = nl.ndarray(x.shape, nl.float32)
        s = nl.ndarray((128, 1), nl.float32)
        nisa.exponential(dst=e, src=x, max_value=m, reduce_res=s,
                         reduce_cmd=nisa.reduce_cmd.reset_reduce)
        e2 = nl.ndarray(x.shape, nl.float32)
        nisa.exponential(e2, x, max_value=1.5)
        c1 = nl.ndarray((128, 48), nl.float32)
        nisa.tensor_scalar_cumulative(c1, x[:, 0:48], op0=np.multiply, op1=np.add, imm0=2.0,
                                      reduce_cmd=nisa.reduce_cmd.reset_reduce)
        c2 = nl.ndarray((128, 48), nl.float32)
        nisa.tensor_scalar_cumulative(c2, x[:, 48:96], op0=np.multiply, op1=np.add, imm0=2.0,
                                      reduce_cmd=nisa.reduce_cmd.reduce)
        c3 = nl.ndarray((128, 96), nl.float32)
        nisa.tensor_scalar_cumulative(c3, x, op0=np.add, op1=np.maximum, imm0=0.0, imm1=0.5,
                                      reduce_cmd=nisa.reduce_cmd.load_reduce)
        outs = [nl.ndarray(t.shape, nl.float32, buffer=nl.shared_hbm) for t in (e, s, e2, c1, c2, c3)]
        for o, t in zip(outs, (e, s, e2, c1, c2, c3)):
            nl.store(o, t)
        return outs
    a = RNG.standard_normal((128, 96)).astype(np.float32)
    e, s, e2, c1, c2, c3 = k(a)
    ref = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(e, ref, rtol=1e-5)
    np.testing.assert_allclose(s[:, 0], ref.sum(1), rtol=1e-5)
    np.testing.assert_allclose(e2, np.exp(a - 1.5), rtol=1e-5)
    cs = np.cumsum(2 * a, axis=1)
    np.testing.assert_allclose(c1, cs[:, :48], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(c2, cs[:, 48:], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(c3, np.maximum.accumulate(np.maximum(a, 0.5), axis=1))
