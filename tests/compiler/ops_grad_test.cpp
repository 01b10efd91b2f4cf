// Ops of training graphs (backward passes and optimizer steps): attention's backward and the
// forward's logsumexp, index_put (with repeated indices), scatter, slice_scatter,
// select_scatter, copy, prims.fma and native_dropout, compiled and run on the simulator against
// host loops written here, over odd sizes (not multiples of 128).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "compiler_test_util.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/compiler/text.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/runtime/session.h"

namespace trnsim::compiler {
namespace {

using testing::randoms;
using testing::as;
using testing::bytes;
using testing::runIr;

std::vector<float> readF32(runtime::Executable& exe, const std::string& name) {
  auto r = exe.read(name);
  EXPECT_TRUE(r.hasValue()) << name;
  return r.hasValue() ? as<float>(*r) : std::vector<float>();
}

// ---- attention backward ----

struct AttnCase {
  int64_t B = 1, H = 4, Hkv = 2, Sq = 37, Sk = 37, D = 16;
  bool causal = false;
  double scale = 0;  ///< 0: 1/sqrt(D)
  /// Additive [Sq, Sk] mask (empty: none); -inf entries mask.
  std::vector<float> mask;
};

struct AttnRef {
  std::vector<double> out, lse, dq, dk, dv;
};

/// Naive attention forward and backward in double: s = scale q k^T + mask (causal: key j <= query
/// i, top-left aligned), p = softmax(s) (a fully masked row: p = 0, lse = 0), out = p v;
/// dv = p^T dO, dp = dO v^T, ds = p (dp - rowsum(dO o out)), dq = scale ds k, dk = scale ds^T q,
/// with KV head h / (H / Hkv) for query head h.
AttnRef attentionRef(const AttnCase& c, const std::vector<float>& q, const std::vector<float>& k,
                     const std::vector<float>& v, const std::vector<float>& dout) {
  const int64_t G = c.H / c.Hkv;
  const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(double(c.D));
  AttnRef r;
  r.out.assign(q.size(), 0);
  r.dq.assign(q.size(), 0);
  r.lse.assign(size_t(c.B * c.H * c.Sq), 0);
  r.dk.assign(k.size(), 0);
  r.dv.assign(v.size(), 0);
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t hk = h / G;
      auto Q = [&](int64_t i, int64_t d) {
        return double(q[size_t(((b * c.H + h) * c.Sq + i) * c.D + d)]);
      };
      auto dO = [&](int64_t i, int64_t d) {
        return double(dout[size_t(((b * c.H + h) * c.Sq + i) * c.D + d)]);
      };
      auto kAt = [&](int64_t j, int64_t d) {
        return size_t(((b * c.Hkv + hk) * c.Sk + j) * c.D + d);
      };
      auto qAt = [&](int64_t i, int64_t d) { return size_t(((b * c.H + h) * c.Sq + i) * c.D + d); };
      for (int64_t i = 0; i < c.Sq; ++i) {
        std::vector<double> s(size_t(c.Sk)), p(size_t(c.Sk)), dp(size_t(c.Sk));
        double m = -inf;
        for (int64_t j = 0; j < c.Sk; ++j) {
          double x = 0;
          for (int64_t d = 0; d < c.D; ++d) x += Q(i, d) * k[kAt(j, d)];
          x *= scale;
          if (!c.mask.empty()) x += c.mask[size_t(i * c.Sk + j)];
          if (c.causal && j > i) x = -inf;
          s[size_t(j)] = x;
          m = std::max(m, x);
        }
        double sum = 0;
        for (int64_t j = 0; j < c.Sk; ++j) sum += m == -inf ? 0 : std::exp(s[size_t(j)] - m);
        const double lse = m == -inf ? 0 : m + std::log(sum);
        r.lse[size_t((b * c.H + h) * c.Sq + i)] = lse;
        for (int64_t j = 0; j < c.Sk; ++j) p[size_t(j)] = std::exp(s[size_t(j)] - lse);
        double rowDot = 0;
        for (int64_t d = 0; d < c.D; ++d) {
          double o = 0;
          for (int64_t j = 0; j < c.Sk; ++j) o += p[size_t(j)] * v[kAt(j, d)];
          r.out[qAt(i, d)] = o;
          rowDot += o * dO(i, d);
        }
        for (int64_t j = 0; j < c.Sk; ++j) {
          double x = 0;
          for (int64_t d = 0; d < c.D; ++d) {
            x += dO(i, d) * v[kAt(j, d)];
            r.dv[kAt(j, d)] += p[size_t(j)] * dO(i, d);
          }
          const double ds = p[size_t(j)] * (x - rowDot) * scale;
          for (int64_t d = 0; d < c.D; ++d) {
            r.dq[qAt(i, d)] += ds * k[kAt(j, d)];
            r.dk[kAt(j, d)] += ds * Q(i, d);
          }
        }
      }
    }
  return r;
}

/// Max |got - want| / (atol + max |want|) over the tensor.
double relErr(const std::vector<float>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double scaleRef = 1e-6, err = 0;
  for (double w : want) scaleRef = std::max(scaleRef, std::abs(w));
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (std::isnan(got[i])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::abs(double(got[i]) - want[i]));
  }
  return err / scaleRef;
}

/// The forward (with its logsumexp read) and the backward in one graph, fp32 on the general
/// path; compared with attentionRef.
void checkAttentionF32(const AttnCase& c, const std::string& maskType) {
  const std::string qs = fmt::format("[{}, {}, {}, {}]", c.B, c.H, c.Sq, c.D);
  const std::string ks = fmt::format("[{}, {}, {}, {}]", c.B, c.Hkv, c.Sk, c.D);
  const std::string ls = fmt::format("[{}, {}, {}]", c.B, c.H, c.Sq);
  const bool mask = !c.mask.empty();
  std::string attrs = fmt::format("dropout_p=0.0, is_causal={}", c.causal ? 1 : 0);
  if (c.scale != 0) attrs += fmt::format(", scale={}", c.scale);
  const std::string m = mask ? ", %m" : "";
  const std::string ir = fmt::format(
      "graph g(%q: f32{0} input, %k: f32{1} input, %v: f32{1} input, %do: f32{0} input{3}) {{\n"
      "  %o: f32{0}, %lse: f32{2} = _scaled_dot_product_flash_attention_for_cpu(%q, %k, %v{4}) "
      "{{{5}}}\n"
      "  %dq: f32{0}, %dk: f32{1}, %dv: f32{1} = "
      "_scaled_dot_product_flash_attention_for_cpu_backward(%do, %q, %k, %v, %o, %lse{4}) "
      "{{{5}}}\n"
      "  return %o, %lse, %dq, %dk, %dv\n}}\n",
      qs, ks, ls, mask ? fmt::format(", %m: {}[{}, {}] input", maskType, c.Sq, c.Sk) : "", m,
      attrs);
  const auto q = randoms(size_t(c.B * c.H * c.Sq * c.D), 1);
  const auto k = randoms(size_t(c.B * c.Hkv * c.Sk * c.D), 2);
  const auto v = randoms(size_t(c.B * c.Hkv * c.Sk * c.D), 3);
  const auto dout = randoms(q.size(), 4);
  std::map<std::string, std::vector<std::byte>> inputs = {
      {"q", bytes(q)}, {"k", bytes(k)}, {"v", bytes(v)}, {"do", bytes(dout)}};
  if (mask && maskType == "f32") inputs["m"] = bytes(c.mask);
  if (mask && maskType == "u8") {
    std::vector<uint8_t> mb;
    for (float x : c.mask) mb.push_back(x == 0 ? 1 : 0);
    inputs["m"] = bytes(mb);
  }
  auto exe = runIr(ir, inputs);
  ASSERT_TRUE(exe);
  const AttnRef r = attentionRef(c, q, k, v, dout);
  EXPECT_LT(relErr(readF32(*exe, "o"), r.out), 1e-5);
  EXPECT_LT(relErr(readF32(*exe, "lse"), r.lse), 1e-5);
  EXPECT_LT(relErr(readF32(*exe, "dq"), r.dq), 1e-5);
  EXPECT_LT(relErr(readF32(*exe, "dk"), r.dk), 1e-5);
  EXPECT_LT(relErr(readF32(*exe, "dv"), r.dv), 1e-5);
}

TEST(AttentionBackward, F32GqaOddLengths) { checkAttentionF32({}, "f32"); }

TEST(AttentionBackward, F32CausalMoreQueriesThanKeys) {
  AttnCase c;
  c.causal = true;
  c.Sq = 45;
  c.Sk = 29;
  c.H = 3;
  c.Hkv = 1;
  c.scale = 0.3;
  checkAttentionF32(c, "f32");
}

TEST(AttentionBackward, F32AdditiveMaskAndCausal) {
  AttnCase c;
  c.B = 2;
  c.causal = true;
  c.Sq = c.Sk = 20;
  c.mask = randoms(size_t(c.Sq * c.Sk), 9);
  checkAttentionF32(c, "f32");
}

TEST(AttentionBackward, F32BooleanMaskWithAFullyMaskedRow) {
  AttnCase c;
  c.Sq = 19;
  c.Sk = 23;
  c.mask.assign(size_t(c.Sq * c.Sk), 0);
  for (int64_t i = 0; i < c.Sq; ++i)
    for (int64_t j = 0; j < c.Sk; ++j)
      if ((i * 7 + j * 3) % 5 == 0 || i == 4) c.mask[size_t(i * c.Sk + j)] = -INFINITY;
  // Row 4 is fully masked: PyTorch gives out 0, lse 0 and no gradient through it.
  checkAttentionF32(c, "u8");
}

/// bf16 on trn2 through the library's flash kernels (forward with lse, backward), against the
/// double reference on the bf16-rounded inputs.
TEST(AttentionBackward, Bf16FlashKernelsOnTrn2) {
  AttnCase c;
  c.B = 2;
  c.H = 2;
  c.Hkv = 1;
  c.Sq = c.Sk = 128;
  c.D = 64;
  c.causal = true;
  const std::string qs = "[2, 2, 128, 64]", ks = "[2, 1, 128, 64]";
  const std::string ir = fmt::format(
      "graph g(%q: bf16{0} input, %k: bf16{1} input, %v: bf16{1} input, %do: bf16{0} input) {{\n"
      "  %o: bf16{0}, %lse: f32[2, 2, 128] = _scaled_dot_product_flash_attention_for_cpu(%q, %k, "
      "%v) {{dropout_p=0.0, is_causal=1}}\n"
      "  %dq: bf16{0}, %dk: bf16{1}, %dv: bf16{1} = "
      "_scaled_dot_product_flash_attention_for_cpu_backward(%do, %q, %k, %v, %o, %lse) "
      "{{dropout_p=0.0, is_causal=1}}\n"
      "  return %lse, %dq, %dk, %dv\n}}\n",
      qs, ks);
  auto round = [](std::vector<float> x) {
    std::vector<uint16_t> b;
    for (float& f : x) {
      b.push_back(numerics::floatToBf16Bits(f));
      f = (numerics::bf16BitsToFloat(b.back()));
    }
    return std::make_pair(x, b);
  };
  auto [q, qb] = round(randoms(size_t(2 * 2 * 128 * 64), 1));
  auto [k, kb] = round(randoms(size_t(2 * 128 * 64), 2));
  auto [v, vb] = round(randoms(size_t(2 * 128 * 64), 3));
  auto [dout, db] = round(randoms(q.size(), 4));
  auto exe = runIr(ir, {{"q", bytes(qb)}, {"k", bytes(kb)}, {"v", bytes(vb)}, {"do", bytes(db)}});
  ASSERT_TRUE(exe);
  const AttnRef r = attentionRef(c, q, k, v, dout);
  auto bf = [&](const std::string& name) {
    std::vector<float> f;
    for (uint16_t x : as<uint16_t>(*exe->read(name))) f.push_back((numerics::bf16BitsToFloat(x)));
    return f;
  };
  EXPECT_LT(relErr(readF32(*exe, "lse"), r.lse), 1e-2);
  // bf16 P and dS on TensorE: 2.5 bf16 ulps (2^-7) of the largest gradient.
  EXPECT_LT(relErr(bf("dq"), r.dq), 2e-2);
  EXPECT_LT(relErr(bf("dk"), r.dk), 2e-2);
  EXPECT_LT(relErr(bf("dv"), r.dv), 2e-2);
}

// ---- index_put ----

TEST(IndexPut, AccumulateAddsRepeatedIndices) {
  // Embedding backward: zeros[V, E] with ids[2, 11] (repeats, a negative id) and grad [2, 11, E];
  // and a wider case: 3 row blocks of 128, 2 chunks of ids, 2 PSUM banks, an outer dim.
  const std::string ir =
      "graph g(%z: f32[131, 72] input, %ids: i32[2, 11] input, %gr: f32[2, 11, 72] input,\n"
      "        %s: f32[2, 300, 520] input, %j: i32[150] input, %w: f32[2, 150, 520] input) {\n"
      "  %e: f32[131, 72] = index_put(%z, %ids, %gr) {accumulate=1}\n"
      "  %t: f32[2, 300, 520] = index_put(%s, %j, %w) {accumulate=1, indices_present=[0, 1]}\n"
      "  return %e, %t\n}\n";
  std::vector<float> z(131 * 72, 0.0f);
  std::vector<int32_t> ids = {5, 7, 5, 130, -1,  0, 7, 7, 3, 5, 99,
                              0, 0, 1, 2,   130, 5, 6, 7, 8, 9, 5};
  const auto gr = randoms(2 * 11 * 72, 1), s = randoms(2 * 300 * 520, 2),
             w = randoms(2 * 150 * 520, 3);
  std::vector<int32_t> j(150);
  for (size_t i = 0; i < j.size(); ++i) j[i] = int32_t((i * 37) % 23 + (i % 3) * 100);
  j[7] = -2;
  auto exe = runIr(ir, {{"z", bytes(z)},
                        {"ids", bytes(ids)},
                        {"gr", bytes(gr)},
                        {"s", bytes(s)},
                        {"j", bytes(j)},
                        {"w", bytes(w)}});
  ASSERT_TRUE(exe);
  std::vector<double> e(z.begin(), z.end());
  for (size_t n = 0; n < ids.size(); ++n) {
    const int64_t r = ids[n] < 0 ? ids[n] + 131 : ids[n];
    for (int c = 0; c < 72; ++c) e[size_t(r * 72 + c)] += gr[n * 72 + size_t(c)];
  }
  const auto got = readF32(*exe, "e");
  for (size_t i = 0; i < e.size(); ++i) ASSERT_NEAR(got[i], e[i], 1e-5) << i;
  std::vector<double> t(s.begin(), s.end());
  for (int a = 0; a < 2; ++a)
    for (size_t n = 0; n < j.size(); ++n) {
      const int64_t r = j[n] < 0 ? j[n] + 300 : j[n];
      for (int c = 0; c < 520; ++c)
        t[size_t((a * 300 + r) * 520 + c)] += w[(size_t(a) * 150 + n) * 520 + size_t(c)];
    }
  const auto got2 = readF32(*exe, "t");
  for (size_t i = 0; i < t.size(); ++i)
    ASSERT_NEAR(got2[i], t[i], 1e-5 * (1 + std::abs(t[i]))) << i;
}

TEST(IndexPut, OverwriteWithTwoIndexTensorsAndBroadcastValues) {
  // self[:, i, j] = values (broadcast from [4]) for index tensors on dims 1 and 2; bf16 rows.
  const std::string ir =
      "graph g(%x: f32[6, 5, 9] input, %i: i32[4] input, %j: i32[4] input, %v: f32[4] input,\n"
      "        %y: bf16[7, 3] input, %r: i32[2] input, %u: bf16[2, 3] input) {\n"
      "  %o: f32[6, 5, 9] = index_put(%x, %i, %j, %v) {accumulate=0, indices_present=[0, 1, 1]}\n"
      "  %p: bf16[7, 3] = index_put(%y, %r, %u)\n"
      "  return %o, %p\n}\n";
  const auto x = randoms(6 * 5 * 9, 1), v = randoms(4, 2);
  std::vector<int32_t> i = {0, 4, -1, 2}, j = {8, 0, 3, -9};
  std::vector<uint16_t> y(21), u = {0x3f80, 0x4000, 0x4040, 0xbf80, 0xc000, 0xc040};
  for (size_t k = 0; k < y.size(); ++k) y[k] = uint16_t(0x3c00 + k);
  std::vector<int32_t> r = {6, 1};
  auto exe = runIr(ir, {{"x", bytes(x)},
                        {"i", bytes(i)},
                        {"j", bytes(j)},
                        {"v", bytes(v)},
                        {"y", bytes(y)},
                        {"r", bytes(r)},
                        {"u", bytes(u)}});
  ASSERT_TRUE(exe);
  std::vector<float> o = x;
  for (int a = 0; a < 6; ++a)
    for (int n = 0; n < 4; ++n) {
      const int ii = i[size_t(n)] < 0 ? i[size_t(n)] + 5 : i[size_t(n)];
      const int jj = j[size_t(n)] < 0 ? j[size_t(n)] + 9 : j[size_t(n)];
      o[size_t((a * 5 + ii) * 9 + jj)] = v[size_t(n)];
    }
  EXPECT_EQ(readF32(*exe, "o"), o);
  std::vector<uint16_t> p = y;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c) p[size_t(r[size_t(n)] * 3 + c)] = u[size_t(n * 3 + c)];
  EXPECT_EQ(as<uint16_t>(*exe->read("p")), p);
}

// ---- scatter, slice_scatter, select_scatter ----

TEST(Scatter, ValueAndSrc) {
  // Cross-entropy's backward: scatter(zeros[22, 131], 1, target[22, 1], -1.0); and scatter.src
  // along dim 0 with an index smaller than self and src larger than index.
  const std::string ir =
      "graph g(%z: f32[22, 131] input, %t: i32[22, 1] input, %x: f32[5, 7] input,\n"
      "        %i: i32[3, 4] input, %s: f32[4, 6] input, %y: i32[10] input, %k: i32[3] input) {\n"
      "  %a: f32[22, 131] = scatter(%z, %t) {dim=1, value=-1.0}\n"
      "  %b: f32[5, 7] = scatter(%x, %i, %s) {dim=0}\n"
      "  %c: i32[10] = scatter(%y, %k) {dim=-1, value=7}\n"
      "  return %a, %b, %c\n}\n";
  std::vector<float> z(22 * 131, 0.0f);
  std::vector<int32_t> t(22);
  for (size_t n = 0; n < t.size(); ++n) t[n] = int32_t((n * 53) % 131);
  const auto x = randoms(35, 1), s = randoms(24, 2);
  std::vector<int32_t> i = {4, 0, 1, 2, 0, 3, 4, 1, 2, 2, 0, 0};
  std::vector<int32_t> y = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, k = {9, 0, 4};
  auto exe = runIr(ir, {{"z", bytes(z)},
                        {"t", bytes(t)},
                        {"x", bytes(x)},
                        {"i", bytes(i)},
                        {"s", bytes(s)},
                        {"y", bytes(y)},
                        {"k", bytes(k)}});
  ASSERT_TRUE(exe);
  std::vector<float> a = z, b = x;
  for (size_t n = 0; n < 22; ++n) a[n * 131 + size_t(t[n])] = -1.0f;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) b[size_t(i[size_t(r * 4 + c)] * 7 + c)] = s[size_t(r * 6 + c)];
  std::vector<int32_t> cc = y;
  for (int32_t kk : k) cc[size_t(kk)] = 7;
  EXPECT_EQ(readF32(*exe, "a"), a);
  EXPECT_EQ(readF32(*exe, "b"), b);
  EXPECT_EQ(as<int32_t>(*exe->read("c")), cc);
}

TEST(Scatter, ScatterAddAddsRepeatedIndices) {
  // gather's backward: zeros.scatter_add(dim, index, grad), indices repeating along the dim;
  // the dim last (lines = rows), first (lines = columns) and in the middle (both looped).
  const std::string ir =
      "graph g(%x: f32[130, 37] input, %i: i32[130, 5] input, %s: f32[130, 5] input,\n"
      "        %y: f32[6, 3, 200] input, %j: i32[6, 4, 200] input, %t: f32[6, 4, 201] input,\n"
      "        %k: i32[150, 37] input, %u: f32[150, 37] input) {\n"
      "  %a: f32[130, 37] = scatter_add(%x, %i, %s) {dim=-1}\n"
      "  %b: f32[6, 3, 200] = scatter_add(%y, %j, %t) {dim=1}\n"
      "  %c: f32[130, 37] = scatter_add(%x, %k, %u) {dim=0}\n"
      "  return %a, %b, %c\n}\n";
  const auto x = randoms(130 * 37, 1), s = randoms(130 * 5, 2), y = randoms(6 * 3 * 200, 3),
             t = randoms(6 * 4 * 201, 4), u = randoms(150 * 37, 5);
  std::vector<int32_t> i(130 * 5), j(6 * 4 * 200), k(150 * 37);
  for (size_t n = 0; n < i.size(); ++n) i[n] = int32_t((n * 7) % 37 % (n % 3 + 1) * 5 % 37);
  for (size_t n = 0; n < j.size(); ++n) j[n] = int32_t((n * 13 + n / 200) % 3);
  for (size_t n = 0; n < k.size(); ++n) k[n] = int32_t((n * 11) % 130 % 17);
  auto exe = runIr(ir, {{"x", bytes(x)},
                        {"i", bytes(i)},
                        {"s", bytes(s)},
                        {"y", bytes(y)},
                        {"j", bytes(j)},
                        {"t", bytes(t)},
                        {"k", bytes(k)},
                        {"u", bytes(u)}});
  ASSERT_TRUE(exe);
  std::vector<float> a = x, b = y, c = x;  // fp32 sums in index order, as PyTorch's CPU loop
  for (int r = 0; r < 130; ++r)
    for (int q = 0; q < 5; ++q) a[size_t(r * 37 + i[size_t(r * 5 + q)])] += s[size_t(r * 5 + q)];
  for (int o = 0; o < 6; ++o)
    for (int q = 0; q < 4; ++q)
      for (int e = 0; e < 200; ++e)
        b[size_t((o * 3 + j[size_t((o * 4 + q) * 200 + e)]) * 200 + e)] +=
            t[size_t((o * 4 + q) * 201 + e)];
  for (int q = 0; q < 150; ++q)
    for (int e = 0; e < 37; ++e) c[size_t(k[size_t(q * 37 + e)] * 37 + e)] += u[size_t(q * 37 + e)];
  EXPECT_EQ(readF32(*exe, "a"), a);
  EXPECT_EQ(readF32(*exe, "b"), b);
  EXPECT_EQ(readF32(*exe, "c"), c);
}

TEST(Scatter, SliceAndSelectScatter) {
  const std::string ir =
      "graph g(%x: f32[5, 130] input, %s: f32[5, 32] input, %y: f32[3, 4, 6] input,\n"
      "        %r: bf16[3, 6] input) {\n"
      "  %a: f32[5, 130] = slice_scatter(%x, %s) {dim=1, start=3, end=-2, step=4}\n"
      "  %b: f32[3, 4, 6] = select_scatter(%y, %r) {dim=1, index=-1}\n"
      "  %c: f32[5, 130] = slice_scatter(%x, %x) {dim=0}\n"
      "  return %a, %b, %c\n}\n";
  const auto x = randoms(5 * 130, 1), s = randoms(5 * 32, 2), y = randoms(72, 3);
  std::vector<uint16_t> r(18);
  for (size_t k = 0; k < r.size(); ++k) r[k] = numerics::floatToBf16Bits(float(k) * 0.5f - 3);
  auto exe = runIr(ir, {{"x", bytes(x)}, {"s", bytes(s)}, {"y", bytes(y)}, {"r", bytes(r)}});
  ASSERT_TRUE(exe);
  std::vector<float> a = x, b = y;
  for (int i = 0; i < 5; ++i)
    for (int n = 0; n < 32; ++n) a[size_t(i * 130 + 3 + 4 * n)] = s[size_t(i * 32 + n)];
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 6; ++c)
      b[size_t((i * 4 + 3) * 6 + c)] = (numerics::bf16BitsToFloat(r[size_t(i * 6 + c)]));
  EXPECT_EQ(readF32(*exe, "a"), a);
  EXPECT_EQ(readF32(*exe, "b"), b);
  EXPECT_EQ(readF32(*exe, "c"), x);
}

TEST(Scatter, OneHotAlongDimMatchesHostLoop) {
  // An index as large as self in the other dims and few indices per line takes the one-hot
  // path (no indirect DMA, whose simulated cost grows with the destination view): the last
  // dim over two row tiles and three column chunks (repeated indices: the later one wins;
  // src larger than index, cast from f32 to bf16), a middle dim, and a scalar value.
  const std::string ir =
      "graph g(%x: bf16[130, 4100] input, %i: i32[130, 3] input, %s: f32[131, 4] input,\n"
      "        %y: f32[3, 7, 130] input, %j: i32[3, 2, 130] input) {\n"
      "  %a: bf16[130, 4100] = scatter(%x, %i, %s) {dim=1}\n"
      "  %b: f32[3, 7, 130] = scatter(%y, %j) {dim=1, value=-1.5}\n"
      "  return %a, %b\n}\n";
  const auto xf = randoms(130 * 4100, 1), s = randoms(131 * 4, 2), y = randoms(3 * 7 * 130, 3);
  std::vector<uint16_t> x(xf.size());
  for (size_t n = 0; n < x.size(); ++n) x[n] = numerics::floatToBf16Bits(xf[n]);
  std::vector<int32_t> i(130 * 3), j(3 * 2 * 130);
  for (size_t n = 0; n < i.size(); ++n) i[n] = int32_t((n * 977) % 4100);
  for (size_t r = 0; r < 130; r += 3) i[r * 3 + 2] = i[r * 3];  // duplicates: the later wins
  for (size_t n = 0; n < j.size(); ++n) j[n] = int32_t((n * 5 + n / 130) % 7);
  auto exe = runIr(ir, {{"x", bytes(x)}, {"i", bytes(i)}, {"s", bytes(s)}, {"y", bytes(y)},
                        {"j", bytes(j)}});
  ASSERT_TRUE(exe);
  std::vector<uint16_t> a = x;
  for (size_t r = 0; r < 130; ++r)
    for (size_t k = 0; k < 3; ++k)
      a[r * 4100 + size_t(i[r * 3 + k])] = numerics::floatToBf16Bits(s[r * 4 + k]);
  std::vector<float> b = y;
  for (size_t o = 0; o < 3; ++o)
    for (size_t k = 0; k < 2; ++k)
      for (size_t e = 0; e < 130; ++e) b[(o * 7 + size_t(j[(o * 2 + k) * 130 + e])) * 130 + e] = -1.5f;
  EXPECT_EQ(as<uint16_t>(*exe->read("a")), a);
  EXPECT_EQ(readF32(*exe, "b"), b);
  for (const auto& inst : exe->program().instructions)
    EXPECT_FALSE(inst.has(isa::kFlagIndirectDst)) << "scatter took the indirect-DMA path";
}

TEST(OptimizerOps, ColumnOperandLoadedOncePerRowTile) {
  // x * c with c a [rows, 1] column (a loss's per-row scale): the column is loaded as one
  // element per partition per tile and broadcast in SBUF, not streamed at the tile's size.
  const std::string ir =
      "graph g(%x: f32[130, 5000] input, %c: f32[130, 1] input, %d: bf16[130, 1] input) {\n"
      "  %a: f32[130, 5000] = mul(%x, %c)\n"
      "  %b: f32[130, 5000] = fused(%x, %c, %d) {\n"
      "    %t: f32[130, 5000] = sub(%x, %c) {alpha=1}\n"
      "    %b: f32[130, 5000] = mul(%t, %d)\n"
      "  }\n"
      "  return %a, %b\n}\n";
  const auto x = randoms(130 * 5000, 1), c = randoms(130, 2), df = randoms(130, 3);
  std::vector<uint16_t> d(130);
  for (size_t n = 0; n < d.size(); ++n) d[n] = numerics::floatToBf16Bits(df[n]);
  auto exe = runIr(ir, {{"x", bytes(x)}, {"c", bytes(c)}, {"d", bytes(d)}});
  ASSERT_TRUE(exe);
  std::vector<float> a(x.size()), b(x.size());
  for (size_t r = 0; r < 130; ++r)
    for (size_t e = 0; e < 5000; ++e) {
      a[r * 5000 + e] = x[r * 5000 + e] * c[r];
      b[r * 5000 + e] = (x[r * 5000 + e] - c[r]) * numerics::bf16BitsToFloat(d[r]);
    }
  EXPECT_EQ(readF32(*exe, "a"), a);
  EXPECT_EQ(readF32(*exe, "b"), b);
  const isa::Program& prog = exe->program();
  for (const auto& inst : prog.instructions) {
    if (inst.opcode != isa::Opcode::kDmaCopy) continue;
    const isa::AccessPattern* src = inst.operand(1);
    ASSERT_NE(src, nullptr);
    const std::string& name = prog.tensors[src->tensor].name;
    if (name == "c" || name == "d") {
      EXPECT_LE(src->numElements(), 128) << name;
    }
  }
}

// ---- copy, prims.fma ----

TEST(OptimizerOps, CopyAndFma) {
  // AdamW's graph: fma(a, 0.001, c) with a scalar b; copy casts and broadcasts src to self.
  const std::string ir =
      "graph g(%a: f32[33, 7] input, %c: f32[33, 7] input, %d: f32[7] input,\n"
      "        %s: i32[33, 7] input, %h: bf16[33, 7] input) {\n"
      "  %f: f32[33, 7] = prims.fma(%a, %c) {b=0.0010000000000000009}\n"
      "  %g: f32[33, 7] = prims.fma(%a, %d, %c)\n"
      "  %k: f32[33, 7] = copy(%c, %d)\n"
      "  %m: i32[33, 7] = copy(%s, %a)\n"
      "  %n: bf16[33, 7] = prims.fma(%h, %h, %h)\n"
      "  return %f, %g, %k, %m, %n\n}\n";
  const auto a = randoms(231, 1), c = randoms(231, 2), d = randoms(7, 3);
  std::vector<int32_t> s(231, 5);
  std::vector<uint16_t> h;
  for (float x : randoms(231, 4)) h.push_back(numerics::floatToBf16Bits(x * 3));
  auto exe = runIr(
      ir, {{"a", bytes(a)}, {"c", bytes(c)}, {"d", bytes(d)}, {"s", bytes(s)}, {"h", bytes(h)}});
  ASSERT_TRUE(exe);
  std::vector<float> f(231), g(231), k(231);
  std::vector<int32_t> m(231);
  std::vector<uint16_t> nn(231);
  const float b = float(0.0010000000000000009);
  for (size_t i = 0; i < 231; ++i) {
    volatile float p = a[i] * b;  // rounded after the multiply, as PyTorch's (a * b) + c
    f[i] = p + c[i];
    volatile float q = a[i] * d[i % 7];
    g[i] = q + c[i];
    k[i] = d[i % 7];
    m[i] = int32_t(std::trunc(a[i]));
    const float hv = (numerics::bf16BitsToFloat(h[i]));
    const float hp = numerics::bf16BitsToFloat(numerics::floatToBf16Bits(hv * hv));
    nn[i] = numerics::floatToBf16Bits(hp + hv);
  }
  EXPECT_EQ(readF32(*exe, "f"), f);
  EXPECT_EQ(readF32(*exe, "g"), g);
  EXPECT_EQ(readF32(*exe, "k"), k);
  EXPECT_EQ(as<int32_t>(*exe->read("m")), m);
  EXPECT_EQ(as<uint16_t>(*exe->read("n")), nn);
}

// ---- native_dropout ----

TEST(Dropout, MaskIsAppliedAndKeepsOneMinusP) {
  const std::string ir =
      "graph g(%x: f32[40, 300] input, %y: bf16[3, 50] input) {\n"
      "  %o: f32[40, 300], %m: u8[40, 300] = native_dropout(%x) {p=0.3, train=1}\n"
      "  %e: f32[40, 300], %em: u8[40, 300] = native_dropout(%x) {p=0.3, train=0}\n"
      "  %z: bf16[3, 50], %zm: u8[3, 50] = native_dropout(%y) {p=0.0, train=1}\n"
      "  %w: f32[40, 300], %wm: u8[40, 300] = native_dropout(%x) {p=0.3}\n"
      "  return %o, %m, %e, %em, %z, %zm, %w, %wm\n}\n";
  const auto x = randoms(12000, 1);
  std::vector<uint16_t> y;
  for (float v : randoms(150, 2)) y.push_back(numerics::floatToBf16Bits(v));
  auto exe = runIr(ir, {{"x", bytes(x)}, {"y", bytes(y)}});
  ASSERT_TRUE(exe);
  const auto o = readF32(*exe, "o"), w = readF32(*exe, "w");
  const auto m = as<uint8_t>(*exe->read("m")), wm = as<uint8_t>(*exe->read("wm"));
  const float scale = float(1.0 / (1.0 - 0.3));
  int64_t kept = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_LE(m[i], 1);
    kept += m[i];
    ASSERT_EQ(o[i], m[i] ? x[i] * scale : 0.0f * x[i]) << i;
    ASSERT_EQ(w[i], wm[i] ? x[i] * scale : 0.0f * x[i]) << i;
  }
  // Binomial(12000, 0.7): sd 50; 5 sd.
  EXPECT_NEAR(double(kept), 0.7 * 12000, 250);
  EXPECT_NE(m, wm);  // two dropout nodes draw different masks
  EXPECT_EQ(readF32(*exe, "e"), x);
  EXPECT_EQ(as<uint8_t>(*exe->read("em")), std::vector<uint8_t>(12000, 1));
  EXPECT_EQ(as<uint16_t>(*exe->read("z")), y);
  EXPECT_EQ(as<uint8_t>(*exe->read("zm")), std::vector<uint8_t>(150, 1));
}

// ---- errors ----

TEST(GradOpErrors, BadAttributesNameTheNode) {
  auto chip = arch::loadChip("trn2");
  ASSERT_TRUE(chip.hasValue());
  runtime::Session session;
  const std::pair<const char*, const char*> cases[] = {
      {"graph g(%x: f32[4, 5] input, %i: i32[3] input, %v: bf16[3, 5] input) {\n"
       "  %o: f32[4, 5] = index_put(%x, %i, %v) {accumulate=1}\n  return %o\n}\n",
       "index_put"},
      {"graph g(%x: f32[4, 5] input, %s: f32[4, 3] input) {\n"
       "  %o: f32[4, 5] = slice_scatter(%x, %s) {dim=1, start=0, end=2}\n  return %o\n}\n",
       "slice_scatter"},
      {"graph g(%x: f32[4, 5] input) {\n"
       "  %o: f32[4, 5], %m: u8[4, 5] = native_dropout(%x) {p=1.5, train=1}\n  return %o\n}\n",
       "native_dropout"},
      {"graph g(%x: f32[4, 5] input, %i: f32[4, 1] input) {\n"
       "  %o: f32[4, 5] = scatter(%x, %i) {dim=1, value=1.0}\n  return %o\n}\n",
       "scatter"},
  };
  for (const auto& [ir, op] : cases) {
    auto exe = session.compile(ir, *chip);
    ASSERT_FALSE(exe.hasValue()) << op;
    EXPECT_NE(exe.status().toString().find(op), std::string::npos) << exe.status().toString();
  }
}

}  // namespace
}  // namespace trnsim::compiler
