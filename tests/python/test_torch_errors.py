"""Errors of trnsim.torch name the op and the model's own line."""
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import trnsim.torch as tt  # noqa: E402


@torch.library.custom_op("trnsim_test::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    """An op no op table has."""
    return x.flip(-1) * 2


@mystery.register_fake
def _(x):
    return torch.empty_like(x)


class UsesMystery(nn.Module):
    def forward(self, x):
        y = torch.relu(x) + 1
        z = torch.ops.trnsim_test.mystery(y)  # LINE_MYSTERY
        return z.sum(-1) * y.mean(-1)


def _line(marker):
    with open(__file__) as f:
        for i, text in enumerate(f, 1):
            if text.rstrip().endswith(f"# {marker}"):
                return f"{__file__}:{i}"
    raise AssertionError(marker)


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("TRNSIM_CACHE_DIR", str(tmp_path))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_unsupported_op_names_op_and_line_under_torch_compile():
    compiled = torch.compile(UsesMystery(), backend="trnsim", dynamic=False)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed) as ei:
        compiled(torch.randn(3, 5))
    err = ei.value.inner_exception
    assert isinstance(err, tt.UnsupportedOpError)
    assert err.op == "trnsim_test.mystery" and err.where == _line("LINE_MYSTERY")
    msg = str(ei.value)
    assert "trnsim_test.mystery" in msg and _line("LINE_MYSTERY") in msg and "fallback" in msg


def test_unsupported_op_under_trnsim_compile():
    with pytest.raises(tt.UnsupportedOpError, match="trnsim_test.mystery") as ei:
        tt.compile(UsesMystery(), (torch.randn(3, 5),))
    assert ei.value.where == _line("LINE_MYSTERY")


def test_fallback_cpu_runs_the_op_on_the_host():
    model, x = UsesMystery(), torch.randn(3, 5)
    compiled = torch.compile(model, backend="trnsim", dynamic=False,
                             options={"fallback": "cpu"})
    got = compiled(x)
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-6)
    run = tt.last_run()
    assert run.host_ops == [("trnsim_test.mystery", _line("LINE_MYSTERY"))]
    assert len(run.runs) == 2
    assert "trnsim_test.mystery x1 at " + _line("LINE_MYSTERY") in run.summary_text()


def test_compile_error_maps_to_trnsim_torch_compile_error():
    """A graph the C++ compiler rejects raises trnsim.torch.CompileError with the core's
    code/where/message and the IR that was sent."""
    from trnsim.torch import _compile, _options, _serialize
    from torch._decomp import core_aten_decompositions

    class Tanh(nn.Module):
        def forward(self, x):
            return torch.tanh(x)  # LINE_TANH

    ep = torch.export.export(Tanh(), (torch.randn(2, 3),))
    ep = ep.run_decompositions(core_aten_decompositions())
    sg = _serialize.serialize(ep.graph_module)
    sg.text = sg.text.replace("= tanh(", "= no_such_op_xyz(")
    with pytest.raises(tt.CompileError) as ei:
        _compile.build(sg, _options.Options(cache=False), label="forward")
    e = ei.value
    assert e.ir_text == sg.text and e.message
    assert "no_such_op_xyz" in str(e) or "no_such_op_xyz" in (e.where or "")
    # the core names the node by its loc ("node 0 (op) at file.py:LINE"); the front end
    # turns that back into the full path
    assert e.loc == _line("LINE_TANH") and _line("LINE_TANH") in str(e)


def test_a_new_shape_recompiles_instead_of_going_dynamic():
    # Without dynamic=False, Dynamo would make the dim symbolic at the second shape; trnsim
    # turns automatic dynamic shapes off, so each shape is its own static graph.
    tt.reset_stats()
    f = torch.compile(lambda x: torch.tanh(x) + 1, backend="trnsim")
    for n in (5, 7, 9):
        x = torch.randn(n, 3)
        torch.testing.assert_close(f(x), torch.tanh(x) + 1, atol=1e-6, rtol=1e-6)
    s = tt.stats()
    assert s["compiles"] + s["cache_hits"] == 3 and s["recompiles"] == 2


def test_fallback_moves_every_refused_node_to_the_host():
    """Two nodes the compiler refuses for their attributes (topk with k > 8) in one graph:
    both move to the host, one retry each."""
    def f(x):
        return torch.topk(x, 12, dim=-1).values.sum(-1) + torch.topk(x * 2, 10).values.sum(-1)

    fast = torch.compile(f, backend="trnsim", options={"fallback": "cpu"})
    x = torch.randn(4, 37)
    torch.testing.assert_close(fast(x), f(x))
    ops = [op for op, _ in tt.last_run().host_ops]
    assert ops.count("topk") == 2, ops
