"""Softmax, log-softmax and cross-entropy over a language model's vocabulary (GPT-2's 50257),
rows longer than SBUF holds, which the compiler streams in chunks along the row (online
softmax): through ``torch.compile(fn, backend="trnsim")`` against PyTorch on the CPU, forward
and backward, fp32. Bounds: max |out - ref| / max |ref| <= 1e-5 (1e-4 for gradients).
"""
import os

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import trnsim.torch as tt  # noqa: E402

V = 50257  # GPT-2's vocabulary


@pytest.fixture(autouse=True, scope="module")
def _cache_dir(tmp_path_factory):
    old = os.environ.get("TRNSIM_CACHE_DIR")
    os.environ["TRNSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("trnsim_cache"))
    yield
    if old is None:
        os.environ.pop("TRNSIM_CACHE_DIR", None)
    else:
        os.environ["TRNSIM_CACHE_DIR"] = old


@pytest.fixture
def ir_texts(monkeypatch):
    """The IR text of every graph trnsim.torch compiles during the test."""
    from trnsim.torch import _compile

    texts = []
    real = _compile.serialize

    def spy(*args, **kwargs):
        sg = real(*args, **kwargs)
        texts.append(sg.text)
        return sg

    monkeypatch.setattr(_compile, "serialize", spy)
    torch._dynamo.reset()
    yield texts
    torch._dynamo.reset()


def compiled(fn):
    return torch.compile(fn, backend="trnsim", dynamic=False)


def err(out, ref) -> float:
    """max |out - ref| / max |ref|."""
    out, ref = out.double(), ref.double()
    return ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def assert_ran(texts, op):
    assert any(f"= {op}(" in t for t in texts), f"no graph with {op} ran on trnsim"
    run = tt.last_run()
    assert run is not None and run.runs and run.simulated_ns > 0


def logits(seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    # A slope along the row: the max grows from chunk to chunk (the running sum is rescaled).
    x = torch.randn(4, V, generator=g) * 3 + torch.linspace(0, 20, V)
    return x.requires_grad_(requires_grad)


def test_log_softmax_over_the_vocabulary(ir_texts):
    fn = lambda x: F.log_softmax(x, -1)  # noqa: E731
    x = logits(1)
    out = compiled(fn)(x)
    assert_ran(ir_texts, "_log_softmax")
    assert err(out, fn(x)) <= 1e-5


def test_softmax_over_the_vocabulary(ir_texts):
    fn = lambda x: x.softmax(-1)  # noqa: E731
    x = logits(2)
    out = compiled(fn)(x)
    assert_ran(ir_texts, "_softmax")
    ref = fn(x)
    assert err(out, ref) <= 1e-5
    # Relative to each row's scale too: the small probabilities are not flushed.
    assert ((out.double() - ref.double()).abs() <= 1e-5 * ref.double() + 1e-12).all()


def test_cross_entropy_and_its_gradient(ir_texts):
    fn = lambda x, y: F.cross_entropy(x, y)  # noqa: E731
    y = torch.randint(0, V, (4,), generator=torch.Generator().manual_seed(3))
    x = logits(4, requires_grad=True)
    loss = compiled(fn)(x, y)
    loss.backward()
    grad = x.grad.clone()
    assert_ran(ir_texts, "_log_softmax")
    x.grad = None
    ref = fn(x, y)
    ref.backward()
    assert err(loss.detach(), ref.detach()) <= 1e-5
    assert err(grad, x.grad) <= 1e-4
