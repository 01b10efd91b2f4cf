// The whole-run model (reliability.cpp) against references computed another way: numeric
// optimisation of the checkpoint interval, numeric integration of order statistics, a Monte
// Carlo simulation of failures and checkpoints, the Llama 3 report's published counts, and
// hand-derived cost and energy.

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "trnsim/plan/run.h"

namespace trnsim::plan {
namespace {

arch::SystemConfig fakeSystem() {
  arch::SystemConfig s;
  s.name = "fake-system";
  s.chipsPerNode = 16;
  s.accel.name = "fake chip";
  s.accel.powerWatts = 500;
  s.accel.ranksPerChip = 1;
  s.checkpointGbpsPerNode = 10;
  return s;
}

StepEstimate fakeStep(double seconds) {
  StepEstimate e;
  e.stepTimeS = seconds;
  e.breakdown.compute = seconds;
  e.fits = true;
  return e;
}

double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }
double bigPhi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// E[max of n iid exp(sigma Z)] by integrating exp(sigma x) n phi(x) Phi(x)^(n-1) dx.
double expectedMaxLognormal(uint64_t n, double sigma) {
  double sum = 0;
  const double h = 1e-3;
  for (double x = -10; x < 10; x += h) {
    double mid = x + h / 2;
    sum += std::exp(sigma * mid) * static_cast<double>(n) * phi(mid) *
           std::pow(bigPhi(mid), static_cast<double>(n - 1)) * h;
  }
  return sum;
}

TEST(RunReliability, InverseNormalCdfInvertsTheCdf) {
  for (double p : {1e-12, 1e-6, 0.01, 0.2, 0.5, 0.8, 0.999, 1 - 1e-9}) {
    double x = inverseNormalCdf(p);
    EXPECT_NEAR(bigPhi(x), p, 1e-9 * std::max(p, 1e-3)) << p;
  }
  EXPECT_NEAR(inverseNormalCdf(0.5), 0.0, 1e-12);
  EXPECT_NEAR(inverseNormalCdf(0.975), 1.959963984540054, 1e-9);  // the textbook 1.96
}

TEST(RunReliability, BlomMatchesTheExactExpectedMaximum) {
  EXPECT_EQ(expectedMaxStandardNormal(1), 0.0);
  // n = 2: E[max] = 1 / sqrt(pi) exactly; Blom's approximation is within 5% there.
  EXPECT_NEAR(expectedMaxStandardNormal(2), 1 / std::sqrt(M_PI), 0.05 / std::sqrt(M_PI));
  for (uint64_t n : {64u, 1024u, 16384u, 100000u}) {
    // E[max Z] by integration: the derivative at sigma = 0 of E[max exp(sigma Z)].
    double eps = 1e-4;
    double dmax = (expectedMaxLognormal(n, eps) - expectedMaxLognormal(n, -eps)) / (2 * eps);
    EXPECT_NEAR(expectedMaxStandardNormal(n), dmax, 0.01 * dmax) << n;
  }
}

TEST(RunReliability, StragglerSlowdownMatchesIntegration) {
  EXPECT_EQ(stragglerSlowdown(1, 0.05), 0.0);
  EXPECT_EQ(stragglerSlowdown(1000, 0.0), 0.0);
  for (uint64_t n : {16u, 4096u, 100000u})
    for (double sigma : {0.01, 0.03}) {
      double exact = expectedMaxLognormal(n, sigma) - 1;
      EXPECT_NEAR(stragglerSlowdown(n, sigma), exact, 0.03 * exact + 2e-4) << n << " " << sigma;
    }
  // More chips wait longer for their slowest one.
  EXPECT_LT(stragglerSlowdown(1024, 0.02), stragglerSlowdown(65536, 0.02));
}

/// wall / useful time for interval tau (the model's own expression, evaluated numerically).
double wallPerUseful(double tau, double delta, double m, double fixedLoss) {
  double loss = 0.5 * (tau + delta) + fixedLoss;
  return (1 + delta / tau) / (1 - loss / m);
}

TEST(RunReliability, DalyIntervalIsNearTheNumericOptimum) {
  for (double delta : {10.0, 60.0, 300.0})
    for (double m : {3600.0, 36000.0, 360000.0}) {
      // Golden-section search for the tau minimising wall time per useful time.
      double lo = 1, hi = m;
      const double g = (std::sqrt(5.0) - 1) / 2;
      for (int i = 0; i < 200; ++i) {
        double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
        if (wallPerUseful(a, delta, m, 0) < wallPerUseful(b, delta, m, 0)) {
          hi = b;
        } else {
          lo = a;
        }
      }
      double best = wallPerUseful(0.5 * (lo + hi), delta, m, 0);
      double daly = dalyIntervalSeconds(delta, m);
      EXPECT_GT(daly, 0);
      // First-order optimum: within 0.5% of the best achievable overhead.
      EXPECT_LE(wallPerUseful(daly, delta, m, 0), best * 1.005) << delta << " " << m;
    }
  EXPECT_EQ(dalyIntervalSeconds(0, 3600), 0.0);
  EXPECT_EQ(dalyIntervalSeconds(2000, 3600), 3600.0);  // delta >= M / 2: every M
}

TEST(RunReliability, Llama3DefaultsReproduceThePublishedInterruptions) {
  // Llama 3 (arXiv 2407.21783, Table 5): 419 unexpected interruptions in 54 days on 16,384
  // GPUs, "about one every 3 hours".
  arch::SystemConfig s = fakeSystem();
  s.chipsPerNode = 8;
  auto r = estimateReliability(s, 16384, 0);
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_NEAR(r->jobMtbfHours, 54.0 * 24.0 / 419.0, 1e-9);
  EXPECT_NEAR(r->jobMtbfHours, 3.0, 0.1);
  // A run whose wall time is 54 days expects 419 interruptions.
  Workload w;
  w.globalBatch = 1;
  w.seq = 1;
  double stepS = 1.0;
  ReliabilityModel rm;
  rm.stragglerSigma = 0;
  rm.restartSeconds = 1e-6;  // no restart: wall = useful
  auto run = estimateRunWith(s, 16384, 1, fakeStep(stepS), 54.0 * 86400.0, rm);
  ASSERT_TRUE(run) << run.status().toString();
  EXPECT_NEAR(run->expectedInterruptions, 419.0, 0.01);
}

TEST(RunReliability, CostEnergyAndStepsByHand) {
  arch::SystemConfig s = fakeSystem();  // 16 chips per node, 500 W per chip
  ReliabilityModel rm;
  rm.chipMtbfHours = 1e15;  // no failures
  rm.stragglerSigma = 0;
  rm.usdPerNodeHour = 10;
  // 64 chips = 4 nodes; 1e6 tokens per step of 1 s; 3.6e9 tokens = 3600 steps = 1 hour.
  auto run = estimateRunWith(s, 64, 1e6, fakeStep(1.0), 3.6e9, rm);
  ASSERT_TRUE(run) << run.status().toString();
  EXPECT_EQ(run->steps, 3600u);
  EXPECT_EQ(run->nodes, 4u);
  EXPECT_NEAR(run->computeDays, 1.0 / 24.0, 1e-12);
  EXPECT_NEAR(run->goodput, 1.0, 1e-6);
  EXPECT_NEAR(run->costUsd, 4 * 10.0 * 1.0, 1e-3);
  EXPECT_NEAR(run->energyMwh, 64 * 500.0 * 3600.0 / 3.6e9, 1e-9);
  EXPECT_TRUE(run->priced);
  // A part step rounds up: 3.6e9 + 1 tokens need 3601 steps.
  auto more = estimateRunWith(s, 64, 1e6, fakeStep(1.0), 3.6e9 + 1, rm);
  ASSERT_TRUE(more);
  EXPECT_EQ(more->steps, 3601u);
  // Unpriced: no cost, not an error.
  rm.usdPerNodeHour = 0;
  auto unpriced = estimateRunWith(s, 64, 1e6, fakeStep(1.0), 3.6e9, rm);
  ASSERT_TRUE(unpriced);
  EXPECT_FALSE(unpriced->priced);
  EXPECT_EQ(unpriced->costUsd, 0.0);
}

TEST(RunReliability, CheckpointTimeFromStorageBandwidth) {
  arch::SystemConfig s = fakeSystem();  // 10 GB/s per node
  // 1 TB over 64 nodes (1024 chips) at 10 GB/s each: 1e12 / 6.4e11 = 1.5625 s.
  auto r = estimateReliability(s, 1024, 1e12);
  ASSERT_TRUE(r);
  EXPECT_NEAR(r->checkpointWriteS, 1.5625, 1e-12);
  EXPECT_NEAR(r->restoreS, 1.5625, 1e-12);
  s.checkpointGbpsPerNode = 0;
  auto bad = estimateReliability(s, 1024, 1e12);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("checkpoint_gbps_per_node"), std::string::npos);
}

/// Simulates a run of `work` seconds of useful time: checkpoints of cost delta after every tau
/// of work, exponential failures of mean m at any moment (also during checkpoints and
/// restarts), each losing the work since the last checkpoint and costing `fixedLoss`.
double simulatedGoodput(double work, double tau, double delta, double m, double fixedLoss,
                        uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> failure(1.0 / m);
  double wall = 0, done = 0;
  double nextFailure = failure(rng);
  while (done < work) {
    // One segment: min(tau, remaining) of work, then a checkpoint.
    double seg = std::min(tau, work - done);
    double need = seg + delta;
    if (nextFailure >= need) {
      wall += need;
      nextFailure -= need;
      done += seg;
      continue;
    }
    wall += nextFailure;  // the segment is lost
    // Restart + restore; a failure during them starts them again.
    for (;;) {
      double f = failure(rng);
      if (f >= fixedLoss) {
        wall += fixedLoss;
        nextFailure = f - fixedLoss;
        break;
      }
      wall += f;
    }
  }
  return work / wall;
}

TEST(RunReliability, GoodputMatchesMonteCarlo) {
  arch::SystemConfig s = fakeSystem();
  s.checkpointGbpsPerNode = 1;  // slow storage: checkpoints matter
  const uint64_t chips = 4096;  // 256 nodes
  ReliabilityModel rm;
  rm.chipMtbfHours = 4096.0 * 4.0;  // job MTBF 4 h
  rm.restartSeconds = 300;
  const double bytes = 256 * 1e9 * 60;  // 60 s to write at 256 GB/s
  auto r = estimateReliability(s, chips, bytes, rm);
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_NEAR(r->checkpointWriteS, 60, 1e-9);
  double m = 4 * 3600.0;
  double sim = 0;
  const int runs = 8;
  for (int i = 0; i < runs; ++i)
    sim += simulatedGoodput(2000 * 3600.0, r->intervalS, r->checkpointWriteS, m,
                            r->restartS + r->restoreS, 1234 + i);
  sim /= runs;
  EXPECT_NEAR(r->goodput, sim, 0.01) << "model " << r->goodput << " simulated " << sim;
  EXPECT_GT(r->goodput, 0.8);
  EXPECT_LT(r->goodput, 0.95);
}

TEST(RunReliability, AJobThatNeverFinishesSaysSo) {
  arch::SystemConfig s = fakeSystem();
  ReliabilityModel rm;
  rm.chipMtbfHours = 1;  // 100,000 chips: the job fails every 36 ms
  rm.stragglerSigma = 0;
  rm.usdPerNodeHour = 1;
  auto run = estimateRunWith(s, 100000, 1e6, fakeStep(1.0), 1e12, rm);
  ASSERT_TRUE(run) << run.status().toString();
  EXPECT_EQ(run->goodput, 0.0);
  EXPECT_NE(run->note.find("never finishes"), std::string::npos) << run->note;
}

TEST(RunReliability, StragglersSlowTheRunNotTheUsefulWork) {
  arch::SystemConfig s = fakeSystem();
  ReliabilityModel rm;
  rm.chipMtbfHours = 1e15;
  rm.stragglerSigma = 0.02;
  auto run = estimateRunWith(s, 16384, 1e6, fakeStep(2.0), 1e9, rm);
  ASSERT_TRUE(run);
  double slow = stragglerSlowdown(16384, 0.02);
  EXPECT_NEAR(run->stragglerSlowdown, slow, 1e-12);
  EXPECT_NEAR(run->goodput, 1.0 / (1.0 + slow), 1e-6);
}

TEST(RunReliability, ParsesTokenCounts) {
  EXPECT_DOUBLE_EQ(*parseTokenCount("15T"), 15e12);
  EXPECT_DOUBLE_EQ(*parseTokenCount("300B"), 300e9);
  EXPECT_DOUBLE_EQ(*parseTokenCount("2.5e12"), 2.5e12);
  EXPECT_DOUBLE_EQ(*parseTokenCount("40m"), 40e6);
  EXPECT_DOUBLE_EQ(*parseTokenCount(" 1k "), 1e3);
  for (const char* bad : {"", "T", "-5B", "abc", "15X", "1e400", "0"}) {
    auto r = parseTokenCount(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.status().where(), "--tokens");
  }
}

TEST(RunReliability, RejectsBadInputs) {
  arch::SystemConfig s = fakeSystem();
  EXPECT_FALSE(estimateRunWith(s, 64, 1e6, fakeStep(1.0), 0, {}));
  EXPECT_FALSE(estimateRunWith(s, 64, 1e6, fakeStep(0.0), 1e9, {}));
  EXPECT_FALSE(estimateReliability(s, 0, 1e9));
}

}  // namespace
}  // namespace trnsim::plan
