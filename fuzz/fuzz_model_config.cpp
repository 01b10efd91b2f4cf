// Fuzz target: the planner's model loader (plan::parseModelConfig): trnsim model files
// (configs/models/*.json) and Hugging Face config.json files (hf_config.h) alike. Any bytes give
// a model with the shape rules the loader checks (whole heads, GQA groups, top_k <= experts,
// MoE-only keys only on MoE models) and finite parameter and FLOP counts computed in bounded
// time whatever its layer count, or a user's error.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz_json.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trnsim;
  auto loaded = plan::parseModelConfig(textOf(data, size), "fuzz-model.json");
  if (!loaded) {
    expectUserError(loaded.status());
    return 0;
  }
  const plan::ModelConfig& m = *loaded;
  require(m.layers >= 1 && m.hidden >= 1 && m.ffnHidden >= 1 && m.heads >= 1 && m.vocab >= 1,
          "a size is 0");
  require(m.hidden % m.heads == 0, "hidden is not a multiple of heads");
  require(m.kvHeads >= 1 && m.kvHeads <= m.heads && m.heads % m.kvHeads == 0,
          "kv_heads does not divide heads");
  require(m.experts >= 1 && m.topK >= 1 && m.topK <= m.experts, "top_k is outside 1..experts");
  require(m.experts > 1 || (m.sharedExperts == 0 && m.denseLayers == 0 && m.denseFfnHidden == 0),
          "a dense model has MoE-only keys");
  require(m.experts == 1 || m.denseLayers < m.layers, "dense_layers >= layers in a MoE model");
  // O(1) in the layer count (up to 2^32 - 1): a loop over layers would time out here.
  const double total = m.totalParams(), active = m.activeParams();
  require(std::isfinite(total) && total > 0, "the parameter count is not a positive finite number");
  require(std::isfinite(active) && active > 0 && active <= total * (1 + 1e-12),
          "the active parameters are not in (0, total]");
  plan::Workload w;
  w.model = m;
  w.globalBatch = 1;
  w.seq = 1;
  const plan::StepFlops flops = plan::stepFlops(w, plan::Recompute::kFull);
  require(std::isfinite(flops.model) && flops.model > 0 && flops.hardware >= flops.model,
          "the step FLOPs are not finite, or recomputation lowers them");
  return 0;
}
