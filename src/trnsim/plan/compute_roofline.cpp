// Roofline compute model for chips the simulator does not time (GPUs, TPUs): each operation
// takes max(padded FLOPs / (peak * efficiency(shape)), bytes / (HBM bandwidth * efficiency))
// plus a fixed per-kernel cost. The constants live in configs/plan/roofline.json.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>

#include "trnsim/plan/compute_model.h"
#include "trnsim/plan/plan_internal.h"
#include "trnsim/support/json_load.h"

namespace trnsim::plan {
namespace detail {

Expected<std::string_view> builtinPlanFile(std::string_view stem) {
  for (const auto& [name, text] : builtinPlanFiles()) {
    if (name == stem) return text;
  }
  return Status(ErrorCode::kInternal,
                fmt::format("configs/plan/{}.json is not built into the library", stem));
}

Expected<std::map<std::string, double>> parseTuningFile(std::string_view text,
                                                        const std::string& origin) {
  TRNSIM_ASSIGN_OR_RETURN(nlohmann::json root, support::parseJsonText(text, origin));
  if (!root.is_object()) {
    return Status(ErrorCode::kParse, "not a JSON object", origin);
  }
  std::map<std::string, double> values;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "description") continue;
    const nlohmann::json& v = it.value();
    std::string where = fmt::format("{}: key '{}'", origin, it.key());
    if (!v.is_object() || !v.contains("value") || !v.contains("source")) {
      return Status(ErrorCode::kConfig, "expected {\"value\": number, \"source\": \"...\"}", where);
    }
    if (!v["value"].is_number() && !v["value"].is_boolean()) {
      return Status(ErrorCode::kConfig, "expected a number for \"value\"", where);
    }
    if (!v["source"].is_string() || v["source"].get<std::string>().empty()) {
      return Status(ErrorCode::kConfig, "expected a non-empty \"source\" string", where);
    }
    const double value =
        v["value"].is_boolean() ? (v["value"].get<bool>() ? 1.0 : 0.0) : v["value"].get<double>();
    // JSON has no inf, but a literal past the double range (1e400) parses to one.
    if (!std::isfinite(value)) {
      return Status(ErrorCode::kConfig, "\"value\" is beyond the range of a double", where);
    }
    values[it.key()] = value;
  }
  return values;
}

Expected<double> tuningValue(const std::map<std::string, double>& values, const std::string& key,
                             const std::string& origin) {
  auto it = values.find(key);
  if (it == values.end()) {
    return Status(ErrorCode::kConfig, "missing", fmt::format("{}: key '{}'", origin, key));
  }
  return it->second;
}

}  // namespace detail

namespace {

struct RooflineParams {
  double maxEfficiency = 0.8;
  double halfEfficiencyDim = 128;
  double tileM = 128, tileN = 128, tileK = 32;
  double memoryEfficiency = 0.8;
  double kernelOverheadS = 0;
};

Expected<RooflineParams> loadRooflineParams(const std::string& override) {
  const std::string origin =
      override.empty() ? "<builtin>/configs/plan/roofline.json" : "RooflineOptions::paramsJson";
  std::string_view text = override;
  if (override.empty()) {
    TRNSIM_ASSIGN_OR_RETURN(text, detail::builtinPlanFile("roofline"));
  }
  TRNSIM_ASSIGN_OR_RETURN(auto values, detail::parseTuningFile(text, origin));
  RooflineParams p;
  struct Item {
    const char* key;
    double* out;
  };
  const Item items[] = {{"max_efficiency", &p.maxEfficiency},
                        {"half_efficiency_dim", &p.halfEfficiencyDim},
                        {"tile_m", &p.tileM},
                        {"tile_n", &p.tileN},
                        {"tile_k", &p.tileK},
                        {"memory_efficiency", &p.memoryEfficiency},
                        {"kernel_overhead_s", &p.kernelOverheadS}};
  for (const Item& item : items) {
    TRNSIM_ASSIGN_OR_RETURN(*item.out, detail::tuningValue(values, item.key, origin));
  }
  return p;
}

double roundUp(double x, double tile) { return tile > 0 ? std::ceil(x / tile) * tile : x; }

class RooflineComputeModel final : public ComputeModel {
 public:
  RooflineComputeModel(const arch::SystemConfig& system, RooflineParams params,
                       RooflineOptions options)
      : params_(params), options_(options) {
    const arch::AcceleratorConfig& a = system.accel;
    ranks_ = std::max<uint32_t>(1, a.ranksPerChip);
    peakBf16_ = a.peakTflopsBf16 * 1e12;
    peakFp8_ = (a.peakTflopsFp8 > 0 ? a.peakTflopsFp8 : a.peakTflopsBf16) * 1e12;
    bytesPerS_ = a.memoryGbps * 1e9 / ranks_ * params_.memoryEfficiency;
    name_ = fmt::format("roofline({})", a.name);
  }

  std::string_view name() const override { return name_; }

  double matmulSeconds(const MatmulShape& s, Precision p) const override {
    if (s.m == 0 || s.n == 0 || s.k == 0 || s.batch == 0) return 0;
    const double m = static_cast<double>(s.m), n = static_cast<double>(s.n),
                 k = static_cast<double>(s.k), b = static_cast<double>(s.batch);
    const double compute = matmulCompute(s, p);
    const double inBytes = p == Precision::kFp8 ? 1.0 : 2.0;
    const double bytes = b * ((m * k + k * n) * inBytes + m * n * 2.0);
    return std::max(compute, bytes / bytesPerS_) + params_.kernelOverheadS;
  }

  double attentionForwardSeconds(const AttentionShape& s, Precision p) const override {
    if (!s.flash) return materializedAttentionSeconds(*this, s, p, false);
    const uint64_t bh = s.batch * s.heads;
    MatmulShape scores{s.seqQ, s.seqKv, s.headDim, bh};
    MatmulShape context{s.seqQ, s.headDim, s.seqKv, bh};
    // One fused kernel: the scores never reach HBM; causal masking skips the upper half.
    return (matmulCompute(scores, p) + matmulCompute(context, p)) * causalFraction(s) +
           qkvoBytes(s) / bytesPerS_ + params_.kernelOverheadS;
  }

  double attentionBackwardSeconds(const AttentionShape& s, Precision p) const override {
    if (!s.flash) return materializedAttentionSeconds(*this, s, p, true);
    const uint64_t bh = s.batch * s.heads;
    MatmulShape scores{s.seqQ, s.seqKv, s.headDim, bh};
    MatmulShape context{s.seqQ, s.headDim, s.seqKv, bh};
    // Flash-attention backward: 5 matmuls (QK^T recomputed, dV, dP, dQ, dK) against the
    // forward's 2.
    return 2.5 * (matmulCompute(scores, p) + matmulCompute(context, p)) * causalFraction(s) +
           2 * qkvoBytes(s) / bytesPerS_ + params_.kernelOverheadS;
  }

  double memoryBoundSeconds(double bytes) const override {
    if (bytes <= 0) return 0;
    return bytes / bytesPerS_ + params_.kernelOverheadS;
  }

  double peakFlopsPerChip(Precision p) const override {
    return p == Precision::kFp8 ? peakFp8_ : peakBf16_;
  }

 private:
  double rankPeak(Precision p) const { return peakFlopsPerChip(p) / ranks_; }
  double matmulCompute(const MatmulShape& s, Precision p) const {
    const double m = static_cast<double>(s.m), n = static_cast<double>(s.n),
                 k = static_cast<double>(s.k), b = static_cast<double>(s.batch);
    if (m == 0 || n == 0 || k == 0 || b == 0) return 0;
    // Partial tiles cost whole ones; the efficiency then falls with the smallest padded
    // dimension (short K loops and few tiles per SM keep the tensor cores from saturating).
    const double pm = roundUp(m, params_.tileM), pn = roundUp(n, params_.tileN),
                 pk = roundUp(k, params_.tileK);
    const double d = std::min({pm, pn, pk});
    const double eff = params_.maxEfficiency * d / (d + params_.halfEfficiencyDim);
    return 2.0 * pm * pn * pk * b / (rankPeak(p) * eff);
  }
  static double causalFraction(const AttentionShape& s) {
    if (!s.causal || s.seqKv == 0) return 1.0;
    // Query block i of seqQ sees the keys up to its position among seqKv keys: about half,
    // plus the diagonal tiles.
    const double q = static_cast<double>(s.seqQ), kv = static_cast<double>(s.seqKv);
    return std::min(1.0, 0.5 + 0.5 * 128.0 / std::max(q, 128.0) * (q / kv));
  }
  static double qkvoBytes(const AttentionShape& s) {
    const double q = static_cast<double>(s.batch) * s.seqQ * s.heads * s.headDim;
    const double kv = static_cast<double>(s.batch) * s.seqKv * s.kvHeads * s.headDim;
    return 2.0 * (2 * q + 2 * kv);  // read Q, K, V; write O (bf16)
  }

  RooflineParams params_;
  RooflineOptions options_;
  uint32_t ranks_ = 1;
  double peakBf16_ = 0, peakFp8_ = 0, bytesPerS_ = 1;
  std::string name_;
};

}  // namespace

Expected<std::unique_ptr<ComputeModel>> makeRooflineComputeModel(const arch::SystemConfig& system,
                                                                 const RooflineOptions& options) {
  const arch::AcceleratorConfig& a = system.accel;
  const std::string where = system.sourceFile.empty() ? system.name : system.sourceFile;
  if (!(a.peakTflopsBf16 > 0)) {
    return Status(ErrorCode::kConfig,
                  "the roofline compute model needs a positive accelerator.peak_tflops_bf16",
                  where);
  }
  if (!(a.memoryGbps > 0)) {
    return Status(ErrorCode::kConfig,
                  "the roofline compute model needs a positive accelerator.memory_gbps", where);
  }
  try {
    TRNSIM_ASSIGN_OR_RETURN(RooflineParams params, loadRooflineParams(options.paramsJson));
    return std::unique_ptr<ComputeModel>(
        std::make_unique<RooflineComputeModel>(system, params, options));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("roofline model: ") + e.what());
  }
}

Expected<std::unique_ptr<ComputeModel>> makeRooflineComputeModel(const arch::SystemConfig& system) {
  return makeRooflineComputeModel(system, RooflineOptions{});
}

}  // namespace trnsim::plan
