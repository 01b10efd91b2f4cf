"""Inputs and numpy references for the example programs of examples/programs/.

    python examples/programs/make_inputs.py IN            # write IN/<example>/*.npy, print commands
    (run the printed trnsim commands; each writes its outputs to IN/<example>/out)
    python examples/programs/make_inputs.py --check IN    # compare those outputs with numpy

Needs numpy and, for the bfloat16 inputs of matmul_tiled, ml_dtypes (pip install ml_dtypes).
tests/python/test_cli_programs.py runs the same steps.
"""
import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHIPS = 4  # allreduce_4chips


def _bf16():
    try:
        import ml_dtypes
    except ImportError:
        sys.exit("matmul_tiled's inputs are bfloat16: pip install ml_dtypes")
    return ml_dtypes.bfloat16


def make_inputs(name, seed=0):
    """{tensor (or tensor + rank for the cluster example): array} of example `name`."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    if name == "elementwise":
        return {"x": rng.standard_normal((128, 512), f32), "y": rng.standard_normal((128, 512), f32)}
    if name == "matmul_tiled":
        bf16 = _bf16()
        a = rng.standard_normal((128, 256), f32)
        return {"at": np.ascontiguousarray(a.T).astype(bf16),
                "b": rng.standard_normal((256, 512), f32).astype(bf16)}
    if name == "softmax_rows":
        return {"x": 4 * rng.standard_normal((128, 512), f32)}
    if name == "dma_copy":
        return {"x": rng.standard_normal((1024, 1024), f32)}
    if name == "allreduce_4chips":
        return {f"x{r}": rng.standard_normal((128, 256), f32) for r in range(CHIPS)}
    raise ValueError(f"no example {name!r}")


def reference(name, inputs):
    """{output file (relative to the output dir): expected array} of example `name`."""
    if name == "elementwise":
        return {"z.npy": np.maximum(np.float32(0.5) * (inputs["x"] + inputs["y"]), 0)}
    if name == "matmul_tiled":
        at = inputs["at"].astype(np.float32)
        return {"c.npy": at.T @ inputs["b"].astype(np.float32)}
    if name == "softmax_rows":
        x = inputs["x"].astype(np.float64)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return {"y.npy": (e / e.sum(axis=1, keepdims=True)).astype(np.float32)}
    if name == "dma_copy":
        return {"y.npy": inputs["x"]}
    if name == "allreduce_4chips":
        total = inputs["x0"].copy()
        for r in range(1, CHIPS):  # float32, in rank order, as the collective adds
            total = total + inputs[f"x{r}"]
        out = {}
        for r in range(CHIPS):
            out[f"rank{r}/y.npy"] = total
            out[f"rank{r}/s.npy"] = total[32 * r:32 * (r + 1)]
            out[f"rank{r}/y2.npy"] = total
        return out
    raise ValueError(f"no example {name!r}")


# How close each output must be: exact where no arithmetic reorders (copies, collectives summed
# in rank order, one add and one relu), relative tolerance where the order of a sum or exp's
# last bit may differ from numpy's.
TOLERANCE = {"elementwise": 0, "matmul_tiled": 1e-5, "softmax_rows": 1e-5, "dma_copy": 0,
             "allreduce_4chips": 0}
EXAMPLES = list(TOLERANCE)


def command(name, example_dir, trnsim="trnsim"):
    """The trnsim command line (a list) that runs example `name` on the files in `example_dir`."""
    program = str(HERE / f"{name}.tsim")
    inputs = make_inputs(name)
    out = ["--output-dir", str(example_dir / "out")]
    if name == "allreduce_4chips":
        return [trnsim, "cluster", "run", program, "--chips", str(CHIPS),
                "--input", f"x={example_dir / 'x{rank}.npy'}", *out]
    args = [trnsim, "run", program]
    for tensor in inputs:
        args += ["--input", f"{tensor}={example_dir / (tensor + '.npy')}"]
    return args + out


def write_inputs(name, example_dir):
    example_dir.mkdir(parents=True, exist_ok=True)
    for tensor, array in make_inputs(name).items():
        np.save(example_dir / f"{tensor}.npy", array)


def check(name, example_dir):
    """Compares the outputs in example_dir/out with numpy; returns a list of failures."""
    failures = []
    tol = TOLERANCE[name]
    for rel, want in reference(name, make_inputs(name)).items():
        path = example_dir / "out" / rel
        if not path.exists():
            failures.append(f"{path}: missing")
            continue
        got = np.load(path)
        if got.shape != want.shape:
            failures.append(f"{path}: shape {got.shape}, expected {want.shape}")
        elif tol == 0 and not np.array_equal(got, want):
            failures.append(f"{path}: differs from numpy (expected bit-equal)")
        elif tol and not np.allclose(got, want, rtol=tol, atol=tol):
            err = np.max(np.abs(got - want))
            failures.append(f"{path}: differs from numpy by up to {err:g} (rtol {tol})")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir", type=Path, help="where the inputs (and the outputs) go")
    ap.add_argument("--check", action="store_true", help="compare outputs with numpy instead")
    ap.add_argument("--example", choices=EXAMPLES, action="append", help="only these examples")
    args = ap.parse_args()
    names = args.example or EXAMPLES
    if args.check:
        bad = [f for name in names for f in check(name, args.dir / name)]
        print("\n".join(bad) if bad else f"{len(names)} examples match numpy")
        return 1 if bad else 0
    for name in names:
        write_inputs(name, args.dir / name)
        print(shlex.join(command(name, args.dir / name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
