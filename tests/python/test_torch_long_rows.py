"""Softmax, log-softmax and cross-entropy over a language model's vocabulary (GPT-2's 50257),
rows longer than SBUF holds, which the compiler streams in chunks along the row (online
softmax): through ``torch.compile(fn, backend="trnsim")`` against PyTorch on the CPU, forward
and backward, fp32. Bounds: max |out - ref| / max |ref| <= 1e-5 (1e-4 for gradients).
"""
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from torch_checks import assert_ran, compiled, err  # noqa: E402

V = 50257  # GPT-2's vocabulary

pytestmark = pytest.mark.usefixtures("module_cache_dir")


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
