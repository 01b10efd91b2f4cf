"""trnsim.torch's serializer: Core ATen FX graphs -> graph IR text (docs/torch.md has the rules).

Graphs come from torch.export (+ Core ATen decompositions) and from Dynamo/AOTAutograd, as
the backend gets them. These tests need no compiler: they read the text.
"""
import inspect
import re

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import trnsim.torch as tt  # noqa: E402
from trnsim.torch import _serialize as S  # noqa: E402

FILE = "test_torch_serialize.py"


def _line(marker: str) -> int:
    """Line number of the line of this file that ends with `# marker`."""
    src, start = inspect.getsourcelines(inspect.getmodule(_line))
    for i, text in enumerate(src):
        if text.rstrip().endswith(f"# {marker}"):
            return start + i if start else i + 1
    raise AssertionError(marker)


def _export(model, *inputs, **kw):
    from torch._decomp import core_aten_decompositions
    ep = torch.export.export(model, inputs)
    ep = ep.run_decompositions(core_aten_decompositions())
    params = [i for i, s in enumerate(ep.graph_signature.input_specs)
              if s.kind != torch.export.graph_signature.InputKind.USER_INPUT]
    return tt.serialize(ep.graph_module, param_indices=params, **kw)


def _aot_graphs(model, *inputs):
    """The forward graphs AOTAutograd hands a backend (as the trnsim backend gets them)."""
    from torch._decomp import core_aten_decompositions
    from torch._dynamo.backends.common import AotAutograd
    graphs = []

    def fw(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    backend = AotAutograd(fw_compiler=fw, decompositions=core_aten_decompositions())
    with torch.no_grad():
        torch.compile(model, backend=backend, dynamic=False)(*inputs)
    torch._dynamo.reset()
    return graphs


def _node_line(text: str, name: str) -> str:
    for ln in text.splitlines():
        if ln.strip().startswith(f"%{name}:") or ln.strip().startswith(f"%{name}.0:"):
            return ln.strip()
    raise AssertionError(f"no node %{name} in\n{text}")


class AddRelu(nn.Module):
    def forward(self, x, y):
        z = torch.relu(x + y)  # LOC_A
        return z * 2.0, z.sum(-1, keepdim=True)  # LOC_B


def test_ir_text_of_a_three_op_model_is_exact():
    sg = _export(AddRelu(), torch.randn(2, 3), torch.randn(2, 3))
    a, b = _line("LOC_A"), _line("LOC_B")
    assert sg.text.splitlines() == [
        "graph forward(%x: f32[2, 3] input, %y: f32[2, 3] input) {",
        f'  %add: f32[2, 3] = add(%x, %y) {{alpha=1}} @"{FILE}:{a}"',
        f'  %relu: f32[2, 3] = relu(%add) @"{FILE}:{a}"',
        f'  %mul: f32[2, 3] = mul(%relu) {{other=2.0}} @"{FILE}:{b}"',
        f'  %sum_1: f32[2, 1] = sum(%relu) {{dim=[-1], keepdim=1}} @"{FILE}:{b}"',
        "  return %mul, %sum_1",
        "}",
    ]
    assert sg.text.endswith("}\n")
    assert [i.kind for i in sg.inputs] == ["input", "input"]
    assert [o.kind for o in sg.outputs] == ["value", "value"]


def test_parameters_are_params_and_keep_schema_order():
    lin = nn.Linear(5, 3)
    sg = _export(lin, torch.randn(4, 5))
    header = sg.text.splitlines()[0]
    assert header == ("graph forward(%p_weight: f32[3, 5] param, %p_bias: f32[3] param, "
                      "%input: f32[4, 5] input) {")
    # addmm(self=bias, mat1=input, mat2=weight^T) in schema order, defaults filled in
    assert re.search(r"= addmm\(%p_bias, %input, %permute\) \{alpha=1, beta=1\}", sg.text)


class Attrs(nn.Module):
    def forward(self, x, i, m, idx):
        a = x * 2.0 + 1
        b = i + 2
        c = torch.pow(x, 2)
        d = x.masked_fill(m, float("-inf"))
        e = x.to(torch.bfloat16)
        f = F.layer_norm(x, (3,), eps=1e-6)
        g = torch.full((2,), True)
        h = torch.arange(5)
        j = F.gelu(x, approximate="tanh")
        k = torch.clamp(x, max=a)
        sel = x[:, idx]
        return a, b, c, d, e, f, g, h, j, k, sel, x.double(), i.sum()


@pytest.fixture(scope="module")
def attrs_text():
    x, i = torch.randn(2, 3), torch.arange(6).view(2, 3)
    return _export(Attrs(), x, i, torch.rand(2, 3) > 0.5, torch.tensor([0, 2])).text


@pytest.mark.parametrize("name,expected", [
    ("mul", "%mul: f32[2, 3] = mul(%x) {other=2.0}"),           # float stays float
    ("add", "%add: f32[2, 3] = add(%mul) {alpha=1, other=1}"),  # int stays int
    ("add_1", "%add_1: i32[2, 3] = add(%i) {alpha=1, other=2}"),  # int64 -> i32
    ("pow_1", "%pow_1: f32[2, 3] = pow(%x) {exponent=2}"),
    ("scalar_tensor", '%scalar_tensor: f32[] = scalar_tensor() {dtype="f32", s=-inf}'),
    ("where", "%where: f32[2, 3] = where(%m, %scalar_tensor, %x)"),  # bool mask -> u8 input
    ("_to_copy", '%_to_copy: bf16[2, 3] = _to_copy(%x) {dtype="bf16"}'),
    ("full", "%full: u8[2] = full() {fill_value=1, size=[2]}"),  # bool -> u8, True -> 1
    ("arange", "%arange: i32[5] = arange() {end=5, start=0, step=1}"),
    ("gelu", '%gelu: f32[2, 3] = gelu(%x) {approximate="tanh"}'),
    ("clamp", "%clamp: f32[2, 3] = clamp(%x, %add) {min_present=0}"),  # min=None, max=tensor
    ("index", "%index: f32[2, 2] = index(%x, %idx) {indices_present=[0, 1]}"),
    ("_to_copy_1", '%_to_copy_1: f32[2, 3] = _to_copy(%x) {dtype="f32"}'),  # float64 -> f32
    ("sum_1", "%sum_1: i32[] = sum(%i) {dim=[], keepdim=0}"),
])
def test_attributes_follow_the_schema(attrs_text, name, expected):
    line = _node_line(attrs_text, name)
    assert line.split(" @")[0] == expected


def test_layer_norm_eps_prints_as_a_float(attrs_text):
    line = _node_line(attrs_text, "native_layer_norm")
    assert "{eps=1e-06, normalized_shape=[3]}" in line
    assert line.startswith("%native_layer_norm.0: f32[2, 3], %native_layer_norm.1: f32[2, 1], "
                           "%native_layer_norm.2: f32[2, 1] = native_layer_norm(%x)")


def test_input_types_map_bool_int64_to_u8_i32(attrs_text):
    assert attrs_text.splitlines()[0] == (
        "graph forward(%x: f32[2, 3] input, %i: i32[2, 3] input, %m: u8[2, 3] input, "
        "%idx: i32[2] input) {")


class MultiOut(nn.Module):
    def forward(self, x):
        a, b = torch.split(x, [2, 3], dim=1)
        vals, idx = torch.topk(x, 2)
        m = x.max(dim=-1)
        return b * 3.0, idx, m.values, a


def test_multi_output_ops_define_numbered_values():
    sg = _export(MultiOut(), torch.randn(4, 5))
    t = sg.text
    assert ("%split_with_sizes.0: f32[4, 2], %split_with_sizes.1: f32[4, 3] = "
            "split_with_sizes(%x) {dim=1, split_sizes=[2, 3]}") in t
    assert "= mul(%split_with_sizes.1) {other=3.0}" in t
    assert ("%topk.0: f32[4, 2], %topk.1: i32[4, 2] = topk(%x) "
            "{dim=-1, k=2, largest=1, sorted=1}") in t
    assert "%max_1.0: f32[4], %max_1.1: i32[4] = max(%x) {dim=-1, keepdim=0}" in t
    assert "getitem" not in t
    assert t.splitlines()[-2] == "  return %mul, %topk.1, %max_1.0, %split_with_sizes.0"


def test_get_attr_constants_become_params():
    class WithConst(nn.Module):
        def forward(self, x):
            return x + torch.tensor([1.0, 2.0, 3.0])

    (gm,) = _aot_graphs(WithConst(), torch.randn(2, 3))
    sg = tt.serialize(gm)
    header = sg.text.splitlines()[0]
    assert header == "graph forward(%arg0_1: f32[2, 3] input, %_tensor_constant0: f32[3] param) {"
    const = [i for i in sg.inputs if i.constant is not None]
    assert len(const) == 1 and const[0].index is None
    assert torch.equal(const[0].constant, torch.tensor([1.0, 2.0, 3.0]))


def test_loc_is_the_model_line_with_the_full_path_kept():
    sg = _export(AddRelu(), torch.randn(2, 3), torch.randn(2, 3))
    a = _line("LOC_A")
    assert sg.locs["relu"] == f"{__file__}:{a}"
    assert sg.full_loc(f"node 1 (relu) at {FILE}:{a}") == f"{__file__}:{a}"
    assert [u.where for u in sg.ops][:2] == [f"{__file__}:{a}"] * 2


def test_loc_skips_frames_inside_torch():
    # torch.export keeps the frame inside torch/nn/modules/linear.py; the model line is ours.
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x)  # LOC_LIN

    sg = _export(Wrap(), torch.randn(2, 4))
    assert f'@"{FILE}:{_line("LOC_LIN")}"' in _node_line(sg.text, "addmm")


def test_dynamo_graph_params_and_locs():
    model = nn.Sequential(nn.Linear(6, 5), nn.GELU())
    (gm,) = _aot_graphs(model, torch.randn(3, 6))
    from torch._guards import TracingContext  # noqa: F401 - documents where the indices come from
    sg = tt.serialize(gm, param_indices={0, 1}, display_names=["w", "b", "x"])
    kinds = [(i.name, i.kind) for i in sg.inputs]
    assert kinds == [("arg0_1", "param"), ("arg1_1", "param"), ("arg2_1", "input")]
    assert sg.inputs[2].what == "input 'x'"
    assert '= gelu(%addmm) {approximate="none"}' in sg.text


def test_f32_as_bf16_rewrites_every_f32(attrs_text):
    x, i = torch.randn(2, 3), torch.arange(6).view(2, 3)
    sg = _export(Attrs(), x, i, torch.rand(2, 3) > 0.5, torch.tensor([0, 2]), f32_as="bf16")
    assert "f32" not in sg.text
    assert sg.text.count("bf16") > attrs_text.count("bf16")
    assert '%scalar_tensor: bf16[] = scalar_tensor() {dtype="bf16", s=-inf}' in sg.text
    assert sg.inputs[0].ir == "bf16" and sg.inputs[1].ir == "i32"


def test_outputs_that_are_inputs_or_constants_stay_on_the_python_side():
    class Passthrough(nn.Module):
        def forward(self, x, y):
            return x, y * 2, 3

    sg = _export(Passthrough(), torch.randn(2), torch.randn(2))
    assert [o.kind for o in sg.outputs] == ["input", "value", "const"]
    assert sg.outputs[0].ref == 0 and sg.outputs[2].ref == 3
    assert sg.ir_outputs == ["mul"]


def test_duplicate_outputs_are_returned_once():
    class Twice(nn.Module):
        def forward(self, x):
            y = x.exp()
            return y, y

    sg = _export(Twice(), torch.randn(3))
    assert sg.text.splitlines()[-2] == "  return %exp"
    assert [o.ref for o in sg.outputs] == [0, 0]


def test_value_less_assert_ops_emit_nothing():
    class Casts(nn.Module):
        def forward(self, x):
            return x.float() * 2  # torch.export adds aten._assert_tensor_metadata here

    sg = _export(Casts(), torch.randn(3))
    assert "_assert" not in sg.text and all(not u.op.startswith("_assert") for u in sg.ops)


def test_symbolic_shapes_raise_a_clear_error():
    from torch.export import Dim
    from torch._decomp import core_aten_decompositions

    class Tanh(nn.Module):
        def forward(self, x):
            return torch.tanh(x)

    ep = torch.export.export(Tanh(), (torch.randn(4, 3),), dynamic_shapes={"x": {0: Dim("b")}})
    ep = ep.run_decompositions(core_aten_decompositions())
    with pytest.raises(tt.DynamicShapeError, match="dynamic=False"):
        tt.serialize(ep.graph_module)


def test_complex_values_raise_a_dtype_error():
    class Cplx(nn.Module):
        def forward(self, x):
            return torch.view_as_complex(x) * 2

    with pytest.raises(tt.DtypeError, match="complex"):
        _export(Cplx(), torch.randn(3, 2))


@pytest.mark.parametrize("value,text", [
    (1.0, "1.0"), (2, "2"), (True, "1"), (False, "0"), (1e-6, "1e-06"), (0.1, "0.1"),
    (1e20, "1e+20"), (-3.5, "-3.5"), (float("inf"), "inf"), (float("-inf"), "-inf"),
    (float("nan"), "nan"), ("tanh", '"tanh"'), ('a"b\\c', '"a\\"b\\\\c"'), ([1, -2], "[1, -2]"),
    ([], "[]"), ((True, False), "[1, 0]"),
])
def test_attribute_literals(value, text):
    assert S.fmt_attr(value) == text


def test_float_literals_round_trip():
    for v in (1.0 / 3.0, 1e-300, 6.02214076e23, -0.0, 123456789.0):
        s = S.fmt_float(v)
        assert any(c in s for c in ".eE") and float(s) == v


def test_op_names():
    aten = torch.ops.aten
    assert S.ir_op_name(aten.add.Tensor) == "add"
    assert S.ir_op_name(aten._softmax.default) == "_softmax"
    assert S.ir_op_name(aten.native_layer_norm.default) == "native_layer_norm"
    assert S.ir_op_name(aten.sum.dim_IntList) == "sum"
    assert S.aten_name(aten.sum.dim_IntList) == "aten.sum.dim_IntList"


def test_casts_to_bool_become_comparisons():
    """u8 cannot tell x.to(bool) (x != 0) from x.to(uint8) (truncation): write the former as
    ne(%x) {other=0}."""
    class ToBool(nn.Module):
        def forward(self, x, i):
            return x.to(torch.bool), i.to(torch.bool), x.to(torch.uint8)

    sg = _export(ToBool(), torch.randn(4), torch.arange(4))
    assert "%_to_copy: u8[4] = ne(%x) {other=0}" in sg.text
    assert "%_to_copy_1: u8[4] = ne(%i) {other=0}" in sg.text
    assert '%_to_copy_2: u8[4] = _to_copy(%x) {dtype="u8"}' in sg.text
