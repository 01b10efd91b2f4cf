// Planner::estimate end to end on the built-in systems: the breakdown adds up, the rates
// follow from the step time, invalid degrees are errors naming the degree, a model that cannot
// fit says why, and the model responds to each parallel dimension in the right direction.

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/estimate.h"

namespace trnsim::plan {
namespace {

Planner makePlanner(const std::string& system, uint64_t chips) {
  Expected<arch::SystemConfig> s = arch::loadSystem(system);
  EXPECT_TRUE(s.hasValue()) << s.status().toString();
  // The roofline on every system keeps these tests independent of the simulator's timing.
  Expected<std::unique_ptr<ComputeModel>> c = makeRooflineComputeModel(*s);
  EXPECT_TRUE(c.hasValue()) << c.status().toString();
  Expected<Planner> p = Planner::create(*s, chips, std::move(*c), PlanTuning{});
  EXPECT_TRUE(p.hasValue()) << p.status().toString();
  return std::move(p).value();
}

Workload workload(const std::string& model, uint64_t batch, uint32_t seq) {
  Expected<ModelConfig> m = loadModel(model);
  EXPECT_TRUE(m.hasValue()) << m.status().toString();
  return Workload{*m, batch, seq};
}

double breakdownSum(const StepBreakdown& b) {
  return b.compute + b.recompute + b.tpExposed + b.cpExposed + b.epExposed + b.dpExposed +
         b.ppExposed + b.bubble + b.optimizer + b.other;
}

TEST(EstimatePlanner, BreakdownAddsUpAndRatesFollowTheStepTime) {
  Planner planner = makePlanner("dgx-h100", 64);
  Workload w = workload("llama3-8b", 256, 8192);
  Parallelism p;
  p.tp = 4;
  p.pp = 2;
  p.dp = 8;
  p.vpp = 2;
  p.zero = 1;
  Expected<StepEstimate> e = planner.estimate(w, p);
  ASSERT_TRUE(e.hasValue()) << e.status().toString();
  EXPECT_NEAR(breakdownSum(e->breakdown) / e->stepTimeS, 1.0, 1e-12);
  EXPECT_NEAR(e->tokensPerS, 256.0 * 8192 / e->stepTimeS, 1e-9 * e->tokensPerS);
  const StepFlops f = stepFlops(w, p.recompute);
  EXPECT_NEAR(e->modelTflopsPerChip, f.model / e->stepTimeS / 64 / 1e12, 1e-9);
  EXPECT_GT(e->hfu, e->mfu);
  EXPECT_GT(e->mfu, 0.05);
  EXPECT_LT(e->hfu, 1.0);
  EXPECT_GT(e->breakdown.tpExposed, 0);
  EXPECT_GT(e->breakdown.bubble, 0);
  EXPECT_GT(e->breakdown.ppExposed, 0);
  EXPECT_TRUE(e->fits) << e->why;
  // Bubble = (pp - 1) / vpp micro-batch times; with m = 256 / 8 = 32 micro-batches its share
  // of the pipeline is (pp - 1) / (m * vpp) = 1/64.
  const double pipeline = e->breakdown.compute + e->breakdown.recompute + e->breakdown.tpExposed +
                          e->breakdown.ppExposed + e->breakdown.cpExposed + e->breakdown.epExposed;
  EXPECT_NEAR(e->breakdown.bubble / pipeline, 1.0 / 64, 1e-9);
}

TEST(EstimatePlanner, InvalidDegreesAreErrorsNamingTheDegree) {
  Planner planner = makePlanner("dgx-h100", 16);
  Workload w = workload("llama3-8b", 64, 4096);
  Parallelism p;
  p.tp = 8;
  p.dp = 4;  // 32 ranks, but 16 chips
  Expected<StepEstimate> e = planner.estimate(w, p);
  ASSERT_FALSE(e.hasValue());
  EXPECT_EQ(e.status().where(), "parallelism.dp");
  EXPECT_NE(e.status().message().find("16 ranks"), std::string::npos) << e.status().toString();
  Workload w24 = workload("megatron-1.7b", 64, 2048);
  p.tp = 16;  // 24 heads
  p.dp = 1;
  e = planner.estimate(w24, p);
  ASSERT_FALSE(e.hasValue());
  EXPECT_EQ(e.status().where(), "parallelism.tp");
}

TEST(EstimatePlanner, RanksPerChipCountInTheDegrees) {
  // A trn2.48xlarge has 16 chips of 4 logical NeuronCores: 64 ranks.
  Planner planner = makePlanner("trn2.48xlarge", 16);
  Workload w = workload("llama3-8b", 64, 4096);
  Parallelism p;
  p.tp = 4;
  p.dp = 4;  // 16 = the chips, not the ranks
  Expected<StepEstimate> wrong = planner.estimate(w, p);
  ASSERT_FALSE(wrong.hasValue());
  EXPECT_NE(wrong.status().message().find("64 ranks"), std::string::npos)
      << wrong.status().toString();
  p.tp = 8;
  p.dp = 8;
  Expected<StepEstimate> right = planner.estimate(w, p);
  ASSERT_TRUE(right.hasValue()) << right.status().toString();
  EXPECT_NEAR(right->memoryCapacityGib, 96, 1);
}

TEST(EstimatePlanner, ATooLargeModelDoesNotFitAndSaysWhy) {
  Planner planner = makePlanner("dgx-a100-80gb", 8);
  Workload w = workload("llama3-405b", 8, 8192);
  Parallelism p;
  p.tp = 8;
  Expected<StepEstimate> e = planner.estimate(w, p);
  ASSERT_TRUE(e.hasValue()) << e.status().toString();
  EXPECT_FALSE(e->fits);
  EXPECT_GT(e->memoryPerChipGib, e->memoryCapacityGib);
  EXPECT_NE(e->why.find("GiB"), std::string::npos) << e->why;
  EXPECT_NE(e->why.find("optimizer"), std::string::npos) << e->why;
}

TEST(EstimatePlanner, MoreTensorParallelismLessMemoryPerChip) {
  Planner planner = makePlanner("dgx-h100", 64);
  Workload w = workload("llama3-70b", 64, 4096);
  double previous = 1e300;
  for (uint32_t tp : {1u, 2u, 4u, 8u}) {
    Parallelism p;
    p.tp = tp;
    p.dp = 64 / tp;
    Expected<StepEstimate> e = planner.estimate(w, p);
    ASSERT_TRUE(e.hasValue()) << e.status().toString();
    EXPECT_LT(e->memoryPerChipGib, previous) << "tp " << tp;
    previous = e->memoryPerChipGib;
  }
}

TEST(EstimatePlanner, RecomputationTradesTimeForMemory) {
  Planner planner = makePlanner("dgx-h100", 8);
  Workload w = workload("llama3-8b", 32, 4096);
  Parallelism p;
  p.tp = 8;
  StepEstimate byMode[3];
  const Recompute modes[] = {Recompute::kNone, Recompute::kSelective, Recompute::kFull};
  for (int i = 0; i < 3; ++i) {
    p.recompute = modes[i];
    Expected<StepEstimate> e = planner.estimate(w, p);
    ASSERT_TRUE(e.hasValue()) << e.status().toString();
    byMode[i] = *e;
  }
  EXPECT_EQ(byMode[0].breakdown.recompute, 0);
  EXPECT_LT(byMode[0].stepTimeS, byMode[1].stepTimeS);
  EXPECT_LT(byMode[1].stepTimeS, byMode[2].stepTimeS);
  EXPECT_GT(byMode[0].memory.activations, byMode[1].memory.activations);
  EXPECT_GT(byMode[1].memory.activations, byMode[2].memory.activations);
  // Model FLOPs do not depend on recomputation; hardware FLOPs do.
  EXPECT_NEAR(byMode[0].modelTflopsPerChip * byMode[0].stepTimeS,
              byMode[2].modelTflopsPerChip * byMode[2].stepTimeS, 1e-6);
}

TEST(EstimatePlanner, ExpertAndContextParallelismCommunicate) {
  Planner planner = makePlanner("dgx-h100", 32);
  Workload moe = workload("mixtral-8x7b", 64, 4096);
  Parallelism p;
  p.tp = 4;
  p.dp = 8;
  p.ep = 8;
  Expected<StepEstimate> e = planner.estimate(moe, p);
  ASSERT_TRUE(e.hasValue()) << e.status().toString();
  EXPECT_GT(e->breakdown.epExposed, 0);
  p.ep = 1;
  Expected<StepEstimate> noEp = planner.estimate(moe, p);
  ASSERT_TRUE(noEp.hasValue());
  EXPECT_EQ(noEp->breakdown.epExposed, 0);
  EXPECT_LT(e->memory.weights, noEp->memory.weights);  // experts spread over 8 ranks

  Workload dense = workload("llama3-8b", 32, 32768);
  Parallelism c;
  c.tp = 8;
  c.cp = 4;
  Expected<StepEstimate> cp = planner.estimate(dense, c);
  ASSERT_TRUE(cp.hasValue()) << cp.status().toString();
  EXPECT_GT(cp->breakdown.overlappedComm + cp->breakdown.cpExposed, 0);
}

TEST(EstimatePlanner, ZeroThreeGathersWeightsAndShardsThem) {
  Planner planner = makePlanner("dgx-h100", 16);
  Workload w = workload("llama3-8b", 64, 4096);
  Parallelism p;
  p.dp = 16;
  p.zero = 1;
  Expected<StepEstimate> z1 = planner.estimate(w, p);
  p.zero = 3;
  Expected<StepEstimate> z3 = planner.estimate(w, p);
  ASSERT_TRUE(z1.hasValue() && z3.hasValue());
  EXPECT_NEAR(z3->memory.weights * 16, z1->memory.weights, 1e-6 * z1->memory.weights);
  EXPECT_GT(z3->breakdown.dpExposed + z3->breakdown.overlappedComm,
            z1->breakdown.dpExposed + z1->breakdown.overlappedComm);
}

}  // namespace
}  // namespace trnsim::plan
