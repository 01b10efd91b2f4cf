// The parallelism search (search.cpp) over a hand-made step model: the best configuration and
// the counts against a brute-force enumeration written independently here, the same answer for
// any thread count, and errors that name the option at fault.

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>

#include "trnsim/plan/run.h"

namespace trnsim::plan {
namespace {

ModelConfig smallModel() {
  ModelConfig m;
  m.name = "toy";
  m.layers = 8;
  m.hidden = 1024;
  m.ffnHidden = 4096;
  m.heads = 16;
  m.kvHeads = 4;
  m.vocab = 32000;
  return m;
}

/// A toy step model with the right shape: compute shrinks with ranks, tp/cp/dp collectives
/// grow with their degrees, the pipeline bubble shrinks with micro-batches and interleaving,
/// recomputation costs compute and saves memory, ZeRO saves memory and costs communication.
StepEstimate toyStep(const Workload& w, const Parallelism& p, double capacityGib) {
  const double ranks = double(p.tp) * p.pp * p.dp * p.cp;
  const double micro = double(w.globalBatch) / (p.dp * p.microbatch);
  double compute = 64.0 / ranks * (1.0 + 0.3 / p.microbatch);  // small micro-batches are slower
  if (p.precision == Precision::kFp8) compute *= 0.7;
  double recompute = p.recompute == Recompute::kFull        ? compute / 3
                     : p.recompute == Recompute::kSelective ? compute / 20
                                                            : 0;
  double tp = 0.01 * (p.tp - 1);
  double cp = 0.015 * (p.cp - 1);
  double dp = 0.002 * std::log2(double(p.dp)) * (p.zero >= 3 ? 1.5 : 1.0);
  double bubble = (p.pp - 1) / (micro * p.vpp) * (compute + recompute) + 0.001 * p.vpp;
  StepEstimate e;
  e.parallelism = p;
  e.breakdown.compute = compute;
  e.breakdown.recompute = recompute;
  e.breakdown.tpExposed = tp;
  e.breakdown.cpExposed = cp;
  e.breakdown.dpExposed = dp;
  e.breakdown.bubble = bubble;
  e.stepTimeS = compute + recompute + tp + cp + dp + bubble;
  double weights = 100.0 / (p.tp * p.pp);
  double states = 300.0 / (p.tp * p.pp) / (p.zero >= 1 ? p.dp : 1);
  double act = 40.0 * p.microbatch / (p.tp * p.cp) *
               (p.recompute == Recompute::kFull        ? 0.1
                : p.recompute == Recompute::kSelective ? 0.5
                                                       : 1);
  e.memoryPerChipGib = weights + states + act;
  e.memoryCapacityGib = capacityGib;
  e.fits = e.memoryPerChipGib <= capacityGib;
  return e;
}

SearchSpace space64() {
  SearchSpace s;
  s.chips = 64;
  s.ranksPerChip = 1;
  s.fp8Available = true;
  s.chipsPerNode = 16;
  s.wattsPerChip = 700;
  return s;
}

Workload toyWorkload() {
  Workload w;
  w.model = smallModel();
  w.globalBatch = 256;
  w.seq = 4096;
  return w;
}

struct Brute {
  uint64_t candidates = 0, fitting = 0;
  double bestTime = 1e300;
  Parallelism best;
};

/// Every combination, by plain loops over 1..n and direct divisibility tests.
Brute bruteForce(const Workload& w, uint64_t ranks, double capacity, bool fp8) {
  Brute b;
  const ModelConfig& m = w.model;
  for (uint32_t tp = 1; tp <= ranks; ++tp)
    for (uint32_t cp = 1; cp <= 16; ++cp)
      for (uint32_t pp = 1; pp <= ranks; ++pp) {
        if (ranks % (uint64_t(tp) * cp * pp)) continue;
        uint32_t dp = uint32_t(ranks / (uint64_t(tp) * cp * pp));
        if (m.heads % tp || (m.kvHeads % tp && tp % m.kvHeads)) continue;
        if (cp > 1 && w.seq % (2 * cp)) continue;
        // Stages need not divide the layers evenly; each needs at least one layer.
        if (pp > m.layers || w.globalBatch % dp) continue;
        const uint32_t busiest = (m.layers + pp - 1) / pp;
        for (uint32_t mb = 1; mb <= 8; ++mb) {
          if ((w.globalBatch / dp) % mb) continue;
          uint64_t micro = w.globalBatch / dp / mb;
          for (uint32_t vpp = 1; vpp <= (pp > 1 ? 8u : 1u); ++vpp) {
            if (busiest % vpp || pp * vpp > m.layers) continue;
            if (vpp > 1 && micro % pp) continue;
            for (int rc = 0; rc < 3; ++rc)
              for (uint32_t zero = 0; zero <= (dp > 1 ? 3u : 0u); ++zero)
                for (int pr = 0; pr < (fp8 ? 2 : 1); ++pr) {
                  Parallelism p;
                  p.tp = tp, p.cp = cp, p.pp = pp, p.dp = dp, p.microbatch = mb, p.vpp = vpp;
                  p.recompute = static_cast<Recompute>(rc);
                  p.zero = zero;
                  p.precision = pr ? Precision::kFp8 : Precision::kBf16;
                  ++b.candidates;
                  StepEstimate e = toyStep(w, p, capacity);
                  if (!e.fits) continue;
                  ++b.fitting;
                  if (e.stepTimeS < b.bestTime) {
                    b.bestTime = e.stepTimeS;
                    b.best = p;
                  }
                }
          }
        }
      }
  return b;
}

auto key(const Parallelism& p) {
  return std::make_tuple(p.tp, p.pp, p.dp, p.cp, p.ep, p.vpp, p.microbatch, p.zero,
                         static_cast<int>(p.recompute), static_cast<int>(p.precision));
}

TEST(SearchTest, FindsTheBruteForceOptimum) {
  // 8 layers split evenly over every pp; 6 and 7 layers leave uneven stages (pp 4, 8).
  for (uint32_t layers : {8u, 6u, 7u}) {
    for (double capacity : {1e9, 80.0, 30.0}) {
      Workload w = toyWorkload();
      w.model.layers = layers;
      SearchSpace space = space64();
      StepFunction f = [capacity](const Workload& wl,
                                  const Parallelism& p) -> Expected<StepEstimate> {
        return toyStep(wl, p, capacity);
      };
      SearchOptions o;
      o.threads = 2;
      auto r = searchWith(f, w, space, o);
      ASSERT_TRUE(r) << r.status().toString();
      Brute b = bruteForce(w, 64, capacity, true);
      EXPECT_EQ(r->candidates, b.candidates) << capacity;
      EXPECT_EQ(r->evaluated, b.candidates);
      EXPECT_EQ(r->fitting, b.fitting) << capacity;
      EXPECT_DOUBLE_EQ(r->best.stepTimeS, b.bestTime) << capacity;
      EXPECT_TRUE(r->best.fits);
      ASSERT_EQ(r->top.size(), 5u);
      for (size_t i = 1; i < r->top.size(); ++i)
        EXPECT_LE(r->top[i - 1].stepTimeS, r->top[i].stepTimeS);
      if (capacity < 1e6) {
        EXPECT_LT(r->fitting, r->candidates) << "the capacity should rule some out";
      }
    }
  }
}

TEST(SearchTest, SameAnswerForAnyThreadCount) {
  Workload w = toyWorkload();
  // A flat step model: many exact ties, so the order of ties matters.
  StepFunction flat = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    StepEstimate e = toyStep(wl, p, 1e9);
    e.stepTimeS = std::round(e.stepTimeS * 10) / 10;
    return e;
  };
  SearchOptions o;
  o.threads = 1;
  auto one = searchWith(flat, w, space64(), o);
  ASSERT_TRUE(one);
  for (uint32_t threads : {2u, 3u, 8u}) {
    o.threads = threads;
    auto many = searchWith(flat, w, space64(), o);
    ASSERT_TRUE(many);
    ASSERT_EQ(many->top.size(), one->top.size());
    for (size_t i = 0; i < one->top.size(); ++i)
      EXPECT_EQ(key(many->top[i].parallelism), key(one->top[i].parallelism)) << threads << " " << i;
    EXPECT_EQ(many->fitting, one->fitting);
  }
}

TEST(SearchTest, FixedDegreesAreKept) {
  Workload w = toyWorkload();
  StepFunction f = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    return toyStep(wl, p, 80);
  };
  SearchOptions o;
  o.fixTp = true;
  o.fixed.tp = 4;
  o.fixPrecision = true;
  o.fixed.precision = Precision::kBf16;
  o.fixRecompute = true;
  o.fixed.recompute = Recompute::kFull;
  auto r = searchWith(f, w, space64(), o);
  ASSERT_TRUE(r) << r.status().toString();
  for (const StepEstimate& e : r->top) {
    EXPECT_EQ(e.parallelism.tp, 4u);
    EXPECT_EQ(e.parallelism.precision, Precision::kBf16);
    EXPECT_EQ(e.parallelism.recompute, Recompute::kFull);
  }
}

TEST(SearchTest, BadFixedDegreesNameTheOption) {
  Workload w = toyWorkload();
  StepFunction f = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    return toyStep(wl, p, 80);
  };
  struct Case {
    const char* option;
    SearchOptions o;
  };
  std::vector<Case> cases(6);
  cases[0] = {"--tp", {}};
  cases[0].o.fixTp = true, cases[0].o.fixed.tp = 3;
  cases[1] = {"--pp", {}};
  cases[1].o.fixPp = true, cases[1].o.fixed.pp = 16;  // divides 64 ranks; more than 8 layers
  cases[2] = {"--dp", {}};
  cases[2].o.fixDp = true, cases[2].o.fixed.dp = 5;
  cases[3] = {"--ep", {}};
  cases[3].o.fixEp = true, cases[3].o.fixed.ep = 2;  // dense model
  cases[4] = {"--microbatch", {}};
  cases[4].o.fixMicrobatch = true, cases[4].o.fixed.microbatch = 3;
  cases[5] = {"--tp", {}};
  cases[5].o.fixTp = true, cases[5].o.fixed.tp = 32;  // divides ranks, not 16 heads
  for (const Case& c : cases) {
    auto r = searchWith(f, w, space64(), c.o);
    ASSERT_FALSE(r) << c.option;
    EXPECT_EQ(r.status().where(), c.option) << r.status().toString();
  }
}

TEST(SearchTest, FixedUnevenPipelineStagesAreSearchedLikeAPlan) {
  // 126 layers (Llama 3 405B) over pp 16: stages of 7 and 8 layers. A fixed plan accepts it,
  // so --tp 8 --pp 16 --search must too (issue 11 item 6).
  Workload w = toyWorkload();
  w.model.layers = 126;
  w.model.heads = 128, w.model.kvHeads = 8, w.model.hidden = 16384;
  SearchSpace space = space64();
  space.chips = 256;
  StepFunction f = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    return toyStep(wl, p, 1e9);
  };
  SearchOptions o;
  o.fixTp = true, o.fixed.tp = 8;
  o.fixPp = true, o.fixed.pp = 16;
  auto r = searchWith(f, w, space, o);
  ASSERT_TRUE(r) << r.status().toString();
  std::set<uint32_t> vpps;
  auto cands = searchCandidates(w, space, o);
  ASSERT_TRUE(cands);
  for (const Parallelism& p : *cands) {
    EXPECT_EQ(p.tp, 8u);
    EXPECT_EQ(p.pp, 16u);
    vpps.insert(p.vpp);
  }
  // The busiest stage has 8 layers: vpp 1, 2, 4 (8 would need 16 * 8 = 128 > 126 layers).
  EXPECT_EQ(vpps, (std::set<uint32_t>{1, 2, 4}));
  // A fixed vpp the plan accepts (16 * 7 = 112 <= 126) is kept; one it refuses names --vpp.
  o.fixVpp = true, o.fixed.vpp = 7;
  auto seven = searchWith(f, w, space, o);
  ASSERT_TRUE(seven) << seven.status().toString();
  EXPECT_EQ(seven->best.parallelism.vpp, 7u);
  o.fixed.vpp = 8;
  auto eight = searchWith(f, w, space, o);
  ASSERT_FALSE(eight);
  EXPECT_EQ(eight.status().where(), "--vpp") << eight.status().toString();
  // More stages than layers is refused by both, naming --pp.
  o.fixVpp = false;
  o.fixed.pp = 128;
  auto tooMany = searchWith(f, w, space, o);
  ASSERT_FALSE(tooMany);
  EXPECT_EQ(tooMany.status().where(), "--pp") << tooMany.status().toString();
}

TEST(SearchTest, UnevenStagesAgreeWithTheFixedPlanOnARealPlanner) {
  auto system = arch::loadSystem("dgx-h100");
  ASSERT_TRUE(system) << system.status().toString();
  auto model = loadModel("llama3-405b");
  ASSERT_TRUE(model) << model.status().toString();
  ASSERT_EQ(model->layers % 16, 14u) << "the test wants layers that pp 16 does not divide";
  Workload w;
  w.model = *model;
  w.globalBatch = 256;
  w.seq = 4096;
  auto planner = Planner::create(*system, 1024);
  ASSERT_TRUE(planner) << planner.status().toString();
  Parallelism p;
  p.tp = 8, p.pp = 16, p.dp = 8, p.microbatch = 1;
  p.recompute = Recompute::kFull;
  p.zero = 1;
  auto fixed = planner->estimate(w, p);
  ASSERT_TRUE(fixed) << fixed.status().toString();
  ASSERT_TRUE(fixed->fits);
  SearchOptions o;
  o.threads = 2;
  o.fixTp = true, o.fixed.tp = 8;
  o.fixPp = true, o.fixed.pp = 16;
  o.fixDp = true, o.fixed.dp = 8;
  o.fixMicrobatch = true, o.fixed.microbatch = 1;
  o.fixRecompute = true, o.fixed.recompute = Recompute::kFull;
  o.fixZero = true, o.fixed.zero = 1;
  o.fixPrecision = true;
  o.fixVpp = true;  // vpp 1: the search then holds exactly the fixed plan
  auto r = search(*planner, w, o);
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_EQ(r->candidates, 1u);
  EXPECT_DOUBLE_EQ(r->best.stepTimeS, fixed->stepTimeS);
}

TEST(SearchTest, SequenceParallelIsDroppedWhereTheTokensDoNotDivide) {
  // 64 chips and one sequence of one token: every candidate has tp > 1 (dp must be 1), and one
  // token cannot be split over tp ranks. The search used to keep sequence parallelism on and
  // the planner refused every candidate; the candidates now run without it where it cannot
  // apply, and keep it where the tokens divide.
  auto system = arch::loadSystem("dgx-h100");
  ASSERT_TRUE(system) << system.status().toString();
  auto model = loadModel("llama3-8b");
  ASSERT_TRUE(model) << model.status().toString();
  auto planner = Planner::create(*system, 64);
  ASSERT_TRUE(planner) << planner.status().toString();
  Workload w;
  w.model = *model;
  w.globalBatch = 1;
  w.seq = 1;
  SearchOptions o;
  o.threads = 2;
  auto cands = searchCandidates(w, space64(), o);
  ASSERT_TRUE(cands) << cands.status().toString();
  for (const Parallelism& p : *cands) {
    EXPECT_GT(p.tp, 1u);
    EXPECT_FALSE(p.sequenceParallel);
  }
  auto r = search(*planner, w, o);
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_GT(r->best.parallelism.tp, 1u);
  EXPECT_FALSE(r->best.parallelism.sequenceParallel);
  w.seq = 4096;
  w.globalBatch = 8;
  auto divisible = searchCandidates(w, space64(), o);
  ASSERT_TRUE(divisible) << divisible.status().toString();
  for (const Parallelism& p : *divisible) EXPECT_EQ(p.sequenceParallel, p.tp > 1);
}

TEST(SearchTest, NothingFitsIsAnErrorThatSaysWhatToChange) {
  Workload w = toyWorkload();
  StepFunction f = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    return toyStep(wl, p, 1.0);
  };
  auto r = searchWith(f, w, space64(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), ErrorCode::kCapacity);
  EXPECT_NE(r.status().message().find("add chips"), std::string::npos);
}

TEST(SearchTest, RefusedConfigurationsAreCountedNotFatal) {
  Workload w = toyWorkload();
  StepFunction f = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    if (p.cp > 1) return Status(ErrorCode::kUnsupported, "no cp in this model", "cp");
    return toyStep(wl, p, 1e9);
  };
  auto r = searchWith(f, w, space64(), {});
  ASSERT_TRUE(r);
  EXPECT_GT(r->invalid, 0u);
  EXPECT_EQ(r->fitting + r->invalid, r->candidates);
  EXPECT_EQ(r->best.parallelism.cp, 1u);
}

TEST(SearchTest, MoeExpertParallelDividesExpertsAndDpCp) {
  Workload w = toyWorkload();
  w.model.experts = 8;
  w.model.topK = 2;
  StepFunction f = [](const Workload& wl, const Parallelism& p) -> Expected<StepEstimate> {
    StepEstimate e = toyStep(wl, p, 1e9);
    e.stepTimeS += 0.05 / p.ep;  // more expert parallelism, less expert compute per rank
    return e;
  };
  auto cands = searchCandidates(w, space64(), {});
  ASSERT_TRUE(cands);
  bool sawEp8 = false;
  for (const Parallelism& p : *cands) {
    EXPECT_EQ(8u % p.ep, 0u);
    EXPECT_EQ((uint64_t(p.dp) * p.cp) % p.ep, 0u);
    sawEp8 |= p.ep == 8;
  }
  EXPECT_TRUE(sawEp8);
}

TEST(SearchTest, ObjectiveScoresByHand) {
  SearchSpace s = space64();  // 64 chips, 16 per node -> 4 nodes; 700 W per chip
  s.usdPerNodeHour = 36;
  StepEstimate e;
  e.stepTimeS = 2;
  EXPECT_DOUBLE_EQ(objectiveScore(e, s, Objective::kTime), 2.0);
  EXPECT_NEAR(objectiveScore(e, s, Objective::kCost), 2.0 / 3600 * 4 * 36, 1e-12);
  EXPECT_NEAR(objectiveScore(e, s, Objective::kEnergy), 2.0 * 64 * 700, 1e-9);
  EXPECT_EQ(*parseObjective("cost"), Objective::kCost);
  auto bad = parseObjective("speed");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().where(), "--objective");
}

}  // namespace
}  // namespace trnsim::plan
