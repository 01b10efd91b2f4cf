"""The isa submodule: opcode table and text form, against the documented ISA (docs/isa.md)."""
import re
from pathlib import Path

import pytest

from trnsim._trnsim import isa

DOCS = Path(__file__).resolve().parents[2] / "docs" / "isa.md"


def test_every_documented_opcode_exists():
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \(", DOCS.read_text(), re.M))
    assert {"nc_matmul", "dma_copy", "activation"} <= documented
    assert documented <= set(isa.opcodes())


def test_bad_program_text_raises_with_line():
    with pytest.raises(ValueError, match=r"k\.tsim:1"):
        isa.normalize_program_text("this is not a program\n", "k.tsim")
