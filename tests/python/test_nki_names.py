"""The front end's engine, opcode, ALU-operation and activation-function names are the core's
(issue 13): trnsim.nki takes its tables from trnsim._trnsim.isa instead of keeping copies, and
every name it maps a user's spelling to must exist in the core. The checks go through the
core's own printer and parser (program text, sim.KernelBuilder), not through the tables."""

import inspect
import re

import numpy as np
import pytest

from trnsim import nki
from trnsim._trnsim import isa as cisa
from trnsim._trnsim import sim
from trnsim.nki import _names, _ops
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl


def test_tables_are_the_cores_in_enum_order():
    assert list(_names.ALU) == cisa.alu_ops() and list(_names.ALU.values()) == list(
        range(len(cisa.alu_ops())))
    assert list(_names.ACT) == cisa.act_funcs()
    assert list(_names.ENGINE) == cisa.engines()
    assert list(_names.OPCODES) == cisa.opcodes()
    # The core's tables are complete and have no repeats.
    for table in (cisa.alu_ops(), cisa.act_funcs(), cisa.engines(), cisa.opcodes()):
        assert len(set(table)) == len(table) and all(table)


def test_every_spelling_the_front_end_accepts_names_a_core_operation():
    alu, act = set(cisa.alu_ops()), set(cisa.act_funcs())
    assert set(_ops._ALU_NAMES.values()) <= alu
    assert set(_ops._ACT_NAMES.values()) <= act
    for name in dir(nl):
        f = getattr(nl, name)
        if not inspect.isfunction(f):
            continue
        if getattr(f, "_alu", None) is not None:
            assert f._alu in alu, name
        if getattr(f, "_act", None) is not None:
            assert f._act in act, name


def test_every_core_name_parses_in_the_core():
    # The binding parses names with the core's parse*Name functions: each table entry must
    # round-trip (a renamed entry on one side only fails here).
    kb = sim.KernelBuilder("trn2", "names")
    a = kb.sbuf("a", "float32", [4, 8])
    b = kb.sbuf("b", "float32", [4, 8])
    for op in cisa.alu_ops():
        if op in ("bypass",):
            continue
        kb.tensor_tensor(b, a, a, op=op)
    for f in cisa.act_funcs():
        kb.activation(b, f, a)
    for e in ("vector", "gpsimd"):
        kb.tensor_copy(b, a, engine=e)
    text = kb.finish().text()
    for op in cisa.alu_ops():
        if op != "bypass":
            assert re.search(rf"\b{op}\b", text), op
    for f in cisa.act_funcs():
        assert re.search(rf"\b{f}\b", text), f


@pytest.mark.parametrize("engine", [nisa.vector_engine, nisa.gpsimd_engine, nisa.scalar_engine])
def test_nisa_engines_reach_the_core_engine_of_the_same_name(engine):
    @nki.jit
    def k(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        t = nl.load(x)
        u = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.tensor_copy(dst=u, src=t, engine=engine)
        nl.store(out, u)
        return out

    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    np.testing.assert_array_equal(k(x), x)
    text = k.last_run.programs[0].text()
    lines = [ln for ln in text.splitlines() if "tensor_copy" in ln]
    assert len(lines) == 1 and re.search(rf"\b{engine.name}\b", lines[0]), lines
    # Every opcode the traced program holds is one of the core's.
    ops = set(cisa.opcodes())
    for ln in text.splitlines():
        m = re.match(r"\s*(?:\w+\s*:\s*)?([a-z_0-9]+)\b", ln)
        if m and m.group(1) in ops:
            break
    else:
        pytest.fail("no opcode of the core's table in the program text:\n" + text)


def _builder_op(spelling):
    """The ALU operation sim.KernelBuilder makes of `spelling` (its name in the program text),
    or None when the builder refuses it."""
    kb = sim.KernelBuilder("trn2", "alu")
    a = kb.sbuf("a", "float32", [4, 8])
    b = kb.sbuf("b", "float32", [4, 8])
    try:
        kb.tensor_tensor(b, a, a, op=spelling)
    except ValueError:
        return None
    line = [ln for ln in kb.finish().text().splitlines() if "tensor_tensor" in ln][0]
    found = [op for op in cisa.alu_ops() if re.search(rf"\b{op}\b", line)]
    assert len(found) == 1, line
    return found[0]


def _front_end_op(spelling):
    """The core ALU operation nki (nki.isa / nki.language) makes of `spelling`, or None."""
    try:
        return cisa.alu_ops()[_ops._alu(spelling)]
    except nki.errors.NkiValueError:
        return None


def test_the_alias_table_maps_other_spellings_to_core_names():
    aliases, core = cisa.alu_aliases(), set(cisa.alu_ops())
    assert aliases, "the binding's alias table is empty"
    assert not set(aliases) & core  # an alias never shadows a core name
    assert set(aliases.values()) <= core
    assert _ops._ALU_NAMES == aliases  # the front end's table is the binding's


def test_nki_and_the_builder_binding_take_the_same_alu_spellings():
    # Every spelling either side might know: core names, the aliases, every numpy ufunc's name
    # (nki takes np.maximum etc. by name), nki.language's ALU functions, and some that no side
    # should take. Both paths must agree on each: the same core operation, or both refuse.
    spellings = set(cisa.alu_ops()) | set(cisa.alu_aliases()) | set(_ops._ALU_NAMES)
    spellings |= {n for n in dir(np) if isinstance(getattr(np, n), np.ufunc)}
    spellings |= {n for n in dir(nl) if getattr(getattr(nl, n), "_alu", None) is not None}
    spellings |= {"Max", "maximum ", "", "mul", "exp"}
    spellings.discard("bypass")  # a name on both sides, but tensor_tensor refuses it: not shown here
    accepted = 0
    for s in sorted(spellings):
        front, builder = _front_end_op(s), _builder_op(s)
        assert front == builder, (s, front, builder)
        accepted += front is not None
    # Not vacuous: the core's names and the aliases are all taken.
    assert accepted >= len(cisa.alu_ops()) - 1 + len(cisa.alu_aliases())
    for s, core in [("maximum", "max"), ("greater_equal", "is_ge"), ("true_divide", "divide")]:
        assert _builder_op(s) == core and _front_end_op(s) == core
        assert _ops._alu(getattr(np, s)) == _names.ALU[core]  # a numpy ufunc, as kernels pass it


def test_nki_and_the_builder_binding_take_the_same_activation_spellings():
    aliases, core = cisa.act_aliases(), set(cisa.act_funcs())
    assert not set(aliases) & core and set(aliases.values()) <= core
    assert _ops._ACT_NAMES == aliases
    spellings = core | set(aliases) | {n for n in dir(np) if isinstance(getattr(np, n), np.ufunc)}
    spellings |= {"Exp", "", "relu6x"}
    accepted = 0
    for s in sorted(spellings):
        kb = sim.KernelBuilder("trn2", "t")
        a = kb.sbuf("a", "float32", [128, 4])
        b = kb.sbuf("b", "float32", [128, 4])
        try:
            kb.activation(dst=b, op=s, data=a, scale=1.0)
            line = [ln for ln in kb.finish().text().splitlines() if "activation" in ln][0]
            builder = re.search(r"func=(\w+)", line).group(1)
        except ValueError:
            builder = None
        try:
            front = cisa.act_funcs()[_ops._act(s)]
        except (nki.errors.NkiValueError, nki.errors.NotSupportedError):
            front = None
        assert front == builder, (s, front, builder)
        accepted += front is not None
    assert accepted >= len(core) + len(aliases)
    assert _ops._act(np.absolute) == _names.ACT["abs"]  # a numpy ufunc, as kernels pass it
