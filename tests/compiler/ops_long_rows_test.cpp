// Row ops over rows longer than SBUF holds (a language model's vocabulary: 50257, 70000
// elements), which the compiler streams in chunks along the row: softmax and log-softmax (fp32,
// bf16, along the last dim and along a strided dim), argmax/argmin and max.dim, layer norm,
// cumsum. Compiled and run on the simulator against loops in double precision.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "compiler_test_util.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/compiler/text.h"
#include "trnsim/runtime/session.h"

namespace trnsim::compiler {
namespace {

using testing::as;
using testing::bytes;
using testing::runIr;

/// Normal values times `scale` plus a ramp of `slope` per element along each row of `len`, so
/// that the row's max grows from chunk to chunk (the online softmax has to rescale its sum).
std::vector<float> rowData(size_t rows, size_t len, uint32_t seed, float scale, float slope) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(rows * len);
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < len; ++j) v[r * len + j] = d(gen) * scale + slope * float(j);
  return v;
}

uint16_t toBf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float fromBf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Checks softmax (or log-softmax) of n values at in[base + j * stride] against out at the same
/// places: |out - want| <= rel * |want| + abs.
void checkSoftmax(const std::vector<float>& in, const std::vector<float>& out, int64_t base,
                  int64_t stride, int64_t n, bool log, double rel, double abs) {
  double mx = -1e300, sum = 0;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(in[size_t(base + j * stride)]));
  for (int64_t j = 0; j < n; ++j) sum += std::exp(double(in[size_t(base + j * stride)]) - mx);
  int bad = 0;
  for (int64_t j = 0; j < n && bad < 5; ++j) {
    const double v = double(in[size_t(base + j * stride)]) - mx;
    const double want = log ? v - std::log(sum) : std::exp(v) / sum;
    const double got = out[size_t(base + j * stride)];
    if (!(std::abs(got - want) <= rel * std::abs(want) + abs)) {
      ++bad;
      ADD_FAILURE() << (log ? "log_softmax" : "softmax") << " row at " << base << ", element " << j
                    << ": got " << got << ", want " << want;
    }
  }
}

TEST(LongRows, SoftmaxAndLogSoftmaxFp32) {
  constexpr int64_t V = 50257, W = 70000;
  const std::string ir = fmt::format(
      "graph g(%x: f32[3, {0}] input, %y: f32[2, {1}] input, %z: f32[{1}, 2] input) {{\n"
      "  %a: f32[3, {0}] = _log_softmax(%x) {{dim=-1, half_to_float=0}}\n"
      "  %b: f32[3, {0}] = _softmax(%x) {{dim=-1, half_to_float=0}}\n"
      "  %c: f32[2, {1}] = _log_softmax(%y) {{dim=1, half_to_float=0}}\n"
      "  %d: f32[2, {1}] = _softmax(%y) {{dim=1, half_to_float=0}}\n"
      "  %e: f32[{1}, 2] = _softmax(%z) {{dim=0, half_to_float=0}}\n"
      "  %f: f32[{1}, 2] = _log_softmax(%z) {{dim=0, half_to_float=0}}\n"
      "  return %a, %b, %c, %d, %e, %f\n}}\n",
      V, W);
  // Row 0 of x: its max rises along the row to about 100 (exp would overflow without the max
  // subtracted); rows 1-2 and y: values of logits; z: strided rows (dim 0 of [W, 2]).
  auto x = rowData(3, V, 1, 2.0f, 0.0f);
  for (int64_t j = 0; j < V; ++j) x[size_t(j)] += 100.0f * float(j) / float(V);
  const auto y = rowData(2, W, 2, 3.0f, 1e-4f), z = rowData(W, 2, 3, 1.5f, 0.0f);
  auto exe = runIr(ir, {{"x", bytes(x)}, {"y", bytes(y)}, {"z", bytes(z)}});
  ASSERT_TRUE(exe);
  auto f = [&](const char* name) { return as<float>(*exe->read(name)); };
  const auto a = f("a"), b = f("b"), c = f("c"), d = f("d"), e = f("e"), ff = f("f");
  for (int64_t r = 0; r < 3; ++r) {
    checkSoftmax(x, a, r * V, 1, V, true, 1e-5, 1e-5);
    checkSoftmax(x, b, r * V, 1, V, false, 1e-5, 1e-12);
  }
  for (int64_t r = 0; r < 2; ++r) {
    checkSoftmax(y, c, r * W, 1, W, true, 1e-5, 1e-5);
    checkSoftmax(y, d, r * W, 1, W, false, 1e-5, 1e-12);
    checkSoftmax(z, e, r, 2, W, false, 1e-5, 1e-12);
    checkSoftmax(z, ff, r, 2, W, true, 1e-5, 1e-5);
  }
}

TEST(LongRows, SoftmaxAndLogSoftmaxBf16) {
  constexpr int64_t V = 50257;
  const std::string ir = fmt::format(
      "graph g(%h: bf16[2, {0}] input) {{\n"
      "  %a: bf16[2, {0}] = _log_softmax(%h) {{dim=-1, half_to_float=0}}\n"
      "  %b: f32[2, {0}] = _log_softmax(%h) {{dim=-1, half_to_float=1}}\n"
      "  %c: bf16[2, {0}] = _softmax(%h) {{dim=-1, half_to_float=0}}\n"
      "  %d: f32[2, {0}] = _softmax(%h) {{dim=1, half_to_float=1}}\n"
      "  return %a, %b, %c, %d\n}}\n",
      V);
  const auto x = rowData(2, V, 4, 2.5f, 2e-4f);
  std::vector<uint16_t> h(x.size());
  std::vector<float> hf(x.size());  // the values the simulator sees
  for (size_t k = 0; k < x.size(); ++k) hf[k] = fromBf16(h[k] = toBf16(x[k]));
  auto exe = runIr(ir, {{"h", bytes(h)}});
  ASSERT_TRUE(exe);
  auto widen = [](const std::vector<uint16_t>& v) {
    std::vector<float> o(v.size());
    for (size_t k = 0; k < v.size(); ++k) o[k] = fromBf16(v[k]);
    return o;
  };
  const auto a = widen(as<uint16_t>(*exe->read("a"))), c = widen(as<uint16_t>(*exe->read("c")));
  const auto b = as<float>(*exe->read("b")), d = as<float>(*exe->read("d"));
  for (int64_t r = 0; r < 2; ++r) {
    // bf16 outputs: rounded once from fp32 (2^-8 relative); fp32 outputs as fp32 inputs.
    checkSoftmax(hf, a, r * V, 1, V, true, 4e-3, 1e-5);
    checkSoftmax(hf, c, r * V, 1, V, false, 4e-3, 1e-12);
    checkSoftmax(hf, b, r * V, 1, V, true, 1e-5, 1e-5);
    checkSoftmax(hf, d, r * V, 1, V, false, 1e-5, 1e-12);
  }
}

/// First index of the largest (or smallest) of the n values at x[base + j * stride].
int64_t hostArg(const std::vector<float>& x, int64_t base, int64_t stride, int64_t n,
                bool largest) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j) {
    const float v = x[size_t(base + j * stride)], m = x[size_t(base + best * stride)];
    if (largest ? v > m : v < m) best = j;
  }
  return best;
}

TEST(LongRows, ArgmaxArgminAndMaxDim) {
  constexpr int64_t V = 50257;
  const std::string ir = fmt::format(
      "graph g(%x: f32[4, {0}] input) {{\n"
      "  %am: i32[4] = argmax(%x) {{dim=-1}}\n"
      "  %an: i32[4, 1] = argmin(%x) {{dim=1, keepdim=1}}\n"
      "  %mv: f32[4], %mi: i32[4] = max(%x) {{dim=1}}\n"
      "  %nv: f32[4], %ni: i32[4] = min(%x) {{dim=-1}}\n"
      "  %all: i32[] = argmax(%x)\n"
      "  return %am, %an, %mv, %mi, %nv, %ni, %all\n}}\n",
      V);
  auto x = rowData(4, V, 5, 1.0f, 0.0f);
  // Row 0: the max twice, in different chunks (the first one wins); row 1: the max and the min
  // in the short last chunk; row 2: both in the first chunk; the overall max in row 3.
  x[size_t(7)] = x[size_t(40000)] = 9.0f;
  x[size_t(V + V - 3)] = 8.0f;
  x[size_t(V + V - 1)] = -8.0f;
  x[size_t(2 * V + 1)] = 7.0f;
  x[size_t(2 * V)] = -7.5f;
  x[size_t(2 * V + 5)] = -7.5f;
  x[size_t(3 * V + 33333)] = 12.0f;
  auto exe = runIr(ir, {{"x", bytes(x)}});
  ASSERT_TRUE(exe);
  auto i = [&](const char* name) { return as<int32_t>(*exe->read(name)); };
  const auto am = i("am"), an = i("an"), mi = i("mi"), ni = i("ni"), all = i("all");
  const auto mv = as<float>(*exe->read("mv")), nv = as<float>(*exe->read("nv"));
  EXPECT_EQ(am[0], 7);
  EXPECT_EQ(am[1], V - 3);
  EXPECT_EQ(an[1], V - 1);
  EXPECT_EQ(an[2], 0);
  for (int64_t r = 0; r < 4; ++r) {
    const int64_t mx = hostArg(x, r * V, 1, V, true), mn = hostArg(x, r * V, 1, V, false);
    EXPECT_EQ(am[size_t(r)], mx) << r;
    EXPECT_EQ(mi[size_t(r)], mx) << r;
    EXPECT_EQ(mv[size_t(r)], x[size_t(r * V + mx)]) << r;
    EXPECT_EQ(an[size_t(r)], mn) << r;
    EXPECT_EQ(ni[size_t(r)], mn) << r;
    EXPECT_EQ(nv[size_t(r)], x[size_t(r * V + mn)]) << r;
  }
  EXPECT_EQ(all[0], 3 * V + 33333);
}

TEST(LongRows, TopKOverLongRowsIsRefusedClearly) {
  auto chip = arch::loadChip("trn2");
  ASSERT_TRUE(chip.hasValue());
  runtime::Session session;
  auto exe = session.compile(
      "graph g(%x: f32[2, 60000] input) {\n"
      "  %v: f32[2, 3], %i: i32[2, 3] = topk(%x) {k=3}\n  return %v, %i\n}\n",
      *chip);
  ASSERT_FALSE(exe.hasValue());
  EXPECT_EQ(exe.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(exe.status().message().find("k = 3 over rows of 60000 elements"), std::string::npos)
      << exe.status().toString();
}

TEST(LongRows, LayerNormAndCumsum) {
  constexpr int64_t W = 70000;
  const std::string ir = fmt::format(
      "graph g(%x: f32[2, {0}] input, %w: f32[{0}] param, %b: f32[{0}] param) {{\n"
      "  %o: f32[2, {0}], %om: f32[2, 1], %orr: f32[2, 1] = native_layer_norm(%x, %w, %b) "
      "{{normalized_shape=[{0}], eps=1e-05}}\n"
      "  %p: f32[2, {0}], %pm: f32[2, 1], %pr: f32[2, 1] = native_layer_norm(%x) "
      "{{normalized_shape=[{0}], eps=1e-05}}\n"
      "  %s: f32[2, {0}] = cumsum(%x) {{dim=-1}}\n"
      "  return %o, %p, %pm, %pr, %s\n}}\n",
      W);
  // An offset of 3 (the variance must be of x - mean, not E[x^2] - mean^2).
  auto x = rowData(2, W, 6, 1.0f, 0.0f);
  for (auto& v : x) v += 3.0f;
  const auto w = rowData(1, W, 7, 1.0f, 0.0f), bias = rowData(1, W, 8, 1.0f, 0.0f);
  auto exe = runIr(ir, {{"x", bytes(x)}, {"w", bytes(w)}, {"b", bytes(bias)}});
  ASSERT_TRUE(exe);
  auto f = [&](const char* name) { return as<float>(*exe->read(name)); };
  const auto o = f("o"), p = f("p"), pm = f("pm"), pr = f("pr"), s = f("s");
  for (int64_t r = 0; r < 2; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < W; ++j) mu += x[size_t(r * W + j)];
    mu /= double(W);
    for (int64_t j = 0; j < W; ++j) var += std::pow(x[size_t(r * W + j)] - mu, 2);
    const double rs = 1 / std::sqrt(var / double(W) + 1e-5);
    EXPECT_NEAR(pm[size_t(r)], mu, 1e-5 * std::abs(mu));
    EXPECT_NEAR(pr[size_t(r)], rs, 1e-4 * rs);
    int bad = 0;
    double sum = 0;
    for (int64_t j = 0; j < W && bad < 5; ++j) {
      const size_t k = size_t(r * W + j);
      const double n = (x[k] - mu) * rs;
      sum += x[k];
      const double affine = n * w[size_t(j)] + bias[size_t(j)];
      if (std::abs(p[k] - n) <= 1e-4 && std::abs(o[k] - affine) <= 1e-4 &&
          std::abs(s[k] - sum) <= 1e-4 * (1 + std::abs(sum)))
        continue;
      ++bad;
      ADD_FAILURE() << "row " << r << ", element " << j << ": layer norm " << p[k] << " vs " << n
                    << ", affine " << o[k] << " vs " << affine << ", cumsum " << s[k] << " vs "
                    << sum;
    }
  }
}

}  // namespace
}  // namespace trnsim::compiler
