// Flash-attention backward (and the forward's log-sum-exp output) against double-precision host
// gradients of softmax(scale q k^T + mask) v.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "kernel_test_util.h"
#include "trnsim/kernels/attention.h"

namespace trnsim {
namespace {

using numerics::DType;

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

/// Forward and backward in double for q [hq, S, D], k, v [hkv, S, D], dout [hq, S, D].
Reference reference(const std::vector<float>& q, const std::vector<float>& k,
                    const std::vector<float>& v, const std::vector<float>& dout, int64_t hq,
                    int64_t hkv, int64_t S, int64_t D, bool causal) {
  Reference r;
  r.out.assign(q.size(), 0);
  r.lse.assign(size_t(hq * S), 0);
  r.dq.assign(q.size(), 0);
  r.dk.assign(k.size(), 0);
  r.dv.assign(k.size(), 0);
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> p(static_cast<size_t>(S)), dp(static_cast<size_t>(S));
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t g = h / (hq / hkv);
    auto Q = [&](int64_t i, int64_t d) { return double(q[size_t((h * S + i) * D + d)]); };
    auto K = [&](int64_t j, int64_t d) { return double(k[size_t((g * S + j) * D + d)]); };
    auto V = [&](int64_t j, int64_t d) { return double(v[size_t((g * S + j) * D + d)]); };
    auto dO = [&](int64_t i, int64_t d) { return double(dout[size_t((h * S + i) * D + d)]); };
    for (int64_t i = 0; i < S; ++i) {
      const int64_t keys = causal ? i + 1 : S;
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < keys; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += Q(i, d) * K(j, d);
        p[size_t(j)] = s * scale;
        mx = std::max(mx, p[size_t(j)]);
      }
      for (int64_t j = 0; j < keys; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
      for (int64_t j = 0; j < keys; ++j) p[size_t(j)] /= sum;
      r.lse[size_t(h * S + i)] = mx + std::log(sum);
      double di = 0;
      for (int64_t d = 0; d < D; ++d) {
        double o = 0;
        for (int64_t j = 0; j < keys; ++j) o += p[size_t(j)] * V(j, d);
        r.out[size_t((h * S + i) * D + d)] = o;
        di += o * dO(i, d);
      }
      for (int64_t j = 0; j < keys; ++j) {
        double x = 0;
        for (int64_t d = 0; d < D; ++d) x += dO(i, d) * V(j, d);
        dp[size_t(j)] = p[size_t(j)] * (x - di);  // dS
      }
      for (int64_t j = 0; j < keys; ++j)
        for (int64_t d = 0; d < D; ++d) {
          r.dq[size_t((h * S + i) * D + d)] += scale * dp[size_t(j)] * K(j, d);
          r.dk[size_t((g * S + j) * D + d)] += scale * dp[size_t(j)] * Q(i, d);
          r.dv[size_t((g * S + j) * D + d)] += p[size_t(j)] * dO(i, d);
        }
    }
  }
  return r;
}

void expectClose(const std::vector<float>& got, const std::vector<double>& ref, const char* what,
                 double relTol) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double scale = 0, maxErr = 0;
  for (double x : ref) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < ref.size(); ++i) maxErr = std::max(maxErr, std::abs(got[i] - ref[i]));
  EXPECT_LT(maxErr, relTol * scale)
      << what << ": max error " << maxErr << " of max |ref| " << scale;
}

void checkBackward(int64_t hq, int64_t hkv, int64_t S, int64_t D, bool causal) {
  auto cfg = kernels::testing::chip("trn2");
  kernels::AttentionOptions opts{.causal = causal};
  auto q = kernels::testing::randomValues(size_t(hq * S * D), 81, DType::kBF16, -2.f, 2.f);
  auto k = kernels::testing::randomValues(size_t(hkv * S * D), 82, DType::kBF16, -2.f, 2.f);
  auto v = kernels::testing::randomValues(size_t(hkv * S * D), 83, DType::kBF16, -1.f, 1.f);
  auto dout = kernels::testing::randomValues(size_t(hq * S * D), 84, DType::kBF16, -1.f, 1.f);
  const Reference ref = reference(q, k, v, dout, hq, hkv, S, D, causal);

  // The forward pass's lse output.
  opts.writeLse = true;
  auto fwd = kernels::attentionProgram(cfg, hq, hkv, S, D, opts);
  ASSERT_TRUE(fwd.hasValue()) << fwd.status().toString();
  auto lse = kernels::testing::runFunctional(cfg, *fwd, {{"q", &q}, {"k", &k}, {"v", &v}}, "lse");
  ASSERT_EQ(lse.size(), ref.lse.size());
  for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lse[i], ref.lse[i], 5e-3) << i;

  // Backward from the reference forward's out (rounded to bf16) and lse (fp32).
  std::vector<float> out(ref.out.size()), lseIn(ref.lse.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(float(ref.out[i])));
  for (size_t i = 0; i < lseIn.size(); ++i) lseIn[i] = float(ref.lse[i]);
  auto bwd =
      kernels::attentionBackwardProgram(cfg, hq, hkv, S, D, {.causal = causal}, DType::kFP32);
  ASSERT_TRUE(bwd.hasValue()) << bwd.status().toString();
  sim::Chip c(cfg);
  ASSERT_TRUE(c.load({*bwd}).isOk());
  for (auto [name, data] : std::vector<std::pair<const char*, const std::vector<float>*>>{
           {"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout}, {"lse", &lseIn}})
    ASSERT_TRUE(c.writeFloats(name, *data).isOk()) << name;
  auto run = c.run({.computeTiming = false});
  ASSERT_TRUE(run.hasValue()) << run.status().toString();
  // P and dS are bf16 (2^-9 relative) as in the forward pass; sums over up to S terms.
  expectClose(*c.readFloats("dq"), ref.dq, "dq", 2e-2);
  expectClose(*c.readFloats("dk"), ref.dk, "dk", 2e-2);
  expectClose(*c.readFloats("dv"), ref.dv, "dv", 2e-2);
}

TEST(AttentionBackwardKernel, CausalGqaMatchesHostGradients) { checkBackward(2, 1, 256, 64, true); }
TEST(AttentionBackwardKernel, NonCausalMatchesHostGradients) {
  checkBackward(1, 1, 256, 128, false);
}

TEST(AttentionBackwardKernelTiming, Trn2CausalSeq4096) {
  auto cfg = kernels::testing::chip("trn2");
  const int64_t S = 4096, D = 128;
  auto prog = kernels::attentionBackwardProgram(cfg, 1, 1, S, D);
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto run = kernels::testing::runTiming(cfg, std::move(*prog));
  // Backward does 2.5x the forward's matmul flops (5 matmuls of 2 D per pair vs 2).
  const double useful = 2.5 * kernels::attentionUsefulFlops(1, S, D, true);
  const double util = useful / (cfg.peakBf16FlopsPerCore() * run.simulatedNs * 1e-9);
  std::printf(
      "attention bwd causal %ldx%ld trn2: %.1f us, %.1f%% of TensorE peak on non-masked "
      "flops\n",
      long(S), long(D), run.simulatedNs * 1e-3, 100 * util);
  EXPECT_GT(util, 0.0);
}

}  // namespace
}  // namespace trnsim
