"""Whole transformers models (tiny, random weights, no download) compiled with
``torch.compile(backend="trnsim")`` and run on the simulator, against PyTorch on the CPU.

Options: ``fallback="cpu"``: the attention-mask and position arithmetic (index, cumsum, ...)
may run on the host while the op table lacks it; the matmuls, softmax, norms and embeddings
must run on trnsim (CHIP_OPS).

- fp32: max |logits - ref| <= 1e-3 * max |ref|;
- bf16 (the model cast with ``model.to(torch.bfloat16)``, and the ``dtype="bf16"`` option on
  the fp32 model): top-1 agreement with the fp32 CPU logits >= 99%, where a position also
  agrees when the token trnsim picks is within bf16 noise of the best one (its fp32 logit
  >= max - 2 * delta, delta = PyTorch CPU's own max |bf16 - fp32| logit error on the model).
  Random-weight models have near-ties that bf16 rounding flips: PyTorch CPU itself agrees
  with fp32 on only 96-100% of positions. Plain top-1 agreement is printed next to it.

Sizes are in tests/python/torch_models.py (hidden 72, 6 heads, 2 KV heads, sequence 11).
"""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import trnsim.torch as tt  # noqa: E402

import torch_models as M  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("TRNSIM_CACHE_DIR", str(tmp_path / "cache"))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


#: Ops that must run on trnsim in every model. The rest (the mask and position arithmetic:
#: index, cumsum, ...; Mixtral's topk) may fall back to the host while the op table lacks them.
CHIP_OPS = {"mm", "bmm", "addmm", "_softmax", "native_layer_norm", "embedding",
            "_scaled_dot_product_flash_attention_for_cpu"}


def _compiled_logits(model, ids, **options):
    compiled = torch.compile(model, backend="trnsim", dynamic=False,
                             options={"fallback": "cpu", **options})
    out = M.logits(compiled, ids)
    run = tt.last_run()
    assert run is not None and run.runs, "nothing ran on trnsim"
    print(run.summary_text())
    on_host = sorted({op for op, _ in run.host_ops})
    print("host ops:", on_host or "none")
    assert not CHIP_OPS & set(on_host), f"ops that must run on trnsim ran on the host: {on_host}"
    return out, run


def _report(name, got, want, delta=None):
    """Prints and returns (max abs error, max |ref|, top-1 agreement, tie-aware agreement)."""
    got = got.float()
    err = (got - want).abs().max().item()
    scale = want.abs().max().item()
    pick = got.argmax(-1)
    top1 = (pick == want.argmax(-1)).float().mean().item()
    near = top1
    if delta is not None:
        chosen = want.gather(-1, pick.unsqueeze(-1)).squeeze(-1)
        near = (chosen >= want.max(-1).values - 2 * delta).float().mean().item()
    print(f"{name}: max |err| {err:.3g}, max |ref| {scale:.3g}, relative {err / scale:.3g}, "
          f"top-1 agreement {top1:.4f}, within bf16 noise {near:.4f}")
    return err, scale, top1, near


def _fp32(name):
    model, ids = M.build(name), M.input_ids()
    want = M.logits(model, ids)
    got, run = _compiled_logits(model, ids)
    assert got.shape == want.shape and got.dtype == torch.float32
    err, scale, _, _ = _report(f"{name} fp32", got, want)
    assert err <= 1e-3 * scale
    assert run.simulated_ns > 0


def _bf16(name, via_option):
    model, ids = M.build(name), M.input_ids(batch=4, seq=25)
    want = M.logits(model, ids)  # fp32 CPU
    cpu = M.logits(M.build(name, dtype=torch.bfloat16), ids).float()
    delta = (cpu - want).abs().max().item()
    _report(f"{name} bf16 PyTorch CPU", cpu, want, delta)
    if via_option:
        got, _ = _compiled_logits(model, ids, dtype="bf16")
    else:
        got, _ = _compiled_logits(model.to(torch.bfloat16), ids)
        assert got.dtype == torch.bfloat16
    how = "option" if via_option else "model.to"
    _, _, _, near = _report(f"{name} bf16 trnsim ({how})", got, want, delta)
    assert near >= 0.99


def test_llama_fp32():
    _fp32("llama")


@pytest.mark.parametrize("name,fused", [("gpt2", 2), ("llama", 2), ("mistral", 0)])
def test_eager_attention_is_one_attention_node(name, fused, capsys):
    """attn_implementation="eager" (bmm, scale, the causal mask masking_utils builds, softmax,
    bmm) becomes one attention node per layer after fuse_attention where the mask evaluates to
    the causal one; Mistral's sliding window (8 < sequence 11) is not causal and stays as
    written. Values against PyTorch CPU either way."""
    model, ids = M.build(name, attn_implementation="eager"), M.input_ids()
    want = M.logits(model, ids)
    got, _ = _compiled_logits(model, ids, print_after=["fuse_attention"])
    ir = capsys.readouterr().out
    assert ir.count("= _scaled_dot_product_flash_attention_for_cpu(") == fused
    assert ir.count("= bmm(") == 2 * (2 - fused)
    err, scale, _, _ = _report(f"{name} eager attention", got, want)
    assert err <= 1e-3 * scale


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "mistral", "qwen2", "mixtral"])
def test_model_fp32(name):
    _fp32(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", M.MODELS)
def test_model_bf16(name):
    _bf16(name, via_option=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_model_bf16_option(name):
    _bf16(name, via_option=True)


@pytest.mark.slow
def test_llama_export_path_matches_torch_compile():
    model, ids = M.build("llama"), M.input_ids()
    want = M.logits(model, ids)
    compiled = tt.compile(model, (ids,), {"use_cache": False}, fallback="cpu")
    with torch.no_grad():
        got = compiled(ids, use_cache=False).logits
    err, scale, _, _ = _report("llama export", got, want)
    assert err <= 1e-3 * scale


@pytest.mark.slow
@pytest.mark.parametrize("model", M.MODELS)
def test_example_script_runs(model, tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(root, "examples", "torch", f"{model}_forward.py")
    env = dict(os.environ, TRNSIM_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, script, "--trace", str(tmp_path / "t.json")], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "logits vs PyTorch CPU" in r.stdout and (tmp_path / "t.json").exists()
