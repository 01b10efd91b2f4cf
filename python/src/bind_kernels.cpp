// Python bindings of the kernel library (submodule trnsim._trnsim.kernels): build a kernel's
// program in C++, run it on a simulated chip, return numpy arrays and run figures.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "args.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/kernels/attention.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/norm.h"
#include "trnsim/kernels/rope.h"
#include "trnsim/kernels/softmax.h"
#include "trnsim/kernels/swiglu.h"
#include "trnsim/kernels/transpose.h"
#include "trnsim/sim/chip.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

using pybind::check;
using pybind::dtypeArg;
using pybind::unwrap;


py::dict runInfo(const arch::ChipConfig& chip, const sim::RunResult& r) {
  py::dict d;
  d["simulated_ns"] = r.simulatedNs;
  d["instructions"] = r.instructions;
  d["host_seconds"] = r.hostSeconds;
  if (!r.timeline.cores.empty() && r.simulatedNs > 0) {
    const auto& core = r.timeline.cores[0];
    d["tensor_flops"] = core.tensorFlops;
    d["pe_utilization"] = core.tensorFlops / (chip.peakBf16FlopsPerCore() * r.simulatedNs * 1e-9);
    d["hbm_read_bytes"] = core.hbmReadBytes;
    d["hbm_write_bytes"] = core.hbmWriteBytes;
    d["hbm_gbps"] = double(core.hbmReadBytes + core.hbmWriteBytes) / r.simulatedNs;
  }
  return d;
}

/// Tensor `name` of `c` as a new float32 array of `shape`, converted straight into it.
FloatArray readArray(const sim::Chip& c, const std::string& name, std::vector<py::ssize_t> shape) {
  FloatArray out(std::move(shape));
  check(c.readFloats(name, std::span<float>(out.mutable_data(), size_t(out.size()))));
  return out;
}

/// Loads `program` on a fresh chip, writes the inputs, runs, and reads the outputs `outs`
/// (name, shape): returns (tuple of arrays, info).
py::tuple runProgramOutputs(
    const arch::ChipConfig& chip, isa::Program program,
    const std::vector<std::pair<std::string, FloatArray>>& inputs,
    const std::vector<std::pair<std::string, std::vector<py::ssize_t>>>& outs, bool timing,
    uint32_t threads) {
  sim::Chip c(chip);
  check(c.load({std::move(program)}));
  for (const auto& [name, arr] : inputs)
    check(c.writeFloats(name, std::span<const float>(arr.data(), size_t(arr.size()))));
  sim::RunOptions opts;
  opts.computeTiming = timing;
  opts.threads = threads;
  opts.recordEvents = false;
  sim::RunResult r;
  {
    py::gil_scoped_release release;
    r = unwrap(c.run(opts));
  }
  py::tuple arrays(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    arrays[i] = readArray(c, outs[i].first, outs[i].second);
  }
  return py::make_tuple(arrays, runInfo(chip, r));
}

/// The same for one output `outName`: returns (array, info).
py::tuple runProgram(const arch::ChipConfig& chip, isa::Program program,
                     const std::vector<std::pair<std::string, FloatArray>>& inputs,
                     const std::string& outName, std::vector<py::ssize_t> outShape, bool timing,
                     uint32_t threads) {
  const py::tuple r = runProgramOutputs(chip, std::move(program), inputs,
                                        {{outName, std::move(outShape)}}, timing, threads);
  return py::make_tuple(r[0].cast<py::tuple>()[0], r[1]);
}

/// Timing-only run of `program`; returns the info dict.
py::dict timeProgram(const arch::ChipConfig& chip, isa::Program program) {
  sim::Chip c(chip);
  check(c.load({std::move(program)}));
  sim::RunOptions opts;
  opts.computeValues = false;
  opts.recordEvents = false;
  sim::RunResult r;
  {
    py::gil_scoped_release release;
    r = unwrap(c.run(opts));
  }
  return runInfo(chip, r);
}

std::vector<py::ssize_t> shapeOf(const FloatArray& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

kernels::AttentionOptions attentionOptions(bool causal, const py::object& scale, int keyTile) {
  kernels::AttentionOptions o;
  o.causal = causal;
  o.scale = scale.is_none() ? 0.0f : scale.cast<float>();
  o.keyTile = keyTile;
  return o;
}

kernels::MatmulTiling tilingOf(const py::object& t) {
  kernels::MatmulTiling tiling;
  if (t.is_none()) return tiling;
  auto v = t.cast<std::vector<int>>();
  if (v.size() != 3) throw py::value_error("tiling must be (tiles_m, tiles_n, tiles_k)");
  return {v[0], v[1], v[2]};
}

}  // namespace

void bindKernels(py::module_& m) {
  auto sub = m.def_submodule("kernels", "the C++ kernel library, run on a simulated chip");
  sub.def(
      "matmul",
      [](FloatArray lhsT, FloatArray rhs, const std::string& chipName, const std::string& inDtype,
         const std::string& outDtype, bool timing, uint32_t threads, const py::object& tiling) {
        if (lhsT.ndim() != 2 || rhs.ndim() != 2 || lhsT.shape(0) != rhs.shape(0))
          throw py::value_error("matmul expects lhsT [K, M] and rhs [K, N]");
        const auto chip = unwrap(arch::loadChip(chipName));
        const int64_t K = lhsT.shape(0), M = lhsT.shape(1), N = rhs.shape(1);
        auto program = unwrap(kernels::matmulProgram(chip, M, K, N, dtypeArg(inDtype),
                                                     dtypeArg(outDtype), tilingOf(tiling)));
        return runProgram(chip, std::move(program), {{"lhsT", lhsT}, {"rhs", rhs}}, "out", {M, N},
                          timing, threads);
      },
      py::arg("lhsT"), py::arg("rhs"), py::arg("chip") = "trn2", py::arg("in_dtype") = "bfloat16",
      py::arg("out_dtype") = "float32", py::arg("timing") = true, py::arg("threads") = 0,
      py::arg("tiling") = py::none(),
      "out[M, N] = lhsT[K, M].T @ rhs[K, N] with the tiled matmul kernel; returns (out, info)");
  sub.def(
      "softmax",
      [](FloatArray x, const std::string& chipName, const std::string& dtype, bool timing,
         uint32_t threads) {
        if (x.ndim() != 2) throw py::value_error("softmax expects x [rows, cols]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program =
            unwrap(kernels::softmaxProgram(chip, x.shape(0), x.shape(1), dtypeArg(dtype)));
        return runProgram(chip, std::move(program), {{"x", x}}, "out", {x.shape(0), x.shape(1)},
                          timing, threads);
      },
      py::arg("x"), py::arg("chip") = "trn2", py::arg("dtype") = "bfloat16",
      py::arg("timing") = true, py::arg("threads") = 0,
      "row softmax of x [rows, cols]; returns (out, info)");
  sub.def(
      "time_matmul",
      [](int64_t rows, int64_t contraction, int64_t cols, const std::string& chipName,
         const std::string& inDtype, const std::string& outDtype, const py::object& tiling) {
        const auto chip = unwrap(arch::loadChip(chipName));
        return timeProgram(
            chip, unwrap(kernels::matmulProgram(chip, rows, contraction, cols, dtypeArg(inDtype),
                                                dtypeArg(outDtype), tilingOf(tiling))));
      },
      py::arg("m"), py::arg("k"), py::arg("n"), py::arg("chip") = "trn2",
      py::arg("in_dtype") = "bfloat16", py::arg("out_dtype") = "bfloat16",
      py::arg("tiling") = py::none(), "timing-only run of the matmul kernel; returns info");
  sub.def(
      "rmsnorm",
      [](FloatArray x, FloatArray weight, float eps, const std::string& chipName,
         const std::string& dtype, bool timing, uint32_t threads) {
        if (x.ndim() != 2 || weight.ndim() != 1 || weight.shape(0) != x.shape(1))
          throw py::value_error("rmsnorm expects x [rows, hidden] and weight [hidden]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program =
            unwrap(kernels::rmsNormProgram(chip, x.shape(0), x.shape(1), dtypeArg(dtype), eps));
        return runProgram(chip, std::move(program), {{"x", x}, {"weight", weight}}, "out",
                          shapeOf(x), timing, threads);
      },
      py::arg("x"), py::arg("weight"), py::arg("eps") = 1e-6f, py::arg("chip") = "trn2",
      py::arg("dtype") = "bfloat16", py::arg("timing") = true, py::arg("threads") = 0,
      "x / sqrt(mean(x^2, -1) + eps) * weight over x [rows, hidden]; returns (out, info)");
  sub.def(
      "layernorm",
      [](FloatArray x, FloatArray weight, FloatArray bias, float eps, const std::string& chipName,
         const std::string& dtype, bool timing, uint32_t threads) {
        if (x.ndim() != 2 || weight.ndim() != 1 || bias.ndim() != 1 ||
            weight.shape(0) != x.shape(1) || bias.shape(0) != x.shape(1))
          throw py::value_error("layernorm expects x [rows, hidden], weight and bias [hidden]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program =
            unwrap(kernels::layerNormProgram(chip, x.shape(0), x.shape(1), dtypeArg(dtype), eps));
        return runProgram(chip, std::move(program), {{"x", x}, {"weight", weight}, {"bias", bias}},
                          "out", shapeOf(x), timing, threads);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps") = 1e-5f,
      py::arg("chip") = "trn2", py::arg("dtype") = "bfloat16", py::arg("timing") = true,
      py::arg("threads") = 0,
      "(x - mean) / sqrt(var + eps) * weight + bias over the last dim; returns (out, info)");
  sub.def(
      "transpose",
      [](FloatArray x, const std::string& chipName, const std::string& dtype, bool timing,
         uint32_t threads) {
        if (x.ndim() != 2) throw py::value_error("transpose expects x [rows, cols]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program =
            unwrap(kernels::transposeProgram(chip, x.shape(0), x.shape(1), dtypeArg(dtype)));
        return runProgram(chip, std::move(program), {{"x", x}}, "out", {x.shape(1), x.shape(0)},
                          timing, threads);
      },
      py::arg("x"), py::arg("chip") = "trn2", py::arg("dtype") = "bfloat16",
      py::arg("timing") = true, py::arg("threads") = 0, "x.T through TensorE; returns (out, info)");
  sub.def(
      "reduce",
      [](FloatArray x, const std::string& op, int axis, const std::string& chipName,
         const std::string& dtype, bool timing, uint32_t threads) {
        if (x.ndim() != 2) throw py::value_error("reduce expects x [rows, cols]");
        if (op != "sum" && op != "max") throw py::value_error("reduce op must be 'sum' or 'max'");
        if (axis < 0) axis += 2;
        if (axis != 0 && axis != 1) throw py::value_error("reduce axis must be 0, 1 or -1");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(
            kernels::reduceProgram(chip, x.shape(0), x.shape(1),
                                   op == "sum" ? kernels::ReduceOp::kSum : kernels::ReduceOp::kMax,
                                   axis, dtypeArg(dtype), numerics::DType::kFP32));
        return runProgram(chip, std::move(program), {{"x", x}}, "out",
                          {axis == 1 ? x.shape(0) : x.shape(1)}, timing, threads);
      },
      py::arg("x"), py::arg("op") = "sum", py::arg("axis") = -1, py::arg("chip") = "trn2",
      py::arg("dtype") = "bfloat16", py::arg("timing") = true, py::arg("threads") = 0,
      "sum or max of x [rows, cols] over axis (fp32 result); returns (out, info)");
  sub.def(
      "rope",
      [](FloatArray x, FloatArray cos, FloatArray sin, const std::string& chipName,
         const std::string& dtype, bool timing, uint32_t threads) {
        if (x.ndim() != 3 || cos.ndim() != 2 || sin.ndim() != 2)
          throw py::value_error(
              "rope expects x [heads, seq, head_dim], cos and sin [seq, head_dim/2]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program =
            unwrap(kernels::ropeProgram(chip, x.shape(0), x.shape(1), x.shape(2), dtypeArg(dtype)));
        return runProgram(chip, std::move(program), {{"x", x}, {"cos", cos}, {"sin", sin}}, "out",
                          shapeOf(x), timing, threads);
      },
      py::arg("x"), py::arg("cos"), py::arg("sin"), py::arg("chip") = "trn2",
      py::arg("dtype") = "bfloat16", py::arg("timing") = true, py::arg("threads") = 0,
      "rotate-half rotary embedding of x [heads, seq, head_dim]; returns (out, info)");
  sub.def(
      "swiglu",
      [](FloatArray x, FloatArray wGate, FloatArray wUp, FloatArray wDown,
         const std::string& chipName, const std::string& outDtype, bool timing, uint32_t threads) {
        if (x.ndim() != 2 || wGate.ndim() != 2 || wUp.ndim() != 2 || wDown.ndim() != 2)
          throw py::value_error("swiglu expects x [T, H], w_gate, w_up [H, F], w_down [F, H]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(kernels::swigluProgram(chip, x.shape(0), x.shape(1), wGate.shape(1),
                                                     dtypeArg(outDtype)));
        return runProgram(chip, std::move(program),
                          {{"x", x}, {"w_gate", wGate}, {"w_up", wUp}, {"w_down", wDown}}, "out",
                          shapeOf(x), timing, threads);
      },
      py::arg("x"), py::arg("w_gate"), py::arg("w_up"), py::arg("w_down"), py::arg("chip") = "trn2",
      py::arg("out_dtype") = "float32", py::arg("timing") = true, py::arg("threads") = 0,
      "(silu(x @ w_gate) * (x @ w_up)) @ w_down with bf16 operands; returns (out, info)");
  sub.def(
      "attention",
      [](FloatArray q, FloatArray k, FloatArray v, bool causal, const py::object& scale,
         const std::string& chipName, bool timing, uint32_t threads, int keyTile) {
        const bool single = q.ndim() == 2;
        if (q.ndim() != k.ndim() || k.ndim() != v.ndim() || (q.ndim() != 2 && q.ndim() != 3))
          throw py::value_error(
              "attention expects q [Hq, S, D], k and v [Hkv, S, D] (or 2-D [S, D])");
        const int64_t hq = single ? 1 : q.shape(0), hkv = single ? 1 : k.shape(0);
        const int64_t S = q.shape(q.ndim() - 2), D = q.shape(q.ndim() - 1);
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(kernels::attentionProgram(chip, hq, hkv, S, D,
                                                        attentionOptions(causal, scale, keyTile)));
        return runProgram(chip, std::move(program), {{"q", q}, {"k", k}, {"v", v}}, "out",
                          shapeOf(q), timing, threads);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal") = true,
      py::arg("scale") = py::none(), py::arg("chip") = "trn2", py::arg("timing") = true,
      py::arg("threads") = 0, py::arg("key_tile") = 512,
      "flash-attention forward softmax(scale q k^T (+ causal mask)) v with GQA (bf16 operands); "
      "returns (out, info)");
  sub.def(
      "time_attention",
      [](int64_t qHeads, int64_t kvHeads, int64_t seq, int64_t headDim, bool causal,
         const std::string& chipName) {
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(kernels::attentionProgram(chip, qHeads, kvHeads, seq, headDim,
                                                        attentionOptions(causal, py::none(), 512)));
        py::dict info = timeProgram(chip, std::move(program));
        const double useful = kernels::attentionUsefulFlops(qHeads, seq, headDim, causal);
        info["useful_flops"] = useful;
        info["pe_utilization_useful"] =
            useful / (chip.peakBf16FlopsPerCore() * info["simulated_ns"].cast<double>() * 1e-9);
        return info;
      },
      py::arg("q_heads"), py::arg("kv_heads"), py::arg("seq"), py::arg("head_dim") = 128,
      py::arg("causal") = true, py::arg("chip") = "trn2",
      "timing-only run of the attention kernel; info adds pe_utilization_useful (non-masked "
      "flops / peak / time)");
  sub.def(
      "time_rmsnorm",
      [](int64_t rows, int64_t hidden, const std::string& chipName, const std::string& dtype) {
        const auto chip = unwrap(arch::loadChip(chipName));
        py::dict info =
            timeProgram(chip, unwrap(kernels::rmsNormProgram(chip, rows, hidden, dtypeArg(dtype))));
        info["hbm_share_gbps"] = chip.hbmGbpsPerCore();
        info["dma_gbps"] = chip.dma.sustainedGbpsPerCore;
        return info;
      },
      py::arg("rows"), py::arg("hidden"), py::arg("chip") = "trn2", py::arg("dtype") = "bfloat16",
      "timing-only run of the rmsnorm kernel; info adds the per-core HBM share and DMA rate");
  sub.def(
      "attention_lse",
      [](FloatArray q, FloatArray k, FloatArray v, bool causal, const py::object& scale,
         const std::string& chipName, bool timing, uint32_t threads) {
        if (q.ndim() != 3 || k.ndim() != 3 || v.ndim() != 3)
          throw py::value_error("attention_lse expects q [Hq, S, D], k and v [Hkv, S, D]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto opts = attentionOptions(causal, scale, 512);
        opts.writeLse = true;
        auto program = unwrap(
            kernels::attentionProgram(chip, q.shape(0), k.shape(0), q.shape(1), q.shape(2), opts));
        return runProgramOutputs(chip, std::move(program), {{"q", q}, {"k", k}, {"v", v}},
                                 {{"out", shapeOf(q)}, {"lse", {q.shape(0), q.shape(1)}}}, timing,
                                 threads);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal") = true,
      py::arg("scale") = py::none(), py::arg("chip") = "trn2", py::arg("timing") = true,
      py::arg("threads") = 0,
      "attention forward that also returns the rows' log-sum-exp; returns ((out, lse), info)");
  sub.def(
      "attention_backward",
      [](FloatArray q, FloatArray k, FloatArray v, FloatArray out, FloatArray dout, FloatArray lse,
         bool causal, const py::object& scale, const std::string& chipName,
         const std::string& gradDtype, bool timing, uint32_t threads) {
        if (q.ndim() != 3 || k.ndim() != 3 || v.ndim() != 3 || out.ndim() != 3 ||
            dout.ndim() != 3 || lse.ndim() != 2)
          throw py::value_error(
              "attention_backward expects q, out, dout [Hq, S, D], k, v "
              "[Hkv, S, D] and lse [Hq, S]");
        const auto chip = unwrap(arch::loadChip(chipName));
        auto program = unwrap(kernels::attentionBackwardProgram(
            chip, q.shape(0), k.shape(0), q.shape(1), q.shape(2),
            attentionOptions(causal, scale, 512), dtypeArg(gradDtype)));
        return runProgramOutputs(
            chip, std::move(program),
            {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"dout", dout}, {"lse", lse}},
            {{"dq", shapeOf(q)}, {"dk", shapeOf(k)}, {"dv", shapeOf(v)}}, timing, threads);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("dout"), py::arg("lse"),
      py::arg("causal") = true, py::arg("scale") = py::none(), py::arg("chip") = "trn2",
      py::arg("grad_dtype") = "float32", py::arg("timing") = true, py::arg("threads") = 0,
      "flash-attention backward from the forward's out and lse; returns ((dq, dk, dv), info)");
}
