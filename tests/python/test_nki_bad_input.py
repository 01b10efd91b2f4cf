"""Bad input to trnsim.nki never lies (issue 14, items 3 and 4): unknown targets, 64-bit inputs
that do not fit the chip's 32-bit dtypes, outputs the kernel never wrote, errors placed at the
exact kernel statement, one `trnsim: error:` line from `trnsim nki run`, control characters
escaped. Each case failed (ran silently, or named the wrong line) before these checks."""
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

HERE = __file__
TRNSIM = Path(sys.executable).parent / "trnsim"


def line_of(fn, text):
    src, start = inspect.getsourcelines(fn)
    for i, l in enumerate(src):
        if text in l:
            return start + i
    raise AssertionError(text)


def at(e, fn, marker):
    """Asserts error ``e`` names this file and the line of ``fn`` holding ``marker``."""
    line = line_of(fn.fn if hasattr(fn, "fn") else fn, marker)
    assert str(e).startswith(f"{HERE}:{line}: "), str(e)
    assert e.file == HERE and e.line == line, (e.file, e.line, line)


ONES = np.ones((128, 4), np.float32)


def copy_kernel(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    nl.store(out, nl.load(a))
    return out


# ---- 1. unknown targets --------------------------------------------------------------------


def test_unknown_target_at_the_decorator_names_kernel_and_known_targets():
    def make():
        @nki.jit(target="trn9")  # MARK
        def my_kernel(a):
            return a
        return my_kernel
    with pytest.raises(nki.errors.NkiValueError) as ei:
        make()
    at(ei.value, make, "# MARK")
    msg = str(ei.value)
    assert "my_kernel" in msg and "'trn9'" in msg
    assert all(t in msg for t in ("trn1", "trn2", "trn3"))


def test_unknown_target_at_the_call_and_from_the_environment(monkeypatch):
    k = nki.jit(copy_kernel)

    def call():
        k(ONES, platform_target="gen9")  # MARK
    with pytest.raises(nki.errors.NkiValueError) as ei:
        call()
    at(ei.value, call, "# MARK")
    assert "copy_kernel" in str(ei.value) and "'gen9'" in str(ei.value)

    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn9")
    with pytest.raises(nki.errors.NkiValueError, match="NEURON_PLATFORM_TARGET_OVERRIDE 'trn9'"):
        k(ONES)


def test_known_targets_and_aliases_still_run():
    for t in ("trn1", "TRN2", "gen3", "trn3", "inf2"):
        np.testing.assert_array_equal(nki.jit(copy_kernel, platform_target=t)(ONES), ONES)


# ---- 2. 64-bit inputs ----------------------------------------------------------------------


def test_int64_that_does_not_fit_int32_is_refused_naming_argument_and_value():
    x = np.zeros((128, 4), np.int64)
    x[3, 2] = 2**40 + 1
    k = nki.jit(copy_kernel)

    def call():
        k(x)  # MARK
    with pytest.raises(nki.errors.NkiValueError) as ei:
        call()
    at(ei.value, call, "# MARK")
    msg = str(ei.value)
    for part in ("copy_kernel", "argument 'a'", "int64", str(2**40 + 1), "[3, 2]", "int32",
                 "astype"):
        assert part in msg, (part, msg)


def test_int64_uint64_that_fit_are_converted_exactly():
    x = np.arange(-256, 256, dtype=np.int64).reshape(128, 4) * 4_000_000
    out = nki.jit(copy_kernel)(x)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.astype(np.int64), x)
    u = np.arange(512, dtype=np.uint64).reshape(128, 4) * 8_000_000
    out = nki.jit(copy_kernel)(u)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out.astype(np.uint64), u)
    with pytest.raises(nki.errors.NkiValueError, match="uint64 and holds 4294967296"):
        nki.jit(copy_kernel)(u + 2**32)


def test_float64_outside_float32_range_is_refused_and_rounding_is_numpys():
    x = np.full((128, 4), 0.1)
    x[5, 1] = -1e300
    with pytest.raises(nki.errors.NkiValueError) as ei:
        nki.jit(copy_kernel)(x)
    msg = str(ei.value)
    assert "float64" in msg and "-1e+300" in msg and "[5, 1]" in msg and "float32" in msg
    x[5, 1] = np.inf  # inf stays inf: nothing is lost
    with pytest.warns(nki.errors.NkiNarrowingWarning):  # 0.1 is rounded
        out = nki.jit(copy_kernel)(x)
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_torch_int64_is_checked_too():
    torch = pytest.importorskip("torch")
    t = torch.full((128, 4), 2**40 + 1, dtype=torch.int64)
    with pytest.raises(nki.errors.NkiValueError, match="int64 and holds 1099511627777"):
        nki.jit(copy_kernel)(t)
    out = nki.jit(copy_kernel)(torch.full((128, 4), 7, dtype=torch.int64))
    np.testing.assert_array_equal(out, np.full((128, 4), 7, np.int32))


# ---- 3. outputs the kernel never wrote -----------------------------------------------------


@nki.jit
def half_written(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)  # MARK
    nl.store(out[:, 0:4], nl.load(a))
    return out


def test_unwritten_output_is_an_error_naming_tensor_and_region():
    with pytest.raises(nki.UninitializedReadError) as ei:
        half_written(ONES)
    at(ei.value, half_written, "# MARK")
    msg = str(ei.value)
    assert "half_written" in msg and "'hbm0'" in msg and "[128, 8]" in msg
    assert "512 of 1024" in msg and "[0:128, 4:8]" in msg and "[0, 4]" in msg
    assert "fill_unwritten" in msg


def test_fill_unwritten_zero_fills_and_says_so():
    x = np.random.default_rng(0).standard_normal((128, 4)).astype(np.float32)
    out = nki.jit(half_written, fill_unwritten=0)(x)
    expect = np.concatenate([x, np.zeros((128, 4), np.float32)], axis=1)
    np.testing.assert_array_equal(out, expect)
    text = nki.last_run().summary_text()
    assert "note: output 'hbm0': 512 of 1024 elements never written (region [0:128, 4:8]) " \
           "were filled with 0 (fill_unwritten)" in text
    assert nki.last_run().summary()["notes"]


def test_fill_unwritten_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRNSIM_FILL_UNWRITTEN", "0")
    out = half_written(ONES)
    assert (out[:, 4:] == 0).all() and (out[:, :4] == 1).all()
    monkeypatch.setenv("TRNSIM_FILL_UNWRITTEN", "zero")
    with pytest.raises(nki.errors.NkiValueError, match="fill_unwritten='zero'"):
        half_written(ONES)


@nki.jit
def grid_rows(a):
    out = nl.shared_hbm  # noqa: F841 (the buffer name)
    o = nl.ndarray((256, 4), a.dtype, buffer=nl.shared_hbm)
    i = nl.program_id(0)
    nl.store(o[i * 128:(i + 1) * 128, :], nl.load(a[i * 128:(i + 1) * 128, :]))
    return o


def test_outputs_written_piecewise_are_not_reported():
    x = np.arange(1024, dtype=np.float32).reshape(256, 4)
    np.testing.assert_array_equal(grid_rows[2](x), x)
    with pytest.raises(nki.UninitializedReadError, match=r"region \[128:256, 0:4\]"):
        grid_rows[1](x)


@nki.jit
def int_minus_one(a):
    out = nl.ndarray(a.shape, nl.int32, buffer=nl.shared_hbm)
    nl.store(out, nl.load(a))
    return out


def test_written_values_equal_to_the_fill_pattern_are_not_reported():
    x = np.full((128, 4), -1, np.int32)  # all bits set, as unwritten memory is
    np.testing.assert_array_equal(int_minus_one(x), x)


@nki.jit
def masked_store(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    i_p, i_f = nl.mgrid[0:128, 0:8]
    t = nl.load(a)
    nl.store(out[i_p, i_f], t, mask=(i_f < 6))
    return out


def test_masked_store_leaves_the_masked_off_part_unwritten():
    with pytest.raises(nki.UninitializedReadError, match=r"256 of 1024 .*region \[0:128, 6:8\]"):
        masked_store(np.ones((128, 8), np.float32))


# ---- 4. every error at the exact kernel statement -------------------------------------------


@nki.jit
def oob_first(a):
    t = nl.load(a[0:256, :])  # MARK
    return t


@nki.jit
def oob_second(a):
    t = nl.load(a)
    u = t[0:128, 0:9]  # MARK
    return u


@nki.jit
def bad_dtype(a):
    t = nl.load(a)
    u = nl.exp(t, dtype="complex64")  # MARK
    return u


@nki.jit
def bad_buffer(a):
    t = nl.ndarray((128, 4), nl.float32, buffer="sbuf")  # MARK
    return t


@nki.jit
def empty_range(a):
    t = nl.load(a)
    i = nl.arange(0)  # MARK
    return t[i]


@nki.jit
def returns_tile(a, early):
    t = nl.load(a)
    if early:
        return t  # MARK
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    nl.store(out, t)
    return out


@nki.jit
def not_supported(a):
    t = nl.load(a)
    nl.sort(t)  # MARK
    return t


def helper(t):
    return t[0:128, 4:5]  # MARK


@nki.jit
def error_in_helper(a):
    t = nl.load(a)
    return helper(t)


@pytest.mark.parametrize("kernel,exc,args", [
    (oob_first, nki.OutOfBoundsError, ()),
    (oob_second, nki.OutOfBoundsError, ()),
    (bad_dtype, nki.errors.NkiTypeError, ()),
    (bad_buffer, nki.errors.NkiValueError, ()),
    (empty_range, nki.errors.NkiValueError, ()),
    (returns_tile, nki.errors.NkiTypeError, (True,)),
    (not_supported, nki.NotSupportedError, ()),
])
def test_error_names_the_exact_statement(kernel, exc, args):
    with pytest.raises(exc) as ei:
        kernel(ONES, *args)
    at(ei.value, kernel, "# MARK")


def test_error_in_a_helper_names_the_helpers_line():
    with pytest.raises(nki.OutOfBoundsError) as ei:
        error_in_helper(ONES)
    at(ei.value, helper, "# MARK")


def test_returned_tile_names_kernel_and_fix():
    with pytest.raises(nki.errors.NkiTypeError) as ei:
        returns_tile(ONES, True)
    assert "returns_tile returns an on-chip SBUF tile" in str(ei.value)
    assert "shared_hbm" in str(ei.value)
    np.testing.assert_array_equal(returns_tile(ONES, False), ONES)


# ---- 6. control characters escaped ---------------------------------------------------------


@nki.jit
def escape_name(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm, name="out\x1b[2J")
    nl.store(out[:, 0:4], nl.load(a))
    return out


def test_tensor_names_with_escape_sequences_are_escaped():
    with pytest.raises(nki.UninitializedReadError) as ei:
        escape_name(ONES)
    assert "\x1b" not in str(ei.value)
    assert "'out\\x1b[2J'" in str(ei.value)


# ---- 5. trnsim nki run: one error line -----------------------------------------------------

needs_cli = pytest.mark.skipif(not TRNSIM.exists(),
                               reason="the trnsim CLI is installed beside the venv's python")

FAILING = """import numpy as np
from nki import jit
import nki.language as nl


@jit
def k(a):
    t = nl.load(a)
    u = t[0:128, 0:9]
    return u


k(np.ones((128, 4), np.float32))
"""


def run_cli(*args, env=None):
    return subprocess.run([str(TRNSIM), "nki", "run", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@needs_cli
def test_nki_run_prints_one_error_line_with_the_kernel_line(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    r = run_cli(script)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"trnsim: error: {script}:9: slice 0:9 is outside axis 1 of size 4"], r.stderr
    r = run_cli(script, env={"TRNSIM_TRACEBACK": "1"})
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "OutOfBoundsError" in r.stderr


@needs_cli
def test_nki_run_other_errors_name_the_scripts_line(tmp_path):
    script = tmp_path / "check.py"
    script.write_text("import numpy as np\n\nnp.testing.assert_array_equal(1, 2)\n")
    r = run_cli(script)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"trnsim: error: {script}:3: AssertionError")


@needs_cli
def test_nki_run_missing_script_is_one_line(tmp_path):
    r = run_cli(tmp_path / "nope.py")
    assert r.returncode != 0
    assert r.stderr.splitlines() == [
        f"trnsim: error: {tmp_path / 'nope.py'}: cannot run the script: no such file"]


@needs_cli
def test_nki_run_escapes_control_characters_in_file_names(tmp_path):
    script = tmp_path / "k\x1b[31m.py"
    script.write_text(FAILING)
    r = run_cli(script)
    assert r.returncode == 1
    assert "\x1b" not in r.stderr
    assert r.stderr.splitlines() == [
        f"trnsim: error: {tmp_path}/k\\x1b[31m.py:9: slice 0:9 is outside axis 1 of size 4"]


# ---- errors about the launch itself name the calling line --------------------------------------


def test_bad_grid_names_the_call():
    k = nki.jit(copy_kernel)

    def call():
        k[0](ONES)  # MARK
    with pytest.raises(nki.errors.NkiValueError) as ei:
        call()
    at(ei.value, call, "# MARK")
    assert "grid sizes must be >= 1" in str(ei.value)


@nki.jit
def rank_half(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)  # MARK
    nl.store(out[:, 0:4], nl.load(a))
    return out


def test_unwritten_output_of_a_multichip_run_names_the_rank():
    try:
        with pytest.raises(nki.UninitializedReadError) as ei:
            nki.simulate_kernel(rank_half, ONES, num_ranks=2)
    except nki.NotSupportedError:
        pytest.skip("this build has no cluster runtime")
    at(ei.value, rank_half, "# MARK")
    assert "rank 0: rank_half: output 'hbm0'" in str(ei.value)
    outs = nki.simulate_kernel(nki.jit(rank_half, fill_unwritten=0), ONES, num_ranks=2)
    for o in outs:
        np.testing.assert_array_equal(o, np.concatenate([ONES, np.zeros_like(ONES)], axis=1))
    assert "rank 1: output 'hbm0'" in nki.last_run().summary_text()


def test_a_call_outside_a_kernel_names_its_line():
    def call():
        nl.zeros((128, 1), dtype=nl.float32)  # MARK
    with pytest.raises(nki.NkiError) as ei:
        call()
    at(ei.value, call, "# MARK")


@needs_cli
def test_nki_run_syntax_error_is_one_line(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("x = 1\ndef k(:\n    pass\n")
    r = run_cli(script)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"trnsim: error: {script}:2: SyntaxError: ")


@nki.jit
def missing_op(a):
    t = nl.load(a)
    u = nisa.tensor_tensor(t, t)  # MARK
    return u


@nki.jit
def own_bug(a):
    raise ValueError("the kernel's own error")


def test_python_errors_inside_the_api_are_nki_errors_at_the_line():
    with pytest.raises(nki.errors.NkiTypeError) as ei:
        missing_op(ONES)
    at(ei.value, missing_op, "# MARK")
    assert "bad arguments to nki.isa.tensor_tensor" in str(ei.value)
    with pytest.raises(ValueError) as ei:  # the kernel's own exceptions pass through as they are
        own_bug(ONES)
    assert type(ei.value) is ValueError and str(ei.value) == "the kernel's own error"


def test_float64_rounding_warns_and_exact_float64_does_not():
    import warnings
    x = np.full((128, 4), 0.1)
    with pytest.warns(nki.errors.NkiNarrowingWarning,
                      match="copy_kernel: argument 'a' is float64: its values are rounded to "
                            "float32") as rec:
        out = nki.jit(copy_kernel)(x)
    assert rec[0].filename == HERE
    np.testing.assert_array_equal(out, x.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error", nki.errors.NkiNarrowingWarning)
        exact = np.full((128, 4), 0.5)
        exact[0, 0] = np.nan
        out = nki.jit(copy_kernel)(exact)  # float32 holds every value: no warning
    np.testing.assert_array_equal(out, exact.astype(np.float32))
