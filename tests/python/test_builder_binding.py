"""One Python binding of the kernel builder and of programs (issue 13): trnsim._trnsim.sim's
KernelBuilder and Program serve both scripts (names, Tensor objects) and the NKI tracer (enum
numbers, flat access-pattern tuples). The two spellings must build the same program, checked
through the core's text printer; NKI runs hand back sim.Program objects that sim.Chip loads."""

import numpy as np
import pytest

from trnsim import nki
from trnsim._trnsim import isa as cisa
from trnsim._trnsim import nki as cnki
from trnsim._trnsim import sim
from trnsim.nki import language as nl


def _build(cheap):
    kb = sim.KernelBuilder("trn2", "same")
    if cheap:
        x = kb.sbuf("x", "float32", [4, 8]).id
        y = kb.sbuf("y", "float32", [4, 8]).id
        r = kb.sbuf("r", "float32", [4, 1]).id
        # (tensor id, partition offset, partition stride, partitions, offset, stride, count)
        X, Y, R = (x, 0, 1, 4, 0, 1, 8), (y, 0, 1, 4, 0, 1, 8), (r, 0, 1, 4, 0, 1, 1)
        alu, act, eng = ({n: i for i, n in enumerate(t())} for t in
                         (cisa.alu_ops, cisa.act_funcs, cisa.engines))
        kb.iota(X, [1], 0.0, 1.0)
        kb.tensor_scalar(Y, X, alu["multiply"], 2.0, alu["add"], 1.0, False, False,
                         eng["gpsimd"])
        kb.activation(Y, act["exp"], Y, None, 0.5, 0, None)
        kb.tensor_reduce(R, alu["max"], Y, [1], False, eng["vector"])
        kb.tensor_tensor(Y, X, Y, alu["subtract"], eng["vector"])
        kb.select_reduce(Y, X, Y, -1.0, alu["max"], R, True)
    else:
        x = kb.sbuf("x", "float32", [4, 8])
        y = kb.sbuf("y", "float32", [4, 8])
        r = kb.sbuf("r", "float32", [4, 1])
        kb.iota(dst=x, pattern=[[1, 8]], offset=0.0, channel_multiplier=1.0)
        kb.tensor_scalar(dst=y, data=x, op0="multiply", operand0=2.0, op1="add", operand1=1.0,
                         engine="gpsimd")
        kb.activation(dst=y, op="exp", data=y, scale=0.5)
        kb.tensor_reduce(dst=r, op="max", data=y, axis=1)
        kb.tensor_tensor(dst=y, data1=x, data2=y, op="subtract")
        kb.select_reduce(dst=y, predicate=x, on_true=y, on_false=-1.0, reduce_op="max",
                         reduce_res=r, reverse_pred=True)
    return kb.finish()


def test_names_and_numbers_build_the_same_program():
    a, b = _build(cheap=False), _build(cheap=True)
    assert a.num_instructions == b.num_instructions == 6
    assert a.text() == b.text()
    assert "gpsimd" in a.text() and "exp" in a.text()


def test_bad_values_are_clear_errors():
    kb = sim.KernelBuilder("trn2", "bad")
    x = kb.sbuf("x", "float32", [4, 8])
    with pytest.raises(ValueError, match="unknown ALU operation 'plus'"):
        kb.tensor_tensor(dst=x, data1=x, data2=x, op="plus")
    with pytest.raises(ValueError, match="ALU operation number 99 is out of range"):
        kb.tensor_tensor(x, x, x, 99)
    with pytest.raises(ValueError, match="engine number 6 is out of range"):
        kb.tensor_copy(x, x, 6)
    with pytest.raises(ValueError, match="unknown activation function 'expo'"):
        kb.activation(x, "expo", x)
    with pytest.raises(ValueError, match="bad length"):
        kb.tensor_copy((0, 0, 8, 4), x)
    with pytest.raises(TypeError, match="expected a tensor"):
        kb.tensor_copy(x, [1, 2])
    with pytest.raises(ValueError, match="oob_mode"):
        kb.dma_copy(x, x, oob_mode="wrap")
    kb.finish()
    with pytest.raises(ValueError, match="already finished"):
        kb.memset(x, 0.0)


def test_one_class_for_sim_and_nki():
    assert not hasattr(cnki, "Builder") and not hasattr(cnki, "Program")

    @nki.jit
    def double(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.multiply(nl.load(x), 2.0))
        return out

    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    np.testing.assert_array_equal(double(x), 2 * x)
    prog = double.last_run.programs[0]
    assert type(prog) is sim.Program
    # The traced program loads and runs on a sim.Chip like any other.
    chip = sim.Chip("trn2")
    chip.load([prog])
    res = chip.run(detect_uninitialized=False)
    assert res["instructions"] == prog.num_instructions > 0
