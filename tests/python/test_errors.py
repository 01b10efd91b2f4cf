"""The one Python error boundary (python/src/errors.cpp, docs/python.md): each error code of the
core raises one exception class, the same from every layer, with the documented bases."""
import pathlib
import re

import pytest

from trnsim import _trnsim, nki

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The table of docs/python.md, written out by hand: enumerator -> (class, extra Python bases).
DOCUMENTED = {
    "kInvalidArgument": ("InvalidArgumentError", (ValueError,)),
    "kParse": ("ParseError", (ValueError,)),
    "kConfig": ("ConfigError", (ValueError,)),
    "kVerify": ("VerifyError", ()),
    "kCapacity": ("CapacityError", ()),
    "kUninitializedRead": ("UninitializedReadError", ()),
    "kOutOfBounds": ("OutOfBoundsError", ()),
    "kIo": ("IoError", ()),
    "kCorrupt": ("CorruptError", ()),
    "kUnsupported": ("NotSupportedError", (NotImplementedError,)),
    "kInternal": ("InternalError", ()),
}


def _enumerators_of_status_h():
    """The ErrorCode enumerators as written in src/trnsim/support/status.h (kOk left out)."""
    text = (ROOT / "src/trnsim/support/status.h").read_text()
    body = re.search(r"enum class ErrorCode[^{]*\{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"^\s*(k[A-Za-z]+)\b", body, re.M)
    return [n for n in names if n != "kOk"]


def test_every_error_code_of_the_core_has_a_documented_class():
    codes = [c[0] for c in _trnsim.error_codes()]
    assert codes == _enumerators_of_status_h()
    assert set(codes) == set(DOCUMENTED)


@pytest.mark.parametrize("enum", sorted(DOCUMENTED))
def test_each_code_raises_its_class_with_code_place_and_message(enum):
    name, bases = DOCUMENTED[enum]
    cls = getattr(_trnsim, name)
    assert dict((c[0], c[2]) for c in _trnsim.error_codes())[enum] is cls
    assert issubclass(cls, _trnsim.Error) and issubclass(cls, RuntimeError)
    for b in bases:
        assert issubclass(cls, b), (name, b)
    # A caller mistake is a ValueError; nothing else is.
    assert issubclass(cls, ValueError) == (ValueError in bases)
    with pytest.raises(cls) as e:
        _trnsim._raise_status(enum, "what is wrong", "k.json: key")
    assert type(e.value) is cls
    assert str(e.value) == "k.json: key: what is wrong"
    assert e.value.where == "k.json: key"
    assert e.value.message == e.value.detail == "what is wrong"
    code_names = dict((c[0], c[1]) for c in _trnsim.error_codes())
    assert e.value.code == code_names[enum]
    with pytest.raises(cls, match="^what is wrong$"):
        _trnsim._raise_status(enum, "what is wrong")  # no place: just the message


def test_layer_names_are_the_same_classes():
    assert _trnsim.sim.SimError is _trnsim.Error
    assert _trnsim.fabric.FabricError is _trnsim.Error
    assert _trnsim.nki.CoreError is _trnsim.Error
    assert _trnsim.compiler.CompileError is _trnsim.Error
    for name in ("VerifyError", "CapacityError", "OutOfBoundsError", "UninitializedReadError"):
        assert getattr(_trnsim.sim, name) is getattr(_trnsim, name)
    # nki's located classes derive from the core's (docs/nki.md).
    assert issubclass(nki.UninitializedReadError, _trnsim.UninitializedReadError)
    assert issubclass(nki.VerifyError, _trnsim.VerifyError)


def test_real_errors_from_different_layers_cross_the_same_boundary(tmp_path):
    # kParse from isa, from a program's text.
    with pytest.raises(_trnsim.ParseError, match=r"k\.tsim:1"):
        _trnsim.isa.normalize_program_text("this is not a program\n", "k.tsim")
    # kIo from arch, for a file that is not there.
    with pytest.raises(_trnsim.IoError, match="nope.json"):
        _trnsim.arch.load_chip(str(tmp_path / "nope.json"))
    # kVerify from the sim builder: 129 partitions on a 128-partition chip.
    b = _trnsim.sim.KernelBuilder("trn2", "k")
    with pytest.raises(_trnsim.VerifyError):
        b.sbuf("t", "float32", [129, 4])


def test_the_documented_table_lists_every_class():
    doc = (ROOT / "docs/python.md").read_text()
    rows = dict(re.findall(r"^\| `(k[A-Za-z]+)` \| `([A-Za-z]+)` \|", doc, re.M))
    assert rows == {enum: name for enum, (name, _) in DOCUMENTED.items()}
