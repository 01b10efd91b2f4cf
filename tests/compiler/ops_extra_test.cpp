// Row ops (cumsum, topk, argmax/argmin, max.dim indices, _log_softmax, _softmax over any dim,
// native_layer_norm without affine or with mean/rstd) and advanced indexing (index, gather),
// compiled and run on the simulator against host loops, over odd sizes (not multiples of 128,
// dims of size 1).
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

using testing::randoms;
using testing::as;
using testing::bytes;
using testing::runIr;

TEST(RowOps, CumsumAlongAnyDim) {
  const std::string ir =
      "graph g(%x: f32[3, 130, 5] input, %i: i32[4, 7] input, %v: f32[131] input) {\n"
      "  %a: f32[3, 130, 5] = cumsum(%x) {dim=1}\n"
      "  %b: i32[4, 7] = cumsum(%i) {dim=-1}\n"
      "  %c: f32[131] = cumsum(%v) {dim=0}\n"
      "  %d: f32[3, 130, 5] = cumsum(%x) {dim=2}\n"
      "  return %a, %b, %c, %d\n}\n";
  const auto x = randoms(3 * 130 * 5, 1), v = randoms(131, 2);
  std::vector<int32_t> iv(28);
  for (size_t k = 0; k < iv.size(); ++k) iv[k] = int32_t(k * 7 % 11) - 3;
  auto exe = runIr(ir, {{"x", bytes(x)}, {"i", bytes(iv)}, {"v", bytes(v)}});
  ASSERT_TRUE(exe);
  const auto a = as<float>(*exe->read("a")), c = as<float>(*exe->read("c")),
             d = as<float>(*exe->read("d"));
  const auto b = as<int32_t>(*exe->read("b"));
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 5; ++k) {
      double s = 0;
      for (int j = 0; j < 130; ++j) {
        s += x[size_t((i * 130 + j) * 5 + k)];
        EXPECT_NEAR(a[size_t((i * 130 + j) * 5 + k)], s, 1e-4 * (1 + std::abs(s)));
      }
    }
  for (int i = 0; i < 3 * 130; ++i) {
    double s = 0;
    for (int k = 0; k < 5; ++k) {
      s += x[size_t(i * 5 + k)];
      EXPECT_NEAR(d[size_t(i * 5 + k)], s, 1e-5 * (1 + std::abs(s)));
    }
  }
  for (int r = 0; r < 4; ++r) {
    int32_t s = 0;
    for (int k = 0; k < 7; ++k) EXPECT_EQ(b[size_t(r * 7 + k)], s += iv[size_t(r * 7 + k)]);
  }
  double s = 0;
  for (int k = 0; k < 131; ++k) {
    s += v[size_t(k)];
    EXPECT_NEAR(c[size_t(k)], s, 1e-4 * (1 + std::abs(s)));
  }
}

/// Indices of the k largest (or smallest) of `n` values at x[base + j * stride].
std::vector<int> hostTopK(const std::vector<float>& x, int64_t base, int64_t stride, int n, int k,
                          bool largest) {
  std::vector<int> idx = std::vector<int>(size_t(n));
  for (int j = 0; j < n; ++j) idx[size_t(j)] = j;
  std::stable_sort(idx.begin(), idx.end(), [&](int p, int q) {
    const float a = x[size_t(base + p * stride)], b = x[size_t(base + q * stride)];
    return largest ? a > b : a < b;
  });
  idx.resize(size_t(k));
  return idx;
}

TEST(RowOps, TopKArgmaxArgminAndMaxDimIndices) {
  const std::string ir =
      "graph g(%x: f32[5, 37] input, %y: f32[37, 3] input, %z: f32[2, 5] input, "
      "%w: f32[130, 9] input, %u: f32[3, 5, 7] input) {\n"
      "  %tv: f32[5, 3], %ti: i32[5, 3] = topk(%x) {k=3, dim=-1, largest=1, sorted=1}\n"
      "  %sv: f32[2, 3], %si: i32[2, 3] = topk(%y) {k=2, dim=0, largest=0}\n"
      "  %zv: f32[2, 5], %zi: i32[2, 5] = topk(%z) {k=5}\n"
      "  %am: i32[5] = argmax(%x) {dim=-1}\n"
      "  %an: i32[1, 3] = argmin(%y) {dim=0, keepdim=1}\n"
      "  %all: i32[] = argmax(%u)\n"
      "  %mv: f32[9], %mi: i32[9] = max(%w) {dim=0}\n"
      "  %nv: f32[130], %ni: i32[130] = min(%w) {dim=1}\n"
      "  return %tv, %ti, %sv, %si, %zv, %zi, %am, %an, %all, %mv, %mi, %nv, %ni\n}\n";
  const auto x = randoms(5 * 37, 3), y = randoms(37 * 3, 4), z = randoms(10, 5),
             w = randoms(130 * 9, 6), u = randoms(105, 7);
  auto exe = runIr(
      ir, {{"x", bytes(x)}, {"y", bytes(y)}, {"z", bytes(z)}, {"w", bytes(w)}, {"u", bytes(u)}});
  ASSERT_TRUE(exe);
  auto f = [&](const char* name) { return as<float>(*exe->read(name)); };
  auto i = [&](const char* name) { return as<int32_t>(*exe->read(name)); };
  const auto tv = f("tv"), sv = f("sv"), zv = f("zv"), mv = f("mv"), nv = f("nv");
  const auto ti = i("ti"), si = i("si"), zi = i("zi"), am = i("am"), an = i("an"), all = i("all"),
             mi = i("mi"), ni = i("ni");
  for (int r = 0; r < 5; ++r) {
    const auto want = hostTopK(x, r * 37, 1, 37, 3, true);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(ti[size_t(r * 3 + k)], want[size_t(k)]);
      EXPECT_EQ(tv[size_t(r * 3 + k)], x[size_t(r * 37 + want[size_t(k)])]);
    }
    EXPECT_EQ(am[size_t(r)], want[0]);
  }
  for (int c = 0; c < 3; ++c) {
    const auto want = hostTopK(y, c, 3, 37, 2, false);
    for (int k = 0; k < 2; ++k) {
      EXPECT_EQ(si[size_t(k * 3 + c)], want[size_t(k)]);
      EXPECT_EQ(sv[size_t(k * 3 + c)], y[size_t(want[size_t(k)] * 3 + c)]);
    }
    EXPECT_EQ(an[size_t(c)], want[0]);
  }
  for (int r = 0; r < 2; ++r) {
    const auto want = hostTopK(z, r * 5, 1, 5, 5, true);
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(zi[size_t(r * 5 + k)], want[size_t(k)]);
      EXPECT_EQ(zv[size_t(r * 5 + k)], z[size_t(r * 5 + want[size_t(k)])]);
    }
  }
  EXPECT_EQ(all[0], hostTopK(u, 0, 1, 105, 1, true)[0]);
  for (int c = 0; c < 9; ++c) {
    const int want = hostTopK(w, c, 9, 130, 1, true)[0];
    EXPECT_EQ(mi[size_t(c)], want);
    EXPECT_EQ(mv[size_t(c)], w[size_t(want * 9 + c)]);
  }
  for (int r = 0; r < 130; ++r) {
    const int want = hostTopK(w, r * 9, 1, 9, 1, false)[0];
    EXPECT_EQ(ni[size_t(r)], want);
    EXPECT_EQ(nv[size_t(r)], w[size_t(r * 9 + want)]);
  }
}

TEST(RowOps, TopKRefusesLargeK) {
  auto chip = arch::loadChip("trn2");
  ASSERT_TRUE(chip.hasValue());
  runtime::Session session;
  auto exe = session.compile(
      "graph g(%x: f32[4, 37] input) {\n"
      "  %v: f32[4, 9], %i: i32[4, 9] = topk(%x) {k=9}\n  return %v, %i\n}\n",
      *chip);
  ASSERT_FALSE(exe.hasValue());
  EXPECT_EQ(exe.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(exe.status().message().find("k = 9 > 8"), std::string::npos);
}

TEST(RowOps, LogSoftmaxAndSoftmaxOverAnyDim) {
  const std::string ir =
      "graph g(%x: f32[5, 37] input, %y: f32[2, 37, 5] input, %z: f32[130, 3] input, "
      "%h: bf16[3, 9] input) {\n"
      "  %a: f32[5, 37] = _log_softmax(%x) {dim=-1, half_to_float=0}\n"
      "  %b: f32[2, 37, 5] = _log_softmax(%y) {dim=1, half_to_float=0}\n"
      "  %c: f32[2, 37, 5] = _softmax(%y) {dim=1, half_to_float=0}\n"
      "  %d: f32[130, 3] = _softmax(%z) {dim=0, half_to_float=0}\n"
      "  %e: f32[3, 9] = _log_softmax(%h) {dim=1, half_to_float=1}\n"
      "  return %a, %b, %c, %d, %e\n}\n";
  const auto x = randoms(5 * 37, 8), y = randoms(2 * 37 * 5, 9), z = randoms(130 * 3, 10);
  std::vector<uint16_t> h(27);
  std::vector<float> hf(27);
  for (size_t k = 0; k < 27; ++k) {
    hf[k] = float(int(k % 7) - 3) * 0.5f;  // exact in bf16
    uint32_t bits;
    std::memcpy(&bits, &hf[k], 4);
    h[k] = uint16_t(bits >> 16);
  }
  auto exe = runIr(ir, {{"x", bytes(x)}, {"y", bytes(y)}, {"z", bytes(z)}, {"h", bytes(h)}});
  ASSERT_TRUE(exe);
  // Softmax over n values at base + j * stride, log or not, into out at the same places.
  auto check = [](const std::vector<float>& in, const std::vector<float>& out, int64_t base,
                  int64_t stride, int n, bool log) {
    double mx = -1e300, sum = 0;
    for (int j = 0; j < n; ++j) mx = std::max(mx, double(in[size_t(base + j * stride)]));
    for (int j = 0; j < n; ++j) sum += std::exp(in[size_t(base + j * stride)] - mx);
    for (int j = 0; j < n; ++j) {
      const double v = in[size_t(base + j * stride)] - mx;
      const double want = log ? v - std::log(sum) : std::exp(v) / sum;
      EXPECT_NEAR(out[size_t(base + j * stride)], want, 1e-5 * (1 + std::abs(want)))
          << base << " " << j;
    }
  };
  const auto a = as<float>(*exe->read("a")), b = as<float>(*exe->read("b")),
             c = as<float>(*exe->read("c")), d = as<float>(*exe->read("d")),
             e = as<float>(*exe->read("e"));
  for (int r = 0; r < 5; ++r) check(x, a, r * 37, 1, 37, true);
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 5; ++k) {
      check(y, b, i * 185 + k, 5, 37, true);
      check(y, c, i * 185 + k, 5, 37, false);
    }
  for (int k = 0; k < 3; ++k) check(z, d, k, 3, 130, false);
  for (int r = 0; r < 3; ++r) check(hf, e, r * 9, 1, 9, true);
}

TEST(RowOps, LayerNormWithoutAffineAndWithStats) {
  const std::string ir =
      "graph g(%x: f32[3, 130] input, %y: f32[131, 72] input, %w: f32[72] param, "
      "%b: f32[72] param, %s: f32[1, 5] input) {\n"
      "  %o: f32[3, 130], %m: f32[3, 1], %r: f32[3, 1] = native_layer_norm(%x) "
      "{normalized_shape=[130], eps=1e-05}\n"
      "  %p: f32[131, 72], %pm: f32[131, 1], %pr: f32[131, 1] = native_layer_norm(%y, %w, %b) "
      "{normalized_shape=[72], eps=1e-05}\n"
      "  %q: f32[131, 72], %qm: f32[131, 1], %qr: f32[131, 1] = native_layer_norm(%y, %b) "
      "{normalized_shape=[72], eps=1e-05, weight_present=0}\n"
      "  %t: f32[1, 5], %tm: f32[1, 1], %tr: f32[1, 1] = native_layer_norm(%s) "
      "{normalized_shape=[5], eps=0.001}\n"
      "  return %o, %p, %pm, %pr, %q, %t\n}\n";
  const auto x = randoms(3 * 130, 11), y = randoms(131 * 72, 12), w = randoms(72, 13),
             bb = randoms(72, 14), s = randoms(5, 15);
  auto exe = runIr(
      ir, {{"x", bytes(x)}, {"y", bytes(y)}, {"w", bytes(w)}, {"b", bytes(bb)}, {"s", bytes(s)}});
  ASSERT_TRUE(exe);
  const auto o = as<float>(*exe->read("o")), p = as<float>(*exe->read("p")),
             pm = as<float>(*exe->read("pm")), pr = as<float>(*exe->read("pr")),
             q = as<float>(*exe->read("q")), t = as<float>(*exe->read("t"));
  auto check = [](const std::vector<float>& in, int rows, int n, double eps,
                  const std::vector<float>& out, const float* wt, const float* bias,
                  const std::vector<float>* mean, const std::vector<float>* rstd) {
    for (int r = 0; r < rows; ++r) {
      double mu = 0, var = 0;
      for (int j = 0; j < n; ++j) mu += in[size_t(r * n + j)];
      mu /= n;
      for (int j = 0; j < n; ++j) var += std::pow(in[size_t(r * n + j)] - mu, 2);
      const double rs = 1 / std::sqrt(var / n + eps);
      if (mean) {
        EXPECT_NEAR((*mean)[size_t(r)], mu, 1e-5);
      }
      if (rstd) {
        EXPECT_NEAR((*rstd)[size_t(r)], rs, 1e-4 * rs);
      }
      for (int j = 0; j < n; ++j) {
        const double want =
            (in[size_t(r * n + j)] - mu) * rs * (wt ? wt[j] : 1.0) + (bias ? bias[j] : 0.0);
        EXPECT_NEAR(out[size_t(r * n + j)], want, 1e-4) << r << "," << j;
      }
    }
  };
  check(x, 3, 130, 1e-5, o, nullptr, nullptr, nullptr, nullptr);
  check(y, 131, 72, 1e-5, p, w.data(), bb.data(), &pm, &pr);
  check(y, 131, 72, 1e-5, q, nullptr, bb.data(), nullptr, nullptr);
  check(s, 1, 5, 1e-3, t, nullptr, nullptr, nullptr, nullptr);
}

TEST(IndexOps, IndexTensorAndGather) {
  const std::string ir =
      "graph g(%x: f32[37, 5] input, %i: i32[2, 4] input, %y: f32[3, 37, 5] input, "
      "%j: i32[9] input, %k: i32[3, 11] input, %l: i32[5, 3] input, %z: f32[3, 37] input, "
      "%m: i32[3, 1] input, %q: i32[1, 4] input) {\n"
      "  %a: f32[2, 4, 5] = index(%x, %i)\n"
      "  %b: f32[3, 9, 5] = index(%y, %j) {indices_present=[0, 1]}\n"
      "  %c: f32[3, 11] = gather(%z, %k) {dim=1}\n"
      "  %d: f32[5, 3] = gather(%x, %l) {dim=0}\n"
      "  %e: f32[3, 4] = index(%z, %m, %q)\n"
      "  %f: f32[3, 4, 5] = index(%y, %m, %q) {indices_present=[1, 1]}\n"
      "  return %a, %b, %c, %d, %e, %f\n}\n";
  const std::vector<int32_t> m = {2, 0, 1}, q = {36, 0, 5, 17};
  const auto x = randoms(37 * 5, 16), y = randoms(3 * 37 * 5, 17), z = randoms(3 * 37, 18);
  std::vector<int32_t> i = {3, 0, 36, 3, 7, 1, 20, 20}, j = {1, 36, 0, 5, 5, 12, 30, 2, 9};
  std::vector<int32_t> k(33), l(15);
  for (size_t n = 0; n < k.size(); ++n) k[n] = int32_t(n * 13 % 37);
  for (size_t n = 0; n < l.size(); ++n) l[n] = int32_t(n * 11 % 37);
  auto exe = runIr(ir, {{"x", bytes(x)},
                        {"i", bytes(i)},
                        {"y", bytes(y)},
                        {"j", bytes(j)},
                        {"k", bytes(k)},
                        {"l", bytes(l)},
                        {"z", bytes(z)},
                        {"m", bytes(m)},
                        {"q", bytes(q)}});
  ASSERT_TRUE(exe);
  const auto a = as<float>(*exe->read("a")), b = as<float>(*exe->read("b")),
             c = as<float>(*exe->read("c")), d = as<float>(*exe->read("d"));
  for (int r = 0; r < 8; ++r)
    for (int e = 0; e < 5; ++e) EXPECT_EQ(a[size_t(r * 5 + e)], x[size_t(i[size_t(r)] * 5 + e)]);
  for (int o = 0; o < 3; ++o)
    for (int r = 0; r < 9; ++r)
      for (int e = 0; e < 5; ++e)
        EXPECT_EQ(b[size_t((o * 9 + r) * 5 + e)], y[size_t((o * 37 + j[size_t(r)]) * 5 + e)]);
  for (int r = 0; r < 3; ++r)
    for (int e = 0; e < 11; ++e)
      EXPECT_EQ(c[size_t(r * 11 + e)], z[size_t(r * 37 + k[size_t(r * 11 + e)])]);
  for (int r = 0; r < 5; ++r)
    for (int e = 0; e < 3; ++e)
      EXPECT_EQ(d[size_t(r * 3 + e)], x[size_t(l[size_t(r * 3 + e)] * 5 + e)]);
  // Two index tensors broadcast together ([3, 1] and [1, 4]) on adjacent dims.
  const auto e = as<float>(*exe->read("e")), f = as<float>(*exe->read("f"));
  for (int r = 0; r < 3; ++r)
    for (int cc = 0; cc < 4; ++cc) {
      EXPECT_EQ(e[size_t(r * 4 + cc)], z[size_t(m[size_t(r)] * 37 + q[size_t(cc)])]);
      for (int t = 0; t < 5; ++t)
        EXPECT_EQ(f[size_t((r * 4 + cc) * 5 + t)],
                  y[size_t((m[size_t(r)] * 37 + q[size_t(cc)]) * 5 + t)]);
    }
}

}  // namespace
}  // namespace trnsim::compiler
