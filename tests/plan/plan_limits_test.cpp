// Bad numbers never make the planner lie (issue 14): each case the issue saw is now a clean
// error naming the option (or the system key) at fault, or a finite result checked against a
// hand computation; a model's layer count costs the search nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/plan_internal.h"
#include "trnsim/plan/request.h"
#include "trnsim/plan/run.h"

namespace trnsim::plan {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

ModelConfig llamaLike(uint32_t layers) {
  ModelConfig m;
  m.name = "llama-like";
  m.layers = layers;
  m.hidden = 4096;
  m.ffnHidden = 14336;
  m.heads = 32;
  m.kvHeads = 8;
  m.vocab = 128256;
  m.activation = Activation::kSwiglu;
  return m;
}

/// llama3-8b on 64 DGX H100 GPUs, tp 8, timed by the roofline (fast, no simulator).
PlanRequest baseRequest() {
  PlanRequest r;
  auto model = loadModel("llama3-8b");
  EXPECT_TRUE(model.hasValue()) << model.status().toString();
  r.workload.model = *model;
  r.workload.globalBatch = 64;
  r.workload.seq = 4096;
  auto system = arch::loadSystem("dgx-h100");
  EXPECT_TRUE(system.hasValue()) << system.status().toString();
  r.system = *system;
  r.chips = 64;
  r.tp = 8;
  r.computeModel = [](const arch::SystemConfig& s) { return makeRooflineComputeModel(s); };
  return r;
}

/// planRequest(r) fails with kInvalidArgument at `where`, its message holding `text`.
void expectRefused(const PlanRequest& r, const std::string& where, const std::string& text) {
  Expected<PlanReport> report = planRequest(r);
  ASSERT_FALSE(report.hasValue()) << "planned, but expected an error at " << where;
  EXPECT_EQ(report.status().code(), ErrorCode::kInvalidArgument) << report.status().toString();
  EXPECT_EQ(report.status().where(), where) << report.status().toString();
  EXPECT_NE(report.status().message().find(text), std::string::npos) << report.status().toString();
}

TEST(PlanLimits, TokensBeyondAnyRunAreAnErrorNotZeroSteps) {
  // The issue: --tokens 1e26 gave 0 steps and null days and cost (the step count wrapped).
  Expected<double> parsed = parseTokenCount("1e26");
  ASSERT_FALSE(parsed.hasValue());
  EXPECT_EQ(parsed.status().where(), "--tokens");
  EXPECT_NE(parsed.status().message().find("1e+18"), std::string::npos)
      << parsed.status().toString();
  EXPECT_FALSE(parseTokenCount("1001P").hasValue());
  EXPECT_FALSE(parseTokenCount("1e308P").hasValue());  // the suffix overflowed to inf
  ASSERT_TRUE(parseTokenCount("1000P").hasValue());
  EXPECT_EQ(*parseTokenCount("1000P"), 1e18);

  PlanRequest r = baseRequest();
  r.tokens = 1e26;
  expectRefused(r, "--tokens", "token count");
  r.tokens = kNan;
  expectRefused(r, "--tokens", "token count");
  r.tokens = -5;
  expectRefused(r, "--tokens", "token count");
}

TEST(PlanLimits, TheLargestTokenCountGivesExactFiniteFigures) {
  // 1e18 tokens at 64 x 4096 = 262,144 tokens per step: ceil(1e18 / 262144) steps.
  PlanRequest r = baseRequest();
  r.tokens = 1e18;
  Expected<PlanReport> report = planRequest(r);
  ASSERT_TRUE(report.hasValue()) << report.status().toString();
  const RunEstimate& run = *report->primary.run;
  const uint64_t steps = (uint64_t{1000000000000000000} + 262143) / 262144;
  EXPECT_EQ(run.steps, steps);
  const double step = report->primary.step.stepTimeS;
  EXPECT_DOUBLE_EQ(run.computeDays, static_cast<double>(steps) * step / 86400.0);
  EXPECT_TRUE(std::isfinite(run.timeToTrainDays) && run.timeToTrainDays >= run.computeDays);
  EXPECT_TRUE(std::isfinite(run.costUsd) && run.costUsd > 0);
  EXPECT_TRUE(run.goodput > 0 && run.goodput <= 1);
}

TEST(PlanLimits, StepCountsPastTwoToThe53AreRefusedNamingTokens) {
  // One token per step: 1e17 steps cannot be counted exactly in a double.
  arch::SystemConfig s;
  s.name = "fake";
  s.chipsPerNode = 8;
  s.checkpointGbpsPerNode = 10;
  StepEstimate e;
  e.stepTimeS = 1;
  e.breakdown.compute = 1;
  Expected<RunEstimate> run = estimateRunWith(s, 8, 1.0, e, 1e17, ReliabilityModel{});
  ASSERT_FALSE(run.hasValue());
  EXPECT_EQ(run.status().where(), "--tokens");
  EXPECT_NE(run.status().message().find("2^53"), std::string::npos) << run.status().toString();
  // 2^52 steps still count exactly: 4,503,599,627,370,496 of them.
  run = estimateRunWith(s, 8, 1.0, e, 4503599627370496.0, ReliabilityModel{});
  ASSERT_TRUE(run.hasValue()) << run.status().toString();
  EXPECT_EQ(run->steps, uint64_t{1} << 52);
  EXPECT_DOUBLE_EQ(run->computeDays, 4503599627370496.0 / 86400.0);
}

TEST(PlanLimits, NanReliabilityOptionsAreErrorsNotIgnored) {
  // The issue: --straggler-sigma nan printed "goodput nan%"; --chip-mtbf-hours nan and
  // --restart-seconds nan were silently replaced by the defaults.
  PlanRequest r = baseRequest();
  r.tokens = 1e12;
  PlanRequest bad = r;
  bad.stragglerSigma = kNan;
  expectRefused(bad, "--straggler-sigma", "[0, 1]");
  bad.stragglerSigma = 1.5;
  expectRefused(bad, "--straggler-sigma", "[0, 1]");
  bad.stragglerSigma = -0.5;  // a negative sigma means "the default" inside; given, it is wrong
  expectRefused(bad, "--straggler-sigma", "[0, 1]");
  bad = r;
  bad.chipMtbfHours = kNan;
  expectRefused(bad, "--chip-mtbf-hours", "(0, 1e+18]");
  bad.chipMtbfHours = 0;
  expectRefused(bad, "--chip-mtbf-hours", "(0, 1e+18]");
  bad.chipMtbfHours = kInf;
  expectRefused(bad, "--chip-mtbf-hours", "(0, 1e+18]");
  bad = r;
  bad.restartSeconds = kNan;
  expectRefused(bad, "--restart-seconds", "(0, 1e+09]");
  bad.restartSeconds = -600;
  expectRefused(bad, "--restart-seconds", "(0, 1e+09]");
  // The same fields set directly on the ReliabilityModel (the C++ API) are checked too.
  bad = r;
  bad.reliability.stragglerSigma = kNan;
  expectRefused(bad, "--straggler-sigma", "log-sigma");
  bad = r;
  bad.reliability.chipMtbfHours = kNan;
  expectRefused(bad, "--chip-mtbf-hours", "[0, 1e+18]");
  bad = r;
  bad.reliability.usdPerNodeHour = kInf;
  expectRefused(bad, "reliability.usdPerNodeHour", "[0, 1e+06]");
}

TEST(PlanLimits, GivenReliabilityOptionsChangeTheRunAsComputedByHand) {
  // sigma 0 removes the straggler term; a given MTBF and restart time set the job's MTBF and
  // the restart cost exactly.
  PlanRequest r = baseRequest();
  r.tokens = 1e12;
  r.stragglerSigma = 0;
  r.chipMtbfHours = 64000;
  r.restartSeconds = 300;
  Expected<PlanReport> report = planRequest(r);
  ASSERT_TRUE(report.hasValue()) << report.status().toString();
  const RunEstimate& run = *report->primary.run;
  EXPECT_EQ(run.stragglerSlowdown, 0);
  EXPECT_DOUBLE_EQ(run.mtbfHours, 64000.0 / 64);
  EXPECT_EQ(run.restartS, 300);
  // Young/Daly on the checkpoint write time and the job MTBF of 1000 h.
  const double m = 1000 * 3600.0, d = run.checkpointWriteS;
  EXPECT_NEAR(run.checkpointIntervalS, std::sqrt(2 * d * m) - d, 1e-9 * m);
}

TEST(PlanLimits, EveryNumericOptionIsRangeCheckedNamingIt) {
  PlanRequest r = baseRequest();
  PlanRequest bad = r;
  bad.chips = 0;
  expectRefused(bad, "--chips", "1..16777216");
  bad.chips = kMaxChips + 1;
  expectRefused(bad, "--chips", "1..16777216");
  bad = r;
  bad.workload.globalBatch = 0;
  expectRefused(bad, "--global-batch", "1..");
  bad = r;
  bad.workload.seq = 0;
  expectRefused(bad, "--seq", "1..");
  bad = r;
  bad.tp = 0;
  expectRefused(bad, "--tp", "1..1073741824");
  bad = r;
  bad.microbatch = kMaxDegree + 1;
  expectRefused(bad, "--microbatch", "1..1073741824");
  bad = r;
  bad.zero = 4;
  expectRefused(bad, "--zero", "0, 1, 2 or 3");
  bad = r;
  bad.threads = kMaxThreads + 1;
  expectRefused(bad, "--threads", "0..4096");
  bad = r;
  bad.recipe.dropout = kNan;
  expectRefused(bad, "--dropout", "[0, 1)");
  bad.recipe.dropout = 1;
  expectRefused(bad, "--dropout", "[0, 1)");
  bad = r;
  bad.compare = {"dgx-h100:99999999999"};
  expectRefused(bad, "--compare", "16777216");
}

TEST(PlanLimits, NearZeroBandwidthIsAnErrorNamingTheSystemKey) {
  // The issue: a system with a near-zero bandwidth printed "inf days" and "-nan%" goodput.
  PlanRequest r = baseRequest();
  r.tokens = 1e12;
  r.system.scaleUp[0].linkGbps = 1e-300;  // NVLink: the tp 8 all-reduces run on it
  Expected<PlanReport> report = planRequest(r);
  ASSERT_FALSE(report.hasValue()) << "planned with a 1e-300 GB/s NVLink";
  EXPECT_EQ(report.status().where(), "--system");
  EXPECT_NE(report.status().message().find("tensor-parallel communication"), std::string::npos)
      << report.status().toString();
  EXPECT_NE(report.status().message().find("scale_up.*.link_gbps"), std::string::npos)
      << report.status().toString();
  // A compute rate near zero names the compute part and its keys.
  r = baseRequest();
  r.system.accel.peakTflopsBf16 = 1e-300;
  r.system.accel.peakTflopsFp32 = 1e-300;
  report = planRequest(r);
  ASSERT_FALSE(report.hasValue());
  EXPECT_EQ(report.status().where(), "--system");
  EXPECT_NE(report.status().message().find("accel.peak_tflops_bf16"), std::string::npos)
      << report.status().toString();
}

TEST(PlanLimits, AComparedSystemWithANearZeroRateCarriesItsOwnError) {
  // The primary plan stands; a comparison whose chips compute at 1e-300 TFLOPS (as timed by
  // its compute model) reports why it could not be planned instead of printing inf days.
  PlanRequest r = baseRequest();
  r.tokens = 1e12;
  r.compare = {"dgx-a100-80gb:64"};
  r.computeModel = [](const arch::SystemConfig& s) {
    arch::SystemConfig timed = s;
    if (s.name == "dgx-a100-80gb") timed.accel.peakTflopsBf16 = timed.accel.peakTflopsFp32 = 1e-300;
    return makeRooflineComputeModel(timed);
  };
  Expected<PlanReport> report = planRequest(r);
  ASSERT_TRUE(report.hasValue()) << report.status().toString();
  EXPECT_TRUE(std::isfinite(report->primary.run->timeToTrainDays));
  ASSERT_EQ(report->compare.size(), 1u);
  const std::string& error = report->compare[0].error;
  EXPECT_NE(error.find("--system: the step time"), std::string::npos) << error;
  EXPECT_NE(error.find("not a finite number up to 1e+09 s"), std::string::npos) << error;
  EXPECT_NE(error.find("accel.peak_tflops_bf16"), std::string::npos) << error;
}

TEST(PlanLimits, AStepOfCenturiesIsAnErrorNamingThePartAndTheModel) {
  // hidden = 2^32 - 256 on 64 H100s with tp 8: each step would take far more than 1e9 s. The
  // plan is refused (not printed as "1e+11 s" with exit 0), naming compute and the model.
  PlanRequest r = baseRequest();
  r.workload.model = llamaLike(32);
  r.workload.model.name = "wide";
  r.workload.model.hidden = 4294967040u;
  r.tokens = 1e12;
  Expected<PlanReport> report = planRequest(r);
  ASSERT_FALSE(report.hasValue());
  EXPECT_EQ(report.status().where(), "--system");
  const std::string& message = report.status().message();
  EXPECT_NE(message.find("its compute takes"), std::string::npos) << message;
  EXPECT_NE(message.find("model 'wide'"), std::string::npos) << message;
  EXPECT_NE(message.find("on 64 chips"), std::string::npos) << message;
}

TEST(PlanLimits, LayerCountsPerStageInClosedFormMatchALoopOverLayers) {
  // rankShape's busiest stage, found from a few candidate stages, against a loop over every
  // stage and layer (the old code), for dense and MoE models with uneven stages.
  for (uint32_t layers : {1u, 2u, 7u, 13u, 61u, 64u, 97u}) {
    for (uint32_t experts : {1u, 8u}) {
      for (uint32_t denseLayers : {0u, 1u, 3u, 12u}) {
        if (experts == 1 && denseLayers) continue;
        if (denseLayers >= layers && experts > 1) continue;
        for (uint32_t pp = 1; pp <= layers; ++pp) {
          ModelConfig m = llamaLike(layers);
          m.experts = experts;
          m.topK = experts > 1 ? 2 : 1;
          m.denseLayers = denseLayers;
          m.denseFfnHidden = denseLayers ? 18432 : 0;
          m.sharedExperts = experts > 1 ? 1 : 0;
          Parallelism p;
          p.pp = pp;
          p.tp = 4;
          p.ep = experts > 1 ? 2 : 1;
          Workload w{m, 64, 4096};
          double bestDense = 0, bestExpert = 0, bestTotal = -1;
          for (uint32_t stage = 0; stage < pp; ++stage) {
            double dense = 0, expert = 0;
            for (uint64_t i = uint64_t{stage} * layers / pp; i < (stage + 1ull) * layers / pp;
                 ++i) {
              detail::LayerParams lp = detail::layerParams(m, detail::isMoeLayer(m, i));
              dense += (lp.attention + lp.dense) / p.tp;
              expert += lp.experts / p.tp / p.ep;
            }
            const double embed = double(m.vocab) * m.hidden / p.tp;
            if (stage == 0) dense += embed;
            if (stage + 1 == pp && (pp > 1 || !m.tiedEmbeddings)) dense += embed;
            if (dense + expert > bestTotal) {
              bestTotal = dense + expert;
              bestDense = dense;
              bestExpert = expert;
            }
          }
          detail::RankShape r = detail::rankShape(w, p);
          EXPECT_DOUBLE_EQ(r.denseParamsPerRank, bestDense)
              << layers << " layers, pp " << pp << ", dense " << denseLayers;
          EXPECT_DOUBLE_EQ(r.expertParamsPerRank, bestExpert)
              << layers << " layers, pp " << pp << ", dense " << denseLayers;
        }
      }
    }
  }
}

TEST(PlanLimits, ParameterCountsAreClosedFormsInTheLayers) {
  // 12 * h^2-style hand count: per layer q and o (h x h each), k and v (h x 1024 each, GQA 8
  // of 32 heads), 3 SwiGLU matrices h x ffn, 4h of norms; embeddings in and out, final norm.
  for (uint32_t layers : {32u, 1000000u, 4294967295u}) {
    ModelConfig m = llamaLike(layers);
    const double h = 4096, perLayer = 2 * h * h + 2 * h * 1024 + 3 * h * 14336 + 4 * h;
    const double expected = layers * perLayer + 2 * 128256 * h + 2 * h;
    EXPECT_DOUBLE_EQ(m.totalParams(), expected) << layers;
    EXPECT_DOUBLE_EQ(m.activeParams(), expected) << layers;
  }
}

TEST(PlanLimits, SearchTimeDoesNotGrowWithLayers) {
  // The issue: layers 1e6 made the search run for minutes. Layers enter only through their
  // count per stage, so 32 layers and 4 billion search the same candidates in similar time.
  auto system = arch::loadSystem("dgx-h100");
  ASSERT_TRUE(system.hasValue());
  auto planner =
      Planner::create(*system, 64, makeRooflineComputeModel(*system).value(), PlanTuning{});
  ASSERT_TRUE(planner.hasValue()) << planner.status().toString();
  SearchOptions options;
  options.threads = 1;
  auto timed = [&](uint32_t layers, SearchResult& out) {
    Workload w{llamaLike(layers), 64, 4096};
    const auto start = std::chrono::steady_clock::now();
    Expected<SearchResult> r = search(*planner, w, options);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r) out = *r;
    return r.hasValue() ? seconds : -1.0;
  };
  SearchResult small, huge, mid;
  const double smallS = timed(64, small);
  const double hugeS = timed(4294967295u, huge);
  ASSERT_GE(smallS, 0);
  // Every candidate is refused for memory at 4e9 layers, which is an error, not a hang.
  EXPECT_LT(hugeS < 0 ? 0.0 : hugeS, 10 * smallS + 2.0);
  // 1e6 layers: the pipeline spans the 64 ranks; the search still ends quickly.
  const double midS = timed(1000000, mid);
  EXPECT_LT(midS < 0 ? 0.0 : midS, 10 * smallS + 2.0);
  // Layers enter the candidates only through ceil(layers / pp): 2^16 and 2^32 - 1 layers give
  // the same candidates (pp up to the 64 ranks, vpp in {1, 2, 4, 8} for every pp > 1).
  SearchSpace space;
  space.chips = 64;
  auto a = searchCandidates(Workload{llamaLike(65536), 64, 4096}, space, options);
  auto b = searchCandidates(Workload{llamaLike(4294967295u), 64, 4096}, space, options);
  ASSERT_TRUE(a.hasValue() && b.hasValue());
  EXPECT_EQ(a->size(), b->size());
}

TEST(PlanLimits, AHugeModelIsRefusedQuicklyWithACapacityError) {
  // 1e6 layers of llama3-8b (2.2e11 parameters per pipeline stage even at pp 64): nothing
  // fits, and the search says so in well under a second per thousand candidates.
  PlanRequest r = baseRequest();
  r.tp.reset();
  r.workload.model = llamaLike(1000000);
  const auto start = std::chrono::steady_clock::now();
  Expected<PlanReport> report = planRequest(r);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(report.hasValue());
  EXPECT_EQ(report.status().code(), ErrorCode::kCapacity) << report.status().toString();
  EXPECT_LT(seconds, 20.0);
}

}  // namespace
}  // namespace trnsim::plan
