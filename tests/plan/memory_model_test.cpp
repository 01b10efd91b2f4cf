// The execution model's closed forms: step FLOPs against Megatron's eq. 3, memory per rank
// against hand-derived numbers for a small model, and the degree checks.

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "trnsim/plan/estimate.h"
#include "trnsim/plan/plan_internal.h"

namespace trnsim::plan {
namespace {

ModelConfig gptLike(uint32_t layers, uint32_t hidden, uint32_t heads, uint32_t vocab) {
  ModelConfig m;
  m.name = "test";
  m.layers = layers;
  m.hidden = hidden;
  m.ffnHidden = 4 * hidden;
  m.heads = heads;
  m.kvHeads = heads;
  m.vocab = vocab;
  m.activation = Activation::kGelu;
  m.tiedEmbeddings = true;
  return m;
}

TEST(StepFlops, FullRecomputeIsMegatronEquation3) {
  // Narayanan et al. 2021 eq. 3: F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
  const uint32_t shapes[][3] = {{24, 2304, 24}, {48, 8192, 64}, {128, 25600, 160}, {2, 64, 4}};
  for (const auto& [layers, hidden, heads] : shapes) {
    Workload w{gptLike(layers, hidden, heads, 51200), 512, 2048};
    const double B = 512, s = 2048, l = layers, h = hidden, V = 51200;
    const double eq3 = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
    StepFlops f = stepFlops(w, Recompute::kFull);
    EXPECT_NEAR(f.hardware / eq3, 1.0, 1e-12) << hidden;
    // Without recomputation the forward runs once: 72 B s l h^2 (1 + s/(6h) + V/(12 l h)).
    const double model = 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h));
    EXPECT_NEAR(f.model / model, 1.0, 1e-12) << hidden;
    EXPECT_NEAR(stepFlops(w, Recompute::kNone).hardware / model, 1.0, 1e-12);
    // Selective recomputation repeats only the attention core: 4 B s^2 h per layer.
    EXPECT_NEAR(stepFlops(w, Recompute::kSelective).hardware / (model + 4 * B * s * s * h * l), 1.0,
                1e-12);
  }
}

TEST(StepFlops, MoeCountsOnlyTheActiveExperts) {
  ModelConfig m = gptLike(4, 1024, 16, 32000);
  m.activation = Activation::kSwiglu;
  m.ffnHidden = 2048;
  m.experts = 8;
  m.topK = 2;
  Workload w{m, 8, 1024};
  // 6 * tokens * active params (matmul part) + attention core, by hand.
  const double tokens = 8.0 * 1024, h = 1024, f = 2048;
  const double perTokenLayer = 2 * (4 * h * h) + 2 * 3 * h * f * 2 + 2 * h * 8 + 4 * 1024 * h;
  const double expected = 3 * tokens * (4 * perTokenLayer + 2 * h * 32000);
  EXPECT_NEAR(stepFlops(w, Recompute::kNone).model / expected, 1.0, 1e-12);
}

class MemoryModel : public ::testing::Test {
 protected:
  // 4 layers, h = 1024, 16 heads, ffn 4096, vocab 32000, tied: per layer 12 h^2 + 4 h.
  ModelConfig model_ = gptLike(4, 1024, 16, 32000);
  Workload w_{model_, 64, 2048};
  static constexpr double h = 1024, L = 4, V = 32000, s = 2048, a = 16;
  const double layerParams = 12 * h * h + 4 * h;

  MemoryBreakdown memory(const Parallelism& p) {
    EXPECT_TRUE(detail::validateParallelism(w_, p, uint64_t{p.tp} * p.pp * p.dp * p.cp).isOk());
    return detail::memoryPerRank(w_, p, detail::rankShape(w_, p));
  }
};

TEST_F(MemoryModel, WeightsGradientsOptimizerByZeroStage) {
  Parallelism p;
  p.tp = 2;
  p.dp = 4;
  p.zero = 0;
  const double params = (L * layerParams + V * h) / 2;  // tied: one embedding copy when pp = 1
  MemoryBreakdown m0 = memory(p);
  EXPECT_DOUBLE_EQ(m0.weights, 2 * params);
  EXPECT_DOUBLE_EQ(m0.gradients, 4 * params);
  EXPECT_DOUBLE_EQ(m0.optimizer, 12 * params);  // Megatron's 18 bytes per parameter
  p.zero = 1;
  EXPECT_DOUBLE_EQ(memory(p).optimizer, 12 * params / 4);  // 6 + 12/dp
  EXPECT_DOUBLE_EQ(memory(p).gradients, 4 * params);
  p.zero = 2;
  EXPECT_DOUBLE_EQ(memory(p).gradients, 4 * params / 4);
  EXPECT_DOUBLE_EQ(memory(p).weights, 2 * params);
  p.zero = 3;
  EXPECT_DOUBLE_EQ(memory(p).weights, 2 * params / 4);
}

TEST_F(MemoryModel, ActivationsFollowKorthikanti) {
  Parallelism p;
  p.tp = 4;
  p.dp = 2;
  p.microbatch = 2;
  const double sbh = s * 2 * h;
  p.recompute = Recompute::kSelective;  // sequence parallel: 34 s b h / t per layer
  EXPECT_DOUBLE_EQ(memory(p).activations, L * 34 * sbh / 4);
  p.recompute = Recompute::kNone;  // s b h (34 + 5 a s / h) / t
  EXPECT_DOUBLE_EQ(memory(p).activations, L * sbh * (34 + 5 * a * s / h) / 4);
  p.sequenceParallel = false;  // s b h (10 + 24/t + 5 a s / (h t))
  EXPECT_DOUBLE_EQ(memory(p).activations, L * sbh * (10 + 24.0 / 4 + 5 * a * s / (h * 4)));
  p.recompute = Recompute::kSelective;
  EXPECT_DOUBLE_EQ(memory(p).activations, L * sbh * (10 + 24.0 / 4));
  p.recompute = Recompute::kFull;  // the layer inputs, plus one layer's working set
  p.sequenceParallel = true;
  EXPECT_DOUBLE_EQ(memory(p).activations, L * 2 * sbh / 4 + sbh * (34 + 5 * a * s / h) / 4);
}

TEST_F(MemoryModel, PipelineKeepsPpMicrobatchesAndInterleavingCostsMore) {
  Parallelism p;
  p.pp = 2;
  p.dp = 2;
  p.recompute = Recompute::kSelective;
  const double sbh = s * 1 * h;
  // First stage: L/pp layers for pp micro-batches in flight = L layers' worth.
  EXPECT_DOUBLE_EQ(memory(p).activations, (L / 2) * 2 * 34 * sbh);
  p.vpp = 2;  // Megatron's penalty 1 + (pp - 1) / (pp * vpp)
  EXPECT_DOUBLE_EQ(memory(p).activations, (L / 2) * 2 * 34 * sbh * (1 + 1.0 / 4));
  // Both stages hold an embedding copy (tied): the worst stage has L/2 layers + V h.
  EXPECT_DOUBLE_EQ(memory(p).weights, 2 * (L / 2 * layerParams + V * h));
}

TEST_F(MemoryModel, MoreTensorParallelismNeedsLessMemoryPerRank) {
  double previous = 1e300;
  for (uint32_t tp : {1u, 2u, 4u, 8u, 16u}) {
    Parallelism p;
    p.tp = tp;
    p.dp = 16 / tp;
    double total = memory(p).total();
    EXPECT_LT(total, previous) << "tp " << tp;
    previous = total;
  }
}

TEST_F(MemoryModel, InvalidDegreesNameTheDegree) {
  struct Case {
    Parallelism p;
    uint64_t ranks;
    const char* degree;
  };
  auto with = [](auto edit) {
    Parallelism p;
    edit(p);
    return p;
  };
  const Case cases[] = {
      {with([](Parallelism& p) { p.tp = 2; p.dp = 2; }), 8, "parallelism.dp"},
      {with([](Parallelism& p) { p.tp = 3; p.dp = 1; }), 3, "parallelism.tp"},
      {with([](Parallelism& p) { p.pp = 8; }), 8, "parallelism.pp"},
      {with([](Parallelism& p) { p.vpp = 2; }), 1, "parallelism.vpp"},
      {with([](Parallelism& p) { p.pp = 2; p.vpp = 4; }), 2, "parallelism.vpp"},
      {with([](Parallelism& p) { p.pp = 4; p.vpp = 2; }), 4, "parallelism.vpp"},
      {with([](Parallelism& p) { p.dp = 128; }), 128, "parallelism.dp"},
      {with([](Parallelism& p) { p.microbatch = 3; }), 1, "parallelism.microbatch"},
      {with([](Parallelism& p) { p.ep = 2; p.dp = 2; }), 2, "parallelism.ep"},
      {with([](Parallelism& p) { p.cp = 3; }), 3, "parallelism.cp"},
      {with([](Parallelism& p) { p.zero = 4; }), 1, "parallelism.zero"},
      {with([](Parallelism& p) { p.tp = 0; }), 1, "parallelism.tp"},
  };
  for (const Case& c : cases) {
    Status st = detail::validateParallelism(w_, c.p, c.ranks);
    ASSERT_FALSE(st.isOk()) << c.degree;
    EXPECT_EQ(st.where(), c.degree) << st.toString();
  }
  Parallelism bad;
  bad.tp = 2;
  bad.dp = 2;
  Status st = detail::validateParallelism(w_, bad, 8);
  EXPECT_NE(st.message().find("set dp = 4"), std::string::npos) << st.toString();
}

}  // namespace
}  // namespace trnsim::plan
