"""The ``options`` of ``torch.compile(..., backend="trnsim", options={...})`` and of
``trnsim.torch.compile(model, example_inputs, **options)``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ._errors import OptionsError

_DTYPES = {None: None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           torch.bfloat16: torch.bfloat16}


@dataclass(frozen=True)
class Options:
    chip: str = "trn2"                 #: chip config name (configs/chips/<chip>.json)
    dtype: str | None = None           #: "bf16": the graph runs with float32 replaced by bf16
    timing_only: bool = False          #: simulate time only; outputs are zeros
    fallback: str | None = None        #: "cpu": unsupported ops run on the host
    print_after: tuple = field(default_factory=tuple)  #: passes whose IR to print
    cache: bool = True                 #: use the disk cache (TRNSIM_CACHE_DIR)
    #: training: which activations the forward saves for the backward. "auto": AOTAutograd's
    #: min-cut partitioner (recomputes cheap pointwise ops in the backward when that saves
    #: HBM); "none": save everything the backward reads, recompute nothing.
    #: torch.utils.checkpoint in the model recomputes whole blocks either way.
    recompute: str = "auto"
    #: how fp32 results are rounded when written to a narrower float (bf16 weights under
    #: dtype="bf16"): "rne" (nearest even) or "stochastic" (round up with the probability of
    #: the discarded fraction, as Neuron's stochastic-rounding mode; bits from `seed` and the
    #: run count, so runs are reproducible)
    rounding: str = "rne"
    seed: int = 0
    #: "fp8": the weights of linear layers (2-D parameters read only as a matmul's weight) are
    #: stored in simulated HBM as float8_e4m3fn with one bf16 scale per output channel
    #: (amax / 448, rounded up), and the matmuls read them as fp8 (docs/torch.md, "fp8 weights").
    #: Inference only. None: weights as the model has them.
    weights: str | None = None

    @classmethod
    def parse(cls, options) -> Options:
        if options is None:
            return cls()
        if isinstance(options, Options):
            return options
        opts = dict(options)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(opts) - known)
        if unknown:
            raise OptionsError(f"unknown trnsim option(s) {unknown}; known: {sorted(known)}")
        dtype = opts.get("dtype")
        if dtype not in _DTYPES:
            raise OptionsError(f"options['dtype'] = {dtype!r}: use None or 'bf16'")
        if dtype is not None:
            opts["dtype"] = "bf16"
        fb = opts.get("fallback")
        if fb not in (None, "cpu"):
            raise OptionsError(f"options['fallback'] = {fb!r}: use None (raise on unsupported "
                               "ops) or 'cpu' (run them on the host)")
        chip = opts.get("chip", "trn2")
        if not isinstance(chip, str) or not chip:
            raise OptionsError(f"options['chip'] = {chip!r}: a chip name such as 'trn2'")
        rc = opts.get("recompute", "auto")
        if rc not in ("auto", "none"):
            raise OptionsError(f"options['recompute'] = {rc!r}: use 'auto' (min-cut "
                               "partitioner) or 'none' (save every activation)")
        rd = opts.get("rounding", "rne")
        if rd not in ("rne", "stochastic"):
            raise OptionsError(f"options['rounding'] = {rd!r}: use 'rne' or 'stochastic'")
        seed = opts.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise OptionsError(f"options['seed'] = {seed!r}: an integer >= 0")
        w = opts.get("weights")
        if w not in (None, "fp8"):
            raise OptionsError(f"options['weights'] = {w!r}: use None (the model's own weights) "
                               "or 'fp8' (linear weights stored as float8_e4m3fn with a scale "
                               "per output channel)")
        pa = opts.get("print_after", ())
        opts["print_after"] = (pa,) if isinstance(pa, str) else tuple(pa)
        for k in ("timing_only", "cache"):
            if k in opts:
                opts[k] = bool(opts[k])
        return cls(**opts)
