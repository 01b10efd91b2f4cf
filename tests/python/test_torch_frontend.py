"""trnsim.torch end to end with the C++ compiler replaced by the reference interpreter.

``torch_ir_reference.ReferenceCompiler`` reads the IR text back and runs it with PyTorch, so
these tests check the Python front end on its own: what Dynamo/AOTAutograd/torch.export give
is serialized without loss (results equal eager PyTorch), parameters are uploaded once and
again after a change, dtypes come back as eager gives them, graph breaks and the host
fallback are recorded, the cache and the counters work. The same paths against the real
simulator are in test_torch_ops.py / test_torch_models.py.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import trnsim.torch as tt  # noqa: E402
from trnsim.torch import _cache, _compile, _record  # noqa: E402

import torch_ir_reference as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def ref(monkeypatch, tmp_path):
    comp = R.ReferenceCompiler()
    monkeypatch.setattr(_compile, "core", lambda: comp)
    _compile.supported_ops.cache_clear()
    monkeypatch.setenv("TRNSIM_CACHE_DIR", str(tmp_path / "cache"))
    _cache.reset_stats()
    _record.reset()
    torch._dynamo.reset()
    yield comp
    _compile.supported_ops.cache_clear()
    torch._dynamo.reset()


def _inner(excinfo):
    """The exception a backend raised (Dynamo wraps it in BackendCompilerFailed)."""
    e = excinfo.value
    return getattr(e, "inner_exception", e)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(12, 20)
        self.ln = nn.LayerNorm(20)
        self.register_buffer("shift", torch.linspace(-1, 1, 20))

    def forward(self, x):
        y = self.ln(self.lin(x) * 0.5 + self.shift)
        return F.gelu(y, approximate="tanh").softmax(-1), y.max(dim=-1), y > 0


def test_backend_is_registered():
    assert "trnsim" in torch._dynamo.list_backends()


def test_backend_matches_eager_with_dtypes_of_eager(ref):
    model, x = Block(), torch.randn(3, 12)
    compiled = torch.compile(model, backend="trnsim", dynamic=False)
    with torch.no_grad():
        got, want = compiled(x), model(x)
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got[1].values, want[1].values, rtol=1e-6, atol=1e-7)
    assert got[1].indices.dtype == torch.int64 and torch.equal(got[1].indices, want[1].indices)
    assert got[2].dtype == torch.bool and torch.equal(got[2], want[2])
    exe = ref.compiled[-1]
    assert exe.param_names == exe.input_names[:2] + exe.input_names[3:]  # w, b, x, shift, ln
    assert len(exe.param_names) == 5
    run = tt.last_run()
    assert len(run.runs) == 1 and run.simulated_ns > 0 and "reference run" in run.summary_text()


def test_params_upload_once_and_again_after_a_change(ref):
    model, x = Block(), torch.randn(3, 12)
    compiled = torch.compile(model, backend="trnsim", dynamic=False)
    with torch.no_grad():
        compiled(x)
        compiled(torch.randn(3, 12))
        exe = ref.compiled[-1]
        assert sorted(exe.uploads) == sorted(exe.param_names)  # params once for two calls
        model.lin.weight.mul_(2.0)  # in place: _version changes
        got = compiled(x)
        assert exe.uploads[len(exe.param_names):] == ["arg0_1"]  # only the changed weight
        torch.testing.assert_close(got[0], model(x)[0], rtol=1e-6, atol=1e-7)
        model.lin.bias = nn.Parameter(torch.ones(20))  # another object
        got = compiled(x)
        torch.testing.assert_close(got[0], model(x)[0], rtol=1e-6, atol=1e-7)


def test_two_instances_of_one_model_share_an_executable_but_not_weights(ref):
    """Same IR text, same chip: the session gives both graphs one Executable; each call must
    still see its own model's weights and constants."""
    class WithConst(Block):
        def __init__(self, c):
            super().__init__()
            self.c = torch.full((20,), c)  # a plain tensor attribute: a constant

        def forward(self, x):
            return super().forward(x)[0] + self.c

    a, b, x = WithConst(1.0), WithConst(2.0), torch.randn(3, 12)
    ca, cb = tt.compile(a, (x,)), tt.compile(b, (x,))
    assert len(ref.compiled) == 1 and ca.ir_text == cb.ir_text
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(ca(x), a(x), rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(cb(x), b(x), rtol=1e-6, atol=1e-7)
    # and one compiled graph called with another instance's parameters (Dynamo reuses its
    # graph for a second module of the same class)
    compiled = torch.compile(a.forward.__func__, backend="trnsim", dynamic=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(a, x), a(x), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(compiled(b, x), b(x), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(compiled(a, x), a(x), rtol=1e-6, atol=1e-7)


def test_int64_inputs_outside_int32_name_the_input(ref):
    class Emb(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)

        def forward(self, ids):
            return self.emb(ids % 10)

    compiled = torch.compile(Emb(), backend="trnsim", dynamic=False)
    with torch.no_grad():
        compiled(torch.tensor([[1, 2, 3]]))
        with pytest.raises(tt.DtypeError, match=r"input 'l_ids_'.*outside int32"):
            compiled(torch.tensor([[1, 2, 2**40]]))


def test_graph_breaks_give_one_record_per_call(ref, tmp_path):
    class Broken(nn.Module):
        def forward(self, x):
            y = torch.tanh(x) * 2
            torch._dynamo.graph_break()
            return y.exp() + 1

    model, x = Broken(), torch.randn(4, 5)
    compiled = torch.compile(model, backend="trnsim", dynamic=False)
    for _ in range(2):
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-6, atol=1e-7)
        run = tt.last_run()
        assert [g.label for g in run.graphs] == ["graph 0 (forward)", "graph 1 (forward)"]
    text = run.summary_text()
    assert "== graph 0 (forward)" in text and "== graph 1 (forward)" in text
    assert "== total: 2 graph(s) on trnsim" in text
    assert run.simulated_ns == sum(g.simulated_ns for g in run.runs)
    trace = tmp_path / "t.json"
    run.write_trace(trace)
    events = json.loads(trace.read_text())["traceEvents"]
    names = [e["args"]["name"] for e in events if e.get("name") == "process_name"]
    assert names == ["graph 0 (forward): reference", "graph 1 (forward): reference"]
    xs = [e for e in events if e.get("ph") == "X"]
    assert xs[1]["ts"] == pytest.approx(run.runs[0].simulated_ns / 1000.0)


class Sorts(nn.Module):
    def forward(self, x):
        y = torch.relu(x) * 3
        s = torch.sort(y, dim=-1).values  # LOC_SORT
        return s.sum(-1) + y.mean(-1)


def _loc(marker):
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if line.rstrip().endswith(f"# {marker}"):
                return f"{__file__}:{i}"
    raise AssertionError(marker)


def test_unsupported_op_raises_with_the_model_line(ref):
    ref.unsupported.add("sort")
    compiled = torch.compile(Sorts(), backend="trnsim", dynamic=False)
    with pytest.raises(Exception) as ei:
        compiled(torch.randn(3, 7))
    err = _inner(ei)
    assert isinstance(err, tt.UnsupportedOpError)
    assert err.op == "sort" and err.aten == "aten.sort.default"
    assert err.where == _loc("LOC_SORT")
    assert "fallback" in str(err) and _loc("LOC_SORT") in str(err)


def test_fallback_cpu_runs_unsupported_ops_on_the_host(ref):
    ref.unsupported.add("sort")
    model, x = Sorts(), torch.randn(3, 7)
    compiled = torch.compile(model, backend="trnsim", dynamic=False,
                             options={"fallback": "cpu"})
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-6, atol=1e-7)
    run = tt.last_run()
    assert run.host_ops == [("sort", _loc("LOC_SORT"))]
    assert len(run.runs) == 2  # before and after the sort
    text = run.summary_text()
    assert "sort x1 at " + _loc("LOC_SORT") in text and "1 host op(s)" in text
    assert all("sort" not in exe.text for exe in ref.compiled)


def test_export_compile_keeps_structure_and_buffer_updates(ref):
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.register_buffer("calls", torch.zeros(4))

        def forward(self, x, *, scale=1.0):
            self.calls.add_(1)
            return {"y": self.lin(x).relu() * scale, "x": x}

    model, x = Counter(), torch.randn(2, 4)
    compiled = tt.compile(model, (x,), {"scale": 2.0})
    with torch.no_grad():
        want = model.lin(x).relu() * 2.0
    out = compiled(x, scale=2.0)
    assert set(out) == {"y", "x"} and out["x"] is x
    torch.testing.assert_close(out["y"], want, rtol=1e-6, atol=1e-7)
    assert torch.equal(model.calls, torch.ones(4))  # the mutation reached the model's buffer
    assert "param" in compiled.ir_text and tt.last_run().runs


def test_dtype_bf16_option_runs_the_graph_in_bf16(ref):
    model, x = Block(), torch.randn(3, 12)
    compiled = torch.compile(model, backend="trnsim", dynamic=False, options={"dtype": "bf16"})
    with torch.no_grad():
        got, want = compiled(x), model(x)
    text = ref.compiled[-1].text
    assert "f32" not in text and "bf16[3, 12] input" in text
    assert got[0].dtype == torch.float32  # back in the model's dtype
    assert (got[0] - want[0]).abs().max() <= 2 ** -6 * want[0].abs().max()


def test_timing_only_returns_zeros_of_the_right_type(ref):
    model, x = Block(), torch.randn(3, 12)
    compiled = torch.compile(model, backend="trnsim", dynamic=False,
                             options={"timing_only": True})
    got = compiled(x)
    assert got[0].shape == (3, 20) and not got[0].any()
    assert got[1].indices.dtype == torch.int64 and got[2].dtype == torch.bool
    assert tt.last_run().simulated_ns > 0


def test_dynamic_shapes_are_refused_with_advice(ref):
    compiled = torch.compile(lambda x: torch.tanh(x) + 1, backend="trnsim", dynamic=True)
    with pytest.raises(Exception) as ei:
        compiled(torch.randn(5, 3))
    assert isinstance(_inner(ei), tt.DynamicShapeError) and "dynamic=False" in str(_inner(ei))


def test_bad_options_are_refused():
    with pytest.raises(tt.OptionsError, match="unknown trnsim option"):
        tt.compile(nn.Linear(2, 2), (torch.randn(1, 2),), chips="trn2")
    with pytest.raises(tt.OptionsError, match="fallback"):
        tt.compile(nn.Linear(2, 2), (torch.randn(1, 2),), fallback="gpu")


def test_counters_count_compiles_hits_and_recompiles(ref):
    def f(x):
        return torch.sigmoid(x) * 2

    compiled = torch.compile(f, backend="trnsim", dynamic=False)
    compiled(torch.randn(2, 3))
    compiled(torch.randn(4, 3))  # new shape: Dynamo recompiles the frame
    st = tt.stats()
    assert {k: st[k] for k in ("compiles", "cache_hits", "recompiles")} == {
        "compiles": 2, "cache_hits": 0, "recompiles": 1}
    assert st["compile_seconds"] > 0 and st["capture_seconds"] > st["compile_seconds"]
    torch._dynamo.reset()
    checks = ref.checked
    compiled = torch.compile(f, backend="trnsim", dynamic=False)
    compiled(torch.randn(2, 3))
    assert tt.stats()["cache_hits"] == 1 and ref.checked == checks  # no check() on a hit


def test_backward_runs_on_the_host(ref):
    model, x = Block(), torch.randn(3, 12)
    compiled = torch.compile(model, backend="trnsim", dynamic=False)
    compiled(x)[0].sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x)[0].sum().backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)


def test_cache_serves_a_second_process(tmp_path):
    """Two processes, one cache folder: the second compiles nothing."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {HERE!r})
        import torch, torch_ir_reference as R
        import trnsim.torch as tt
        from trnsim.torch import _compile
        comp = R.ReferenceCompiler()
        _compile.core = lambda: comp
        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.SiLU())
        with torch.no_grad():
            torch.compile(model, backend="trnsim", dynamic=False)(torch.randn(2, 8))
        print(json.dumps(tt.stats()))
    """)
    env = dict(os.environ, TRNSIM_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert first["compiles"] == 1 and first["cache_hits"] == 0
    assert second["compiles"] == 0 and second["cache_hits"] == 1
    assert len(list(tmp_path.glob("*/*.ir"))) == 1 and len(list(tmp_path.glob("*/*.json"))) == 1


def test_import_error_without_torch_says_what_to_install():
    code = "import sys; sys.modules['torch'] = None; import trnsim.torch"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "pip install torch" in r.stderr


# Serialization must lose nothing on whole models: the IR text run by the reference
# interpreter gives eager's logits (to float32 rounding of reordered kernels).
@pytest.mark.parametrize("name", ["gpt2", "llama", "mistral", "qwen2", "mixtral"])
def test_transformers_models_round_trip(ref, name):
    pytest.importorskip("transformers")
    import torch_models as M
    model, ids = M.build(name), M.input_ids()
    compiled = torch.compile(model, backend="trnsim", dynamic=False)
    want = M.logits(model, ids)
    got = M.logits(compiled, ids)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert len(tt.last_run().runs) == 1  # one graph: no graph breaks


def test_backend_found_through_the_entry_point():
    """pyproject.toml's torch_dynamo_backends entry point: Dynamo loads it on first use, and
    the import of trnsim.torch it triggers must not register the name a second time."""
    code = textwrap.dedent("""
        from importlib.metadata import EntryPoint
        import torch
        from torch._dynamo.backends import registry as reg
        reg._lazy_import()
        reg._BACKENDS["trnsim"] = EntryPoint(
            name="trnsim", value="trnsim.torch._backend:trnsim_backend",
            group="torch_dynamo_backends")
        fn = reg.lookup_backend("trnsim")
        import trnsim.torch as tt
        assert fn is tt.trnsim_backend and reg.lookup_backend("trnsim") is fn
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_fallback_cpu_also_takes_values_the_ir_cannot_hold(ref):
    def rotate(x):
        y = torch.tanh(x)
        z = torch.view_as_real(torch.view_as_complex(y) * (1 + 2j))  # complex: host
        return z.exp()

    x = torch.randn(4, 3, 2)
    compiled = torch.compile(rotate, backend="trnsim", dynamic=False,
                             options={"fallback": "cpu"})
    torch.testing.assert_close(compiled(x), rotate(x), rtol=1e-6, atol=1e-6)
    host = [op for op, _ in tt.last_run().host_ops]
    assert "view_as_complex" in host and "tanh" not in host and "exp" not in host
