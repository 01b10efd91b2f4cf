// Validation-backed confidence of a plan (docs/validation.md).

#include "trnsim/plan/confidence.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "trnsim/plan/plan_internal.h"
#include "trnsim/support/json_load.h"

namespace trnsim::plan {

namespace {

struct Table {
  std::string source;
  size_t rows = 0;
  double worst = 0;
};

/// configs/plan/validation.json's entry for a table ("megatron", "trn1"); empty when missing.
Table readTable(std::string_view name) {
  Table t;
  Expected<std::string_view> text = detail::builtinPlanFile("validation");
  if (!text) return t;
  Expected<nlohmann::json> parsed = support::parseJsonText(*text, "configs/plan/validation.json");
  if (!parsed || !parsed->contains(name)) return t;
  const nlohmann::json& e = (*parsed)[std::string(name)];
  t.source = e.value("source", "");
  t.rows = e.value("rows", size_t{0});
  t.worst = e.value("worst_abs_error", 0.0);
  return t;
}

/// The built-in file never changes while the process runs: each table is read once (a search
/// asks for it on every candidate).
const Table& table(bool trainium) {
  static const Table trn1 = readTable("trn1");
  static const Table megatron = readTable("megatron");
  return trainium ? trn1 : megatron;
}

}  // namespace

Confidence confidenceOf(const arch::SystemConfig& system, std::string_view computeModel) {
  Confidence c;
  const arch::AcceleratorConfig& a = system.accel;
  if (computeModel == "kernels") {
    c.basis =
        "not validated: the kernel composition charges matmuls, attention and a bandwidth "
        "guess for the rest, and predicted 1.5-1.8x the published Trn1 throughput; use "
        "--compute-model compiled";
    c.assumptions = {"non-matmul work as memory-bound passes at full HBM bandwidth"};
    return c;
  }
  const bool trainium = computeModel == "compiled";
  const Table& t = table(trainium);
  c.errorBand = t.worst;
  c.direct = trainium ? a.simChip == "trn1" : a.name.find("A100") != std::string::npos;
  const std::string validated =
      t.rows ? fmt::format("{}: {} runs, worst |error| {:.1f}%", t.source, t.rows, 100 * t.worst)
             : std::string("the validation set (configs/plan/validation.json missing)");
  if (c.direct) {
    c.basis = "validated against " + validated;
  } else if (trainium) {
    c.basis = fmt::format(
        "extrapolated from Trn1 (validated against {}) with {}'s own engine rates, HBM, fabric "
        "and rank layout; no published {} run is in the validation set",
        validated, a.simChip, a.name);
    c.assumptions = {
        fmt::format("{} engine rates, clocks and TensorE throttling from public specs", a.simChip),
        fmt::format("{} ranks per chip (logical NeuronCores)", a.ranksPerChip),
        "scale-up and EFA link rates derived from per-chip or per-instance figures"};
  } else {
    c.basis = fmt::format(
        "extrapolated from A100 (the roofline's constants fitted to {}) to {}'s peak and "
        "bandwidth; no published {} run is in the validation set",
        validated, a.name, a.name);
    c.assumptions = {"the A100's achieved fraction of peak carries over to this chip",
                     "Megatron-LM's schedule and kernels (flash attention unless --attention "
                     "materialized)"};
  }
  return c;
}

}  // namespace trnsim::plan
