// The roofline compute model against its formula worked by hand, and its qualitative shape:
// big matmuls approach the fitted efficiency, thin ones are bandwidth-bound, flash attention
// skips the causal half.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_model.h"
#include "trnsim/plan/estimate.h"

namespace trnsim::plan {
namespace {

// Constants of a what-if roofline (not the fitted ones) so the expected values below are
// independent of configs/plan/roofline.json.
const char* kParams = R"({
  "max_efficiency": {"value": 0.5, "source": "test"},
  "half_efficiency_dim": {"value": 100, "source": "test"},
  "tile_m": {"value": 128, "source": "test"}, "tile_n": {"value": 128, "source": "test"},
  "tile_k": {"value": 32, "source": "test"},
  "memory_efficiency": {"value": 0.5, "source": "test"},
  "kernel_overhead_s": {"value": 0.00001, "source": "test"}})";

class Roofline : public ::testing::Test {
 protected:
  void SetUp() override {
    Expected<arch::SystemConfig> s = arch::loadSystem("dgx-a100-80gb");
    ASSERT_TRUE(s.hasValue()) << s.status().toString();
    system_ = *s;
    RooflineOptions o;
    o.paramsJson = kParams;
    Expected<std::unique_ptr<ComputeModel>> m = makeRooflineComputeModel(system_, o);
    ASSERT_TRUE(m.hasValue()) << m.status().toString();
    model_ = std::move(m).value();
  }
  arch::SystemConfig system_;
  std::unique_ptr<ComputeModel> model_;
  const double peak = 312e12, bw = 2039e9 * 0.5, ovh = 1e-5;
};

TEST_F(Roofline, LargeMatmulIsComputeBound) {
  // 4096^3: no padding; d = 4096: eff = 0.5 * 4096 / 4196.
  const double expected = 2.0 * 4096 * 4096 * 4096 / (peak * 0.5 * 4096 / 4196) + ovh;
  EXPECT_NEAR(model_->matmulSeconds({4096, 4096, 4096, 1}, Precision::kBf16), expected, 1e-12);
}

TEST_F(Roofline, PartialTilesCostWholeTiles) {
  // m = 130 pads to 256, k = 40 to 64: d = 64.
  const double expected = 2.0 * 256 * 4096 * 64 / (peak * 0.5 * 64 / 164) + ovh;
  const double bytes = (130.0 * 40 + 40.0 * 4096 + 130.0 * 4096) * 2;
  EXPECT_NEAR(model_->matmulSeconds({130, 4096, 40, 1}, Precision::kBf16),
              std::max(expected - ovh, bytes / bw) + ovh, 1e-12);
}

TEST_F(Roofline, ThinMatmulsPayForWholeTilesOrBandwidth) {
  // m = 1 pads to a 128-row tile (d = 128), against reading the 8192^2 weights once.
  const double compute = 2.0 * 128 * 8192 * 8192 / (peak * 0.5 * 128 / 228);
  const double bytes = (1.0 * 8192 + 8192.0 * 8192 + 8192) * 2;
  EXPECT_NEAR(model_->matmulSeconds({1, 8192, 8192, 1}, Precision::kBf16),
              std::max(compute, bytes / bw) + ovh, 1e-12);
  // Batched 128^3 blocks: 43 FLOP per byte, below this roofline's ridge (about 86): bandwidth-bound.
  const double c2 = 2.0 * 128 * 128 * 128 * 1000 / (peak * 0.5 * 128 / 228);
  const double b2 = 1000.0 * 3 * 128 * 128 * 2;
  EXPECT_NEAR(model_->matmulSeconds({128, 128, 128, 1000}, Precision::kBf16),
              std::max(c2, b2 / bw) + ovh, 1e-12);
  EXPECT_NEAR(model_->memoryBoundSeconds(1e9), 1e9 / bw + ovh, 1e-12);
}

TEST_F(Roofline, FlashAttentionSkipsTheCausalHalfAndMaterializedScoresCostBandwidth) {
  AttentionShape causal{1, 32, 8, 8192, 8192, 128, true};
  AttentionShape full = causal;
  full.causal = false;
  const double c = model_->attentionForwardSeconds(causal, Precision::kBf16);
  const double f = model_->attentionForwardSeconds(full, Precision::kBf16);
  EXPECT_NEAR(c / f, 0.5, 0.02);
  EXPECT_NEAR(model_->attentionBackwardSeconds(full, Precision::kBf16) / f, 2.5, 0.05);

  // Materialized: the whole square through two matmuls, 9 bytes per score through HBM (scale,
  // mask, softmax: read and write 2 + 2; dropout: read and write 2 + 2 and a 1-byte mask); the
  // backward twice the matmuls and 11 bytes per score; 4 and 6 without dropout.
  AttentionShape materialized = causal;
  materialized.flash = false;
  materialized.dropout = true;
  const double scores = 32.0 * 8192 * 8192;
  const double matmuls = model_->matmulSeconds({8192, 8192, 128, 32}, Precision::kBf16) +
                         model_->matmulSeconds({8192, 128, 8192, 32}, Precision::kBf16);
  EXPECT_NEAR(model_->attentionForwardSeconds(materialized, Precision::kBf16),
              matmuls + scores * 9 / bw + ovh, 1e-9);
  EXPECT_NEAR(model_->attentionBackwardSeconds(materialized, Precision::kBf16),
              2 * matmuls + scores * 11 / bw + ovh, 1e-9);
  materialized.dropout = false;
  EXPECT_NEAR(model_->attentionForwardSeconds(materialized, Precision::kBf16),
              matmuls + scores * 4 / bw + ovh, 1e-9);
}

TEST_F(Roofline, BadParamsAreConfigErrors) {
  RooflineOptions o;
  o.paramsJson = R"({"max_efficiency": 0.5})";
  auto m = makeRooflineComputeModel(system_, o);
  ASSERT_FALSE(m.hasValue());
  EXPECT_NE(m.status().toString().find("max_efficiency"), std::string::npos);
}

TEST(EstimatePrecision, Fp8OnAChipWithoutFp8IsAnError) {
  Expected<arch::SystemConfig> s = arch::loadSystem("dgx-a100-80gb");
  ASSERT_TRUE(s.hasValue());
  auto c = makeRooflineComputeModel(*s);
  ASSERT_TRUE(c.hasValue());
  Expected<Planner> planner = Planner::create(*s, 8, std::move(c).value(), PlanTuning{});
  ASSERT_TRUE(planner.hasValue());
  Expected<ModelConfig> m = loadModel("llama3-8b");
  ASSERT_TRUE(m.hasValue());
  Parallelism p;
  p.tp = 8;
  p.precision = Precision::kFp8;
  Expected<StepEstimate> e = planner->estimate(Workload{*m, 8, 4096}, p);
  ASSERT_FALSE(e.hasValue());
  EXPECT_EQ(e.status().where(), "parallelism.precision");
}

}  // namespace
}  // namespace trnsim::plan
