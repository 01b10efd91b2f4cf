"""Train a tiny character-level GPT on the simulated chip, with PyTorch on the CPU as reference.

    python examples/torch/train_tiny_gpt.py                       # trnsim, fp32, defaults
    python examples/torch/train_tiny_gpt.py --compare             # + the CPU reference, per step
    python examples/torch/train_tiny_gpt.py --dtype bf16 --compare --steps 500
    python examples/torch/train_tiny_gpt.py --device cpu          # plain PyTorch eager only

The model (token and position embeddings, pre-norm blocks of causal self-attention through
F.scaled_dot_product_attention and a GELU MLP, a final LayerNorm and an LM head tied to the
token embedding) takes (idx, targets) and returns the cross-entropy loss, so the loss and its
backward are part of the compiled graphs. Each step: forward, backward, gradient clipping,
AdamW step (compiled by trnsim.torch.compile_optimizer where that exists). The text is the
first 30 chapters of Pride and Prejudice (examples/torch/data/README.md says where it comes
from); 90% is for training, the last 10% for validation.

It prints a progress line (step, loss, simulated step time), then the final train/val loss,
a sample of generated text and the last step's trnsim summary, and writes to --out:
loss.svg (the loss curves), loss.csv (per step: the loss of each run, the simulated step
time) and trace.json (Perfetto trace of the last step on trnsim).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import inspect
import math
import os
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import trnsim.torch  # noqa: F401  (registers the "trnsim" backend)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEXT = os.path.join(HERE, "data", "pride_and_prejudice.txt")
RUN_COLORS = {"trnsim": "#1f77b4", "cpu": "#d62728"}


# --- data -------------------------------------------------------------------------------------

class CharTokenizer:
    """One token per distinct character of the text, ids in sorted character order."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> torch.Tensor:
        return torch.tensor([self.index[c] for c in s], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def make_batches(data: torch.Tensor, steps: int, batch: int, block: int, seed: int):
    """`steps` (x, y) pairs of `batch` random windows of `data`, y shifted by one; the same
    for every run with the same seed (a generator of its own, apart from the init's)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        ix = torch.randint(len(data) - block - 1, (batch,), generator=g)
        x = torch.stack([data[i:i + block] for i in ix.tolist()])
        y = torch.stack([data[i + 1:i + 1 + block] for i in ix.tolist()])
        out.append((x, y))
    return out


# --- model ------------------------------------------------------------------------------------

@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        heads = [z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v)]
        y = F.scaled_dot_product_attention(*heads, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_mlp = nn.LayerNorm(cfg.n_embd)
        self.fc_in = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.fc_out = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_attn(x))
        return x + self.fc_out(F.gelu(self.fc_in(self.ln_mlp(x))))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # tied
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                # Residual-stream writers get a smaller init so the stream's variance does
                # not grow with depth.
                std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith(
                    ("proj.weight", "fc_out.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx, targets=None):
        t = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, n: int, seed: int, temperature: float = 0.8):
    """`n` characters after `prompt`, sampled with a seeded generator (host, eager)."""
    g = torch.Generator().manual_seed(seed)
    idx = prompt.view(1, -1)
    for _ in range(n):
        logits = model(idx[:, -model.cfg.block_size:])[:, -1, :].float() / temperature
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx[0, prompt.numel():]


@torch.no_grad()
def estimate_loss(model: GPT, data: torch.Tensor, batch: int, block: int, seed: int,
                  iters: int, autocast) -> float:
    """Mean loss over `iters` seeded batches of `data` (host, eager)."""
    losses = []
    for x, y in make_batches(data, iters, batch, block, seed):
        with autocast():
            losses.append(model(x, y).float().item())
    return sum(losses) / len(losses)


# --- training ---------------------------------------------------------------------------------

class Run:
    """One model being trained on one device ("trnsim" or "cpu") and its per-step record."""

    def __init__(self, name: str, model: GPT, args):
        self.name = name
        self.model = model  # the eager module (shares its parameters with the compiled one)
        self.losses: list = []
        self.sim_ns: list = []      # trnsim: simulated ns of each whole step (None if unknown)
        self.host_s = 0.0
        self.clip = args.clip       # gradient clipping on the host (0: none, or compiled)
        self.forward = model
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99),
                                weight_decay=0.01)
        if name == "trnsim":
            options = {"chip": args.chip, "fallback": None if args.no_fallback else "cpu"}
            self.forward = torch.compile(model, backend="trnsim", dynamic=False,
                                         options=options)
            if hasattr(trnsim.torch, "compile_optimizer"):
                extra = {}
                # The clipping compiles with the step when compile_optimizer takes it.
                if args.clip > 0 and _takes(trnsim.torch.compile_optimizer, "max_grad_norm"):
                    extra["max_grad_norm"] = args.clip
                    self.clip = 0.0
                opt = trnsim.torch.compile_optimizer(opt, **options, **extra)
        self.opt = opt

    def step(self, x, y, autocast) -> float:
        seen = _Records()
        t0 = time.perf_counter()
        with autocast():
            loss = self.forward(x, y)
        seen.note()
        loss.backward()
        seen.note()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        seen.note()
        self.opt.zero_grad(set_to_none=True)
        self.host_s += time.perf_counter() - t0
        self.losses.append(loss.float().item())
        if self.name == "trnsim":
            self.sim_ns.append(seen.simulated_ns())
        return self.losses[-1]


def _takes(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class _Records:
    """The trnsim records a training step made. Normally one (the backward and a compiled
    optimizer step join the forward's record); a step whose backward ran on the host makes a
    record for the forward and another for the optimizer, so each new record is counted."""

    def __init__(self):
        self.before = trnsim.torch.last_run()
        self.records = []

    def note(self):
        rec = trnsim.torch.last_run()
        if rec is not None and rec is not self.before and all(rec is not r for r in self.records):
            self.records.append(rec)

    def simulated_ns(self):
        ns = [getattr(r, "simulated_ns", None) for r in self.records]
        if not ns or any(v is None for v in ns):
            return None
        return float(sum(ns))


def _autocast(dtype: str):
    if dtype == "bf16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


class Progress:
    """One line rewritten in place on a terminal; a plain line every `every` steps otherwise."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.every = max(1, total // 20)
        self.width = 0
        self.t0 = time.perf_counter()

    def update(self, step: int, runs: list):
        last = step == self.total - 1
        if not self.tty and not (step % self.every == 0 or last):
            return
        done = step + 1
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        parts = [f"step {done:>{len(str(self.total))}}/{self.total}"]
        if self.tty:
            width = 20
            fill = int(width * done / self.total)
            parts.insert(0, "[" + "#" * fill + "." * (width - fill) + "]")
        for r in runs:
            parts.append(f"{r.name} loss {r.losses[-1]:.4f}")
        if len(runs) == 2:
            a, b = runs[0].losses[-1], runs[1].losses[-1]
            parts.append(f"diff {abs(a - b):.2e}")
        sim = next((r.sim_ns[-1] for r in runs if r.sim_ns), None)
        if sim is not None:
            parts.append(f"sim {sim / 1e6:.3f} ms/step")
        parts.append(f"{rate:.2f} steps/s")
        line = "  ".join(parts)
        if self.tty:
            pad = max(0, self.width - len(line))  # blank what a longer last line left
            self.width = len(line)
            self.stream.write("\r" + line + " " * pad + ("\n" if last else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def train(args, data: torch.Tensor, vocab_size: int, runs=("trnsim",)) -> dict:
    """Trains one model per name in `runs` from the same init on the same batches, step by
    step in lockstep; returns {name: Run} (Run.losses: the loss of each step's batch)."""
    cfg = GPTConfig(vocab_size=vocab_size, block_size=args.block, n_layer=args.layers,
                    n_embd=args.embd, n_head=args.heads)
    torch.manual_seed(args.seed)
    base = GPT(cfg)
    result = {name: Run(name, copy.deepcopy(base), args) for name in runs}
    autocast = _autocast(args.dtype)
    batches = make_batches(data, args.steps, args.batch, args.block, args.seed + 1)
    bar = Progress(args.steps)
    for step, (x, y) in enumerate(batches):
        for r in result.values():
            r.step(x, y, autocast)
        bar.update(step, list(result.values()))
    return result


# --- outputs ----------------------------------------------------------------------------------

def _nice_ticks(lo: float, hi: float, n: int = 5) -> list:
    """About `n` round tick values covering [lo, hi] (steps of 1, 2 or 5 x 10^k)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt_tick(v: float) -> str:
    return f"{v:g}"


def write_svg(path: str, curves: dict, title: str) -> None:
    """A line plot of `curves` ({name: [loss per step]}): axes, ticks, labels, legend."""
    from xml.sax.saxutils import escape

    w, h = 720, 420
    left, right, top, bottom = 64, 150, 40, 52
    pw, ph = w - left - right, h - top - bottom
    n = max(len(v) for v in curves.values())
    all_y = [y for v in curves.values() for y in v if math.isfinite(y)]
    yt = _nice_ticks(min(all_y), max(all_y))
    xt = [t for t in _nice_ticks(0, max(n - 1, 1), 6) if t <= max(n - 1, 1)]
    y0, y1 = yt[0], yt[-1]

    def sx(i):
        return left + pw * i / max(n - 1, 1)

    def sy(v):
        return top + ph * (1 - (v - y0) / (y1 - y0))

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
         f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
         f'<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>',
         f'<text x="{left + pw / 2}" y="22" text-anchor="middle" font-size="14">'
         f'{escape(title)}</text>']
    for v in yt:
        y = sy(v)
        o.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
                 f'stroke="#e5e5e5"/>')
        o.append(f'<line x1="{left - 5}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="black"/>')
        o.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{_fmt_tick(v)}</text>')
    for t in xt:
        x = sx(t)
        o.append(f'<line x1="{x:.1f}" y1="{top + ph}" x2="{x:.1f}" y2="{top + ph + 5}" '
                 f'stroke="black"/>')
        o.append(f'<text x="{x:.1f}" y="{top + ph + 19}" text-anchor="middle">'
                 f'{_fmt_tick(t)}</text>')
    o.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" '
             f'stroke="black"/>')
    o.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>')
    o.append(f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle">step</text>')
    o.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 16 {top + ph / 2})">loss (cross-entropy, nats)</text>')
    for k, (name, ys) in enumerate(curves.items()):
        color = RUN_COLORS.get(name, "#2ca02c")
        dash = ' stroke-dasharray="6 4"' if k > 0 else ""
        pts = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in enumerate(ys) if math.isfinite(v))
        o.append(f'<polyline class="run" data-run="{escape(name)}" fill="none" '
                 f'stroke="{color}" stroke-width="1.5"{dash} points="{pts}"/>')
        ly = top + 10 + 20 * k
        lx = left + pw + 14
        o.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" '
                 f'stroke-width="2"{dash}/>')
        o.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(name)}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def write_csv(path: str, runs: dict) -> None:
    """step, loss_<run> per run, sim_step_ns (trnsim's simulated step time, when known)."""
    names = list(runs)
    sim = runs["trnsim"].sim_ns if "trnsim" in runs else []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + [f"loss_{n}" for n in names] + ["sim_step_ns"])
        for i in range(len(runs[names[0]].losses)):
            s = sim[i] if i < len(sim) and sim[i] is not None else ""
            w.writerow([i] + [f"{runs[n].losses[i]:.7g}" for n in names]
                       + [f"{s:.0f}" if s != "" else ""])


# --- main -------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--block", type=int, default=64, help="context length (characters)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embd", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chip", default="trn2", help="chip config (configs/chips/<chip>.json)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                   help='bf16: torch.autocast("cpu", dtype=torch.bfloat16) around the forward')
    p.add_argument("--device", choices=["trnsim", "cpu"], default="trnsim",
                   help="cpu: plain PyTorch eager (the reference)")
    p.add_argument("--compare", action="store_true",
                   help="also train the CPU reference from the same init on the same batches")
    p.add_argument("--no-fallback", action="store_true",
                   help="raise on ops trnsim lacks instead of running them on the host")
    p.add_argument("--text", default=DEFAULT_TEXT, help="training text (UTF-8)")
    p.add_argument("--eval-iters", type=int, default=8,
                   help="batches for the final train/val loss")
    p.add_argument("--sample", type=int, default=300, help="characters of text to generate")
    p.add_argument("--threads", type=int, default=1,
                   help="PyTorch host threads (0: PyTorch's default); the tensors are tiny, "
                        "and on a small or busy machine more threads cost more than they give")
    p.add_argument("--out", default=os.path.join("build", "train_tiny_gpt"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Runs the example; returns {"runs": {name: Run}, "train_loss": {name: x},
    "val_loss": {name: x}, "sample": str, "out": dir}."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        return _main(args)
    finally:
        torch.set_num_threads(threads)


def _main(args) -> dict:
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    tok = CharTokenizer(text)
    data = tok.encode(text)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    names = ["trnsim", "cpu"] if args.device == "trnsim" and args.compare else [args.device]
    print(f"text: {os.path.basename(args.text)}, {len(text)} characters, vocabulary "
          f"{tok.vocab_size}; train {len(train_data)}, val {len(val_data)}")
    print(f"model: {args.layers} layers, {args.embd} wide, {args.heads} heads, context "
          f"{args.block}; batch {args.batch}, {args.steps} steps, lr {args.lr}, {args.dtype}, "
          f"runs: {', '.join(names)}")

    runs = train(args, train_data, tok.vocab_size, names)

    first = runs[names[0]]
    n_params = sum(p.numel() for p in first.model.parameters())
    autocast = _autocast(args.dtype)
    train_loss, val_loss = {}, {}
    for name, r in runs.items():
        r.model.eval()
        train_loss[name] = estimate_loss(r.model, train_data, args.batch, args.block,
                                         args.seed + 2, args.eval_iters, autocast)
        val_loss[name] = estimate_loss(r.model, val_data, args.batch, args.block,
                                       args.seed + 3, args.eval_iters, autocast)
        print(f"{name}: {n_params / 1e3:.1f} k parameters; final loss: train "
              f"{train_loss[name]:.4f}, val {val_loss[name]:.4f} (ln(vocab) = "
              f"{math.log(tok.vocab_size):.4f}); last step loss {r.losses[-1]:.4f}; host "
              f"{args.steps / max(r.host_s, 1e-9):.2f} steps/s")
    if len(names) == 2:
        a, b = runs["trnsim"].losses, runs["cpu"].losses
        diffs = [abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b)]
        print(f"trnsim vs cpu: max relative loss difference per step {max(diffs):.3g} "
              f"(step {diffs.index(max(diffs))}), at the last step {diffs[-1]:.3g}")

    prompt = tok.encode("\n")
    with autocast():
        sample = tok.decode(generate(first.model, prompt, args.sample, args.seed))
    print(f"--- sample ({first.name} model, {args.sample} characters, temperature 0.8) ---")
    print(sample)
    print("---")

    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "loss.csv"), runs)
    title = (f"tiny GPT on {os.path.basename(args.text)} ({args.dtype}, "
             f"{args.layers}x{args.embd}, {args.chip})")
    write_svg(os.path.join(args.out, "loss.svg"), {n: r.losses for n, r in runs.items()}, title)
    written = ["loss.csv", "loss.svg"]
    rec = trnsim.torch.last_run() if "trnsim" in runs else None
    if rec is not None:
        print(rec.summary_text())
        rec.write_trace(os.path.join(args.out, "trace.json"))
        written.append("trace.json")
        sims = [s for s in runs["trnsim"].sim_ns if s is not None]
        if sims:
            print(f"simulated step time: {sims[-1] / 1e6:.3f} ms (last step), "
                  f"{sum(sims) / len(sims) / 1e6:.3f} ms (mean of {len(sims)})")
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return {"runs": runs, "train_loss": train_loss, "val_loss": val_loss, "sample": sample,
            "out": args.out, "vocab_size": tok.vocab_size}


if __name__ == "__main__":
    main()
