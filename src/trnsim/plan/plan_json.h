#pragma once
// `trnsim plan --json`: the plan as JSON. The primary system's figures are top-level keys
// (step_time_s, tokens_per_s, model_tflops_per_chip, hardware_tflops_per_chip, mfu, hfu,
// memory_per_chip_gib, fits, breakdown{...}, parallelism{...} and, with tokens,
// time_to_train_days, cost_usd, energy_mwh, goodput, checkpoint_interval_s,
// expected_interruptions); "search", "compare" and "goodput_vs_chips" add the rest.
// docs/plan.md lists every key.

#include <string>

#include "trnsim/plan/report.h"

namespace trnsim::plan {

std::string_view recomputeName(Recompute r);  ///< "none", "selective", "full"
std::string_view precisionName(Precision p);  ///< "bf16", "fp8"
std::string_view attentionName(AttentionImpl a);  ///< "flash", "materialized"
/// "flash" or "materialized"; errors name `--attention`.
Expected<AttentionImpl> parseAttention(std::string_view name);

/// The report as a JSON document (`indent` spaces; -1 = one line).
std::string planToJson(const PlanReport& report, int indent = 2);

}  // namespace trnsim::plan
