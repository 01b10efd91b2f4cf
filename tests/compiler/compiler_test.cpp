// The compiler: IR text round trips and errors, golden-file tests of each pass
// (tests/compiler/golden/*.ir), and compiled graphs run on the simulator against host loops.
// Regenerate the golden files after a deliberate change with
//   TRNSIM_UPDATE_GOLDEN=1 ./build/asan/tests/test_compiler --gtest_filter='Golden*'
// and review the diff.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "compiler_test_util.h"
#include "trnsim/compiler/hbm_plan.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/compiler/text.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/runtime/session.h"

namespace trnsim::compiler {
namespace {

using testing::as;
using testing::bytes;
using testing::randoms;

namespace fs = std::filesystem;

std::string readFile(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Drops `//` comment lines and surrounding blank lines.
std::string stripComments(const std::string& s) {
  std::stringstream in(s), out;
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("//", 0) != 0) out << line << "\n";
  std::string r = out.str();
  while (!r.empty() && r.front() == '\n') r.erase(r.begin());
  return r;
}

TEST(GoldenPasses, EachFileRunsItsPassesToTheCheckedText) {
  const fs::path dir = fs::path(TRNSIM_SOURCE_DIR) / "tests/compiler/golden";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".ir") continue;
    ++files;
    SCOPED_TRACE(entry.path().filename().string());
    const std::string text = readFile(entry.path());
    const size_t run = text.find("// RUN: ");
    const size_t check = text.find("// CHECK:");
    ASSERT_NE(run, std::string::npos);
    ASSERT_NE(check, std::string::npos);
    std::string passList = text.substr(run + 8, text.find('\n', run) - run - 8);
    PipelineOptions opts;
    opts.passes.clear();
    std::stringstream ps(passList);
    for (std::string p; std::getline(ps, p, ',');) opts.passes.push_back(p);
    auto g = parseGraph(text.substr(0, check));
    ASSERT_TRUE(g.hasValue()) << g.status().toString();
    ASSERT_TRUE(runPipeline(*g, opts).isOk());
    const std::string got = printGraph(*g);
    if (std::getenv("TRNSIM_UPDATE_GOLDEN") != nullptr) {
      std::ofstream(entry.path()) << text.substr(0, check) << "// CHECK:\n" << got;
      continue;
    }
    EXPECT_EQ(got, stripComments(text.substr(check)));
    // The expected text itself parses and prints to the same bytes.
    auto again = parseGraph(got);
    ASSERT_TRUE(again.hasValue()) << again.status().toString();
    EXPECT_EQ(printGraph(*again), got);
  }
  EXPECT_GE(files, 4);
}

TEST(IrText, RoundTripsAttributesAndLocations) {
  const std::string text =
      "graph g(%x: f32[2, 3] input, %w: bf16[3] param) {\n"
      "  %y: f32[2, 3] = masked_fill(%x, %m) {value=-inf}\n";
  // %m is undefined: a parse error with line and column.
  auto bad = parseGraph(text + "  return %y\n}\n");
  ASSERT_FALSE(bad.hasValue());
  EXPECT_EQ(bad.status().code(), ErrorCode::kParse);
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  EXPECT_NE(bad.status().message().find("%m is used before it is defined"), std::string::npos);

  const std::string good =
      "graph g(%x: f32[2, 3] input, %w: bf16[3] param) {\n"
      "  %y: f32[2, 3] = add(%x) {alpha=1, other=1e-06} @\"model.py:12\"\n"
      "  %z: f32[2, 3] = gelu(%y) {approximate=\"tanh\"}\n"
      "  %s: f32[2, 3] = sum(%z) {dim=[-1, 0], keepdim=0, note=nan}\n"
      "  return %z\n"
      "}\n";
  auto g = parseGraph(good);
  ASSERT_TRUE(g.hasValue()) << g.status().toString();
  EXPECT_EQ(g->nodes[0].loc, "model.py:12");
  EXPECT_EQ(g->nodes[0].intAttr("alpha"), 1);
  EXPECT_DOUBLE_EQ(g->nodes[0].floatAttr("other"), 1e-6);
  EXPECT_EQ(g->nodes[2].intsAttr("dim"), (std::vector<int64_t>{-1, 0}));
  EXPECT_TRUE(std::isnan(g->nodes[2].floatAttr("note")));
  const std::string printed = printGraph(*g);
  auto again = parseGraph(printed);
  ASSERT_TRUE(again.hasValue());
  EXPECT_EQ(printGraph(*again), printed);
}

TEST(IrText, RejectsMalformedInput) {
  for (const char* t :
       {"", "graph", "graph g(", "graph g(%x: f99[2] input) { return }",
        "graph g(%x: f32[-2] input) { return }",
        "graph g(%x: f32[2] input, %x: f32[2] input) { return }",
        "graph g() { %a: f32[1] = full() {size=[1], size=[2]} return %a }",
        "graph g() { return } trailing", "graph g() { %a: f32[1] = full() {s=\"x"}) {
    auto g = parseGraph(t);
    EXPECT_FALSE(g.hasValue()) << t;
    if (!g.hasValue()) {
      EXPECT_EQ(g.status().code(), ErrorCode::kParse) << t;
    }
  }
}

TEST(InferShapes, NamesTheOpAndTheModelLine) {
  auto g = parseGraph(
      "graph g(%x: f32[2] input) {\n"
      "  %y: f32[2] = frobnicate(%x) @\"model.py:7\"\n"
      "  return %y\n}\n");
  ASSERT_TRUE(g.hasValue());
  Status s = inferShapes(*g);
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_NE(s.toString().find("frobnicate"), std::string::npos);
  EXPECT_NE(s.toString().find("model.py:7"), std::string::npos);

  auto wrong =
      parseGraph("graph g(%x: f32[2, 3] input) {\n  %y: f32[3, 3] = exp(%x)\n  return %y\n}\n");
  ASSERT_TRUE(wrong.hasValue());
  s = inferShapes(*wrong);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("declared f32[3, 3] but the op gives f32[2, 3]"), std::string::npos);
}

TEST(OpTable, EveryOpHasARuleAndALowering) {
  EXPECT_GT(allOps().size(), 60u);
  for (const OpDef* d : allOps()) {
    SCOPED_TRACE(std::string(d->name));
    EXPECT_NE(d->infer, nullptr);
    if (d->cls == OpClass::kPointwise)
      EXPECT_NE(d->tile, nullptr);
    else
      EXPECT_NE(d->lower, nullptr);
    EXPECT_EQ(findOp(d->name), d);
  }
}

// ---- compiled graphs on the simulator ----

arch::ChipConfig chipNamed(const char* name) {
  auto c = arch::loadChip(name);
  EXPECT_TRUE(c.hasValue());
  return *c;
}

// A linear layer, GELU, a row-sum, a broadcast multiply and a softmax over odd sizes, against a
// double-precision host computation.
TEST(CompiledGraph, LinearGeluSoftmaxMatchesHostLoops) {
  const int M = 5, K = 130, N = 67;
  const std::string ir = fmt::format(
      "graph g(%x: f32[{0}, {1}] input, %w: f32[{2}, {1}] param, %b: f32[{2}] param) {{\n"
      "  %wt: f32[{1}, {2}] = permute(%w) {{dims=[1, 0]}}\n"
      "  %y: f32[{0}, {2}] = addmm(%b, %x, %wt)\n"
      "  %z: f32[{0}, {2}] = gelu(%y) {{approximate=\"tanh\"}}\n"
      "  %s: f32[{0}, 1] = sum(%z) {{dim=[-1], keepdim=1}}\n"
      "  %m: f32[{0}, {2}] = mul(%z, %s)\n"
      "  %q: f32[{0}, {2}] = _softmax(%m) {{dim=-1, half_to_float=0}}\n"
      "  %t: f32[{2}, {0}] = permute(%q) {{dims=[1, 0]}}\n"
      "  return %t, %s\n}}\n",
      M, K, N);
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn2"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  const auto x = randoms(M * K, 1), w = randoms(N * K, 2), b = randoms(N, 3);
  std::vector<float> ws(w);
  for (auto& v : ws) v *= 0.05f;
  ASSERT_TRUE((*exe)->upload("x", bytes(x)).isOk());
  ASSERT_TRUE((*exe)->upload("w", bytes(ws)).isOk());
  ASSERT_TRUE((*exe)->upload("b", bytes(b)).isOk());
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  EXPECT_GT(rec->result.simulatedNs, 0);
  EXPECT_DOUBLE_EQ(rec->modelFlops, 2.0 * M * N * K);
  const auto t = as<float>(*(*exe)->read("t"));
  const auto s = as<float>(*(*exe)->read("s"));
  for (int i = 0; i < M; ++i) {
    std::vector<double> z(N);
    double sum = 0;
    for (int j = 0; j < N; ++j) {
      double y = b[size_t(j)];
      for (int k = 0; k < K; ++k) y += double(x[size_t(i * K + k)]) * ws[size_t(j * K + k)];
      z[size_t(j)] = 0.5 * y * (1 + std::tanh(std::sqrt(2 / M_PI) * (y + 0.044715 * y * y * y)));
      sum += z[size_t(j)];
    }
    EXPECT_NEAR(s[size_t(i)], sum, 1e-3 * (1 + std::abs(sum)));
    double mx = -1e300, denom = 0;
    for (int j = 0; j < N; ++j) mx = std::max(mx, z[size_t(j)] * sum);
    for (int j = 0; j < N; ++j) denom += std::exp(z[size_t(j)] * sum - mx);
    for (int j = 0; j < N; ++j) {
      const double want = std::exp(z[size_t(j)] * sum - mx) / denom;
      EXPECT_NEAR(t[size_t(j * M + i)], want, 1e-4) << i << "," << j;
    }
  }
  // The same text compiles once per session.
  auto again = session.compile(ir, chipNamed("trn2"));
  ASSERT_TRUE(again.hasValue());
  EXPECT_EQ(again->get(), exe->get());
  EXPECT_EQ(session.compiles(), 1u);
  EXPECT_EQ(session.cacheHits(), 1u);
}

// Layout ops as strided tile loops: slice with a step, select, cat, expand, embedding, arange.
TEST(CompiledGraph, LayoutOpsMoveTheRightElements) {
  const std::string ir =
      "graph g(%x: f32[3, 7, 5] input, %e: f32[11, 4] param, %i: i32[6] input) {\n"
      "  %a: f32[3, 3, 5] = slice(%x) {dim=1, start=1, end=7, step=2}\n"
      "  %b: f32[3, 5] = select(%x) {dim=1, index=-1}\n"
      "  %c: f32[3, 4, 5] = cat(%a, %b2) {dim=1}\n"
      "  return %c\n}\n";
  // %b2 undefined: fix the text to define it first.
  const std::string fixed =
      "graph g(%x: f32[3, 7, 5] input, %e: f32[11, 4] param, %i: i32[6] input) {\n"
      "  %a: f32[3, 3, 5] = slice(%x) {dim=1, start=1, end=7, step=2}\n"
      "  %b: f32[3, 5] = select(%x) {dim=1, index=-1}\n"
      "  %b2: f32[3, 1, 5] = unsqueeze(%b) {dim=1}\n"
      "  %c: f32[3, 4, 5] = cat(%a, %b2) {dim=1}\n"
      "  %p: f32[5, 3, 4] = permute(%c) {dims=[2, 0, 1]}\n"
      "  %g: f32[6, 4] = embedding(%e, %i)\n"
      "  %r: i32[9] = arange() {start=2, end=20, step=2}\n"
      "  %x2: f32[2, 3, 4] = expand(%g1) {size=[2, 3, 4]}\n"
      "  return %p, %g, %r, %x2\n}\n";
  EXPECT_FALSE(parseGraph(ir).hasValue());
  std::string text = fixed;
  text.replace(text.find("  %x2"), 0, "  %g1: f32[1, 3, 4] = slice(%g3) {dim=0, start=0, end=1}\n");
  text.replace(text.find("  %g1"), 0, "  %g3: f32[2, 3, 4] = view(%g) {size=[2, 3, 4]}\n");
  runtime::Session session;
  auto exe = session.compile(text, chipNamed("trn2"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  const auto x = randoms(3 * 7 * 5, 4), e = randoms(11 * 4, 5);
  const std::vector<int32_t> idx = {3, 0, 10, 3, 7, 1};
  ASSERT_TRUE((*exe)->upload("x", bytes(x)).isOk());
  ASSERT_TRUE((*exe)->upload("e", bytes(e)).isOk());
  ASSERT_TRUE((*exe)->upload("i", bytes(idx)).isOk());
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  const auto p = as<float>(*(*exe)->read("p"));
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k) {
        const int src = j < 3 ? 1 + 2 * j : 6;
        EXPECT_EQ(p[size_t(k * 12 + i * 4 + j)], x[size_t(i * 35 + src * 5 + k)]);
      }
  const auto g = as<float>(*(*exe)->read("g"));
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(g[size_t(r * 4 + c)], e[size_t(idx[size_t(r)] * 4 + c)]);
  const auto r = as<int32_t>(*(*exe)->read("r"));
  for (int k = 0; k < 9; ++k) EXPECT_EQ(r[size_t(k)], 2 + 2 * k);
  const auto x2 = as<float>(*(*exe)->read("x2"));
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 12; ++k) EXPECT_EQ(x2[size_t(b * 12 + k)], g[size_t(k)]);
}

}  // namespace
}  // namespace trnsim::compiler

namespace trnsim::compiler {
namespace {

/// Host attention in double: out[b, h, i] = softmax_j(scale q_i . k_j + mask(i, j)) v_j.
std::vector<double> hostAttention(const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, int B, int H, int Hkv, int S, int D,
                                  bool causal, const std::vector<uint8_t>* keep) {
  std::vector<double> out(size_t(B * H * S * D));
  const double scale = 1.0 / std::sqrt(double(D));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int hk = h / (H / Hkv);
      for (int i = 0; i < S; ++i) {
        std::vector<double> s(size_t(S), -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < S; ++j) {
          if (causal && j > i) continue;
          if (keep && !(*keep)[size_t(i * S + j)]) continue;
          double d = 0;
          for (int c = 0; c < D; ++c)
            d += double(q[size_t(((b * H + h) * S + i) * D + c)]) *
                 k[size_t(((b * Hkv + hk) * S + j) * D + c)];
          s[size_t(j)] = d * scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        double den = 0;
        for (int j = 0; j < S; ++j) den += std::exp(s[size_t(j)] - mx);
        for (int c = 0; c < D; ++c) {
          double acc = 0;
          for (int j = 0; j < S; ++j)
            acc += std::exp(s[size_t(j)] - mx) / den * v[size_t(((b * Hkv + hk) * S + j) * D + c)];
          out[size_t(((b * H + h) * S + i) * D + c)] = acc;
        }
      }
    }
  return out;
}

std::vector<uint16_t> toBf16(std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = numerics::floatToBf16Bits(v[i]);
    v[i] = numerics::bf16BitsToFloat(out[i]);
  }
  return out;
}

// A backward graph's weight gradient dW = dy^T x (x [T, in], dy [T, out], T tokens) and a
// bmm of a transposed batch, bf16, odd sizes: the layout pass folds the permutes into
// transpose_a, nothing is transposed (no dma_transpose, no TensorE transpose: dy and q as
// stored are the lhsT TensorE wants), and the values match a double host loop.
TEST(CompiledGraph, WeightGradientReadsTheTransposedOperandAsStored) {
  const int T = 300, In = 200, Out = 130, B = 2, S = 129, D = 40;
  const std::string ir = fmt::format(
      "graph g(%x: bf16[{0}, {1}] input, %dy: bf16[{0}, {2}] input, %q: bf16[{3}, {4}, {5}] "
      "input, %k: bf16[{3}, {4}, {5}] input) {{\n"
      "  %dyt: bf16[{2}, {0}] = permute(%dy) {{dims=[1, 0]}}\n"
      "  %dw: bf16[{2}, {1}] = mm(%dyt, %x)\n"
      "  %qt: bf16[{3}, {5}, {4}] = permute(%q) {{dims=[0, 2, 1]}}\n"
      "  %s: bf16[{3}, {5}, {5}] = bmm(%qt, %k)\n"
      "  return %dw, %s\n}}\n",
      T, In, Out, B, S, D);
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn2"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  int folded = 0;
  for (const Node& n : (*exe)->graph().nodes) {
    EXPECT_NE(n.op, "permute");
    folded += n.intAttr("transpose_a", 0) != 0;
  }
  EXPECT_EQ(folded, 2);
  for (const auto& inst : (*exe)->program().instructions) {
    EXPECT_NE(inst.opcode, isa::Opcode::kDmaTranspose);
    EXPECT_NE(inst.opcode, isa::Opcode::kNcTranspose);
  }
  auto x = randoms(size_t(T * In), 21), dy = randoms(size_t(T * Out), 22),
       q = randoms(size_t(B * S * D), 23), k = randoms(size_t(B * S * D), 24);
  const auto xb = toBf16(x), dyb = toBf16(dy), qb = toBf16(q), kb = toBf16(k);
  ASSERT_TRUE((*exe)->upload("x", bytes(xb)).isOk());
  ASSERT_TRUE((*exe)->upload("dy", bytes(dyb)).isOk());
  ASSERT_TRUE((*exe)->upload("q", bytes(qb)).isOk());
  ASSERT_TRUE((*exe)->upload("k", bytes(kb)).isOk());
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  EXPECT_DOUBLE_EQ(rec->modelFlops, 2.0 * Out * In * T + 2.0 * B * D * D * S);
  // |err| <= one bf16 rounding of the result plus fp32 accumulation over the contraction.
  auto check = [](const std::vector<std::byte>& raw, int G, int M, int N, int K, auto&& aAt,
                  auto&& bAt, const char* what) {
    const std::vector<uint16_t> got = as<uint16_t>(raw);
    ASSERT_EQ(got.size(), size_t(G * M * N)) << what;
    int bad = 0;
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double ref = 0, absSum = 0;
          for (int t = 0; t < K; ++t) {
            const double p = double(aAt(g, i, t)) * bAt(g, t, j);
            ref += p;
            absSum += std::abs(p);
          }
          const double v = numerics::bf16BitsToFloat(got[size_t((g * M + i) * N + j)]);
          if (std::abs(v - ref) > std::ldexp(1.0, -8) * std::abs(ref) + 1e-5 * absSum && bad++ < 5)
            ADD_FAILURE() << what << "[" << g << ", " << i << ", " << j << "] = " << v
                          << ", expected " << ref;
        }
  };
  // dW[o, i] = sum_t dy[t, o] x[t, i]; s[b, d, e] = sum_s q[b, s, d] k[b, s, e].
  check(
      *(*exe)->read("dw"), 1, Out, In, T,
      [&](int, int o, int t) { return dy[size_t(t * Out + o)]; },
      [&](int, int t, int i) { return x[size_t(t * In + i)]; }, "dw");
  check(
      *(*exe)->read("s"), B, D, D, S,
      [&](int b, int d, int s) { return q[size_t((b * S + s) * D + d)]; },
      [&](int b, int s, int e) { return k[size_t((b * S + s) * D + e)]; }, "s");
}

// bf16, S a multiple of 128, GQA: the library's flash attention (one emitAttention per batch).
// Masked scores [B, S, S] with an [S, S] mask coalesce to [B, S * S] (the mask does not step
// over B): the tile loop splits the run so the tiles span all 128 partitions, not B of them,
// and the values are those of a host loop.
TEST(CompiledGraph, PointwiseOverFewLongRunsUsesEveryPartition) {
  const int B = 3, S = 256;
  const std::string ir = fmt::format(
      "graph g(%x: f32[{0}, {1}, {1}] input, %m: u8[{1}, {1}] input) {{\n"
      "  %s: f32[{0}, {1}, {1}] = mul(%x) {{other=0.5}}\n"
      "  %y: f32[{0}, {1}, {1}] = masked_fill(%s, %m) {{value=-100.0}}\n"
      "  return %y\n}}\n",
      B, S);
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn1"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  int vectorOps = 0;
  for (const auto& inst : (*exe)->program().instructions) {
    if (inst.engine != isa::Engine::kVector) continue;
    ++vectorOps;
    for (const auto& op : inst.operands)
      EXPECT_EQ(op.ap.partitions, 128u) << isa::opInfo(inst.opcode).name;
  }
  EXPECT_GT(vectorOps, 0);
  auto x = randoms(size_t(B) * S * S, 31);
  std::vector<uint8_t> m(size_t(S) * S);
  for (size_t i = 0; i < m.size(); ++i) m[i] = (i * 7919) % 3 == 0;
  ASSERT_TRUE((*exe)->upload("x", bytes(x)).isOk());
  ASSERT_TRUE((*exe)->upload("m", bytes(m)).isOk());
  ASSERT_TRUE((*exe)->run(false).hasValue());
  const std::vector<float> y = as<float>(*(*exe)->read("y"));
  ASSERT_EQ(y.size(), x.size());
  int bad = 0;
  for (size_t i = 0; i < y.size(); ++i) bad += y[i] != (m[i % m.size()] ? -100.0f : x[i] * 0.5f);
  EXPECT_EQ(bad, 0);
}

TEST(CompiledGraph, AttentionTakesTheFlashKernelForBf16) {
  const int B = 2, H = 4, Hkv = 2, S = 128, D = 32;
  const std::string ir = fmt::format(
      "graph g(%q: bf16[{0}, {1}, {3}, {4}] input, %k: bf16[{0}, {2}, {3}, {4}] input, "
      "%v: bf16[{0}, {2}, {3}, {4}] input) {{\n"
      "  %o: bf16[{0}, {1}, {3}, {4}], %l: f32[{0}, {1}, {3}] = "
      "_scaled_dot_product_flash_attention_for_cpu(%q, %k, %v) {{dropout_p=0.0, is_causal=1}}\n"
      "  return %o\n}}\n",
      B, H, Hkv, S, D);
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn2"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  bool usesFlash = false;
  for (const auto& t : (*exe)->program().tensors) usesFlash |= t.name.rfind("att_", 0) == 0;
  auto q = randoms(size_t(B * H * S * D), 7), k = randoms(size_t(B * Hkv * S * D), 8),
       v = randoms(size_t(B * Hkv * S * D), 9);
  const auto qb = toBf16(q), kb = toBf16(k), vb = toBf16(v);
  ASSERT_TRUE((*exe)->upload("q", bytes(qb)).isOk());
  ASSERT_TRUE((*exe)->upload("k", bytes(kb)).isOk());
  ASSERT_TRUE((*exe)->upload("v", bytes(vb)).isOk());
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  const auto o = as<uint16_t>(*(*exe)->read("o"));
  const auto want = hostAttention(q, k, v, B, H, Hkv, S, D, true, nullptr);
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(double(numerics::bf16BitsToFloat(o[i])) - want[i]));
  // bf16 P and output: a few bf16 ulps of values of magnitude ~1.
  EXPECT_LT(worst, 3e-2);
  EXPECT_TRUE(usesFlash) << "bf16 attention with S = 128 should take the flash-attention kernel";
}

// fp32, odd sizes, GQA, causal and a boolean mask: scores, masks and softmax through the
// general path (grouped query heads share one batched matmul per KV head).
TEST(CompiledGraph, AttentionWithMasksMatchesHost) {
  const int B = 2, H = 4, Hkv = 2, S = 5, D = 6;
  const std::string ir = fmt::format(
      "graph g(%q: f32[{0}, {1}, {3}, {4}] input, %k: f32[{0}, {2}, {3}, {4}] input, "
      "%v: f32[{0}, {2}, {3}, {4}] input, %m: u8[{3}, {3}] input) {{\n"
      "  %o: f32[{0}, {1}, {3}, {4}], %l: f32[{0}, {1}, {3}] = "
      "_scaled_dot_product_flash_attention_for_cpu(%q, %k, %v, %m) {{is_causal=1}}\n"
      "  return %o\n}}\n",
      B, H, Hkv, S, D);
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn1"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  const auto q = randoms(size_t(B * H * S * D), 1), k = randoms(size_t(B * Hkv * S * D), 2),
             v = randoms(size_t(B * Hkv * S * D), 3);
  std::vector<uint8_t> keep(size_t(S * S), 1);
  keep[size_t(3 * S + 1)] = 0;  // row 3 may not see key 1
  keep[size_t(4 * S + 0)] = 0;
  ASSERT_TRUE((*exe)->upload("q", bytes(q)).isOk());
  ASSERT_TRUE((*exe)->upload("k", bytes(k)).isOk());
  ASSERT_TRUE((*exe)->upload("v", bytes(v)).isOk());
  ASSERT_TRUE((*exe)->upload("m", bytes(keep)).isOk());
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  const auto o = as<float>(*(*exe)->read("o"));
  const auto want = hostAttention(q, k, v, B, H, Hkv, S, D, true, &keep);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(o[i], want[i], 1e-4) << i;
}

// GPT-2's eager attention (the fuse_attention golden file's input: the mask built by
// transformers' masking_utils) through the default pipeline becomes one attention node and
// computes causal attention, against the host loops.
TEST(CompiledGraph, EagerAttentionPatternRunsAsOneCausalAttentionNode) {
  const int B = 2, H = 2, S = 5, D = 4;
  const std::string file =
      readFile(fs::path(TRNSIM_SOURCE_DIR) / "tests/compiler/golden/fuse_attention.ir");
  const std::string ir = file.substr(0, file.find("// CHECK:"));
  auto compiled = compileGraph(ir, chipNamed("trn2"));
  ASSERT_TRUE(compiled.hasValue()) << compiled.status().toString();
  int attention = 0, bmms = 0;
  for (const Node& n : compiled->graph.nodes) {
    attention += n.op == "_scaled_dot_product_flash_attention_for_cpu";
    bmms += n.op == "bmm";
  }
  EXPECT_EQ(attention, 1);
  EXPECT_EQ(bmms, 0);
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn2"));
  ASSERT_TRUE(exe.hasValue()) << exe.status().toString();
  const auto q = randoms(size_t(B * H * S * D), 11), k = randoms(size_t(B * H * S * D), 12),
             v = randoms(size_t(B * H * S * D), 13);
  ASSERT_TRUE((*exe)->upload("q", bytes(q)).isOk());
  ASSERT_TRUE((*exe)->upload("k", bytes(k)).isOk());
  ASSERT_TRUE((*exe)->upload("v", bytes(v)).isOk());
  auto rec = (*exe)->run(false);
  ASSERT_TRUE(rec.hasValue()) << rec.status().toString();
  const auto o = as<float>(*(*exe)->read("permute_4"));                    // [B, S, H, D]
  const auto want = hostAttention(q, k, v, B, H, H, S, D, true, nullptr);  // [B, H, S, D]
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int s = 0; s < S; ++s)
        for (int d = 0; d < D; ++d)
          EXPECT_NEAR(o[size_t(((b * S + s) * H + h) * D + d)],
                      want[size_t(((b * H + h) * S + s) * D + d)], 1e-4);
}

}  // namespace
}  // namespace trnsim::compiler

namespace trnsim::compiler {
namespace {

TEST(CompiledGraph, TensorsBeyondHbmAreRefusedByName) {
  // 2 x 40 GB of fp32 on a 96 GB trn2: the error names the biggest values and their sizes.
  const std::string ir =
      "graph big(%x: f32[100000, 100000] input) {\n"
      "  %y: f32[100000, 100000] = exp(%x)\n"
      "  %z: f32[100000, 100000] = neg(%y)\n"
      "  %v: f32[10000000000] = view(%z) {size=[-1]}\n"
      "  return %v\n}\n";
  runtime::Session session;
  auto exe = session.compile(ir, chipNamed("trn2"));
  ASSERT_FALSE(exe.hasValue());
  EXPECT_EQ(exe.status().code(), ErrorCode::kCapacity);
  const std::string msg = exe.status().message();
  EXPECT_NE(msg.find("120.00 GB of HBM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("%x f32[100000, 100000] (40.00 GB)"), std::string::npos) << msg;
}

}  // namespace
}  // namespace trnsim::compiler

namespace trnsim::compiler {
namespace {

// Intermediates share the activation arena once their last reader has run; views share their
// input's storage; inputs and outputs keep tensors of their own.
TEST(HbmPlan, ReusesStorageAfterTheLastRead) {
  auto g = parseGraph(
      "graph g(%x: f32[1024] input) {\n"
      "  %a: f32[1024] = exp(%x)\n"
      "  %b: f32[1024] = sum(%a) {dim=[], keepdim=0}\n"  // not a view: own storage
      "  %c: f32[1024] = neg(%a)\n"
      "  %v: f32[32, 32] = view(%c) {size=[32, 32]}\n"
      "  %d: f32[32, 32] = exp(%v)\n"
      "  %e: f32[32, 32] = neg(%d)\n"
      "  return %e\n}\n");
  ASSERT_TRUE(g.hasValue()) << g.status().toString();
  // (%b's declared type is wrong for sum; the plan only reads sizes and uses.)
  const HbmPlan p = planHbm(*g);
  auto id = [&](const char* n) { return uint32_t(g->find(n)); };
  EXPECT_EQ(p.storage[id("v")], id("c"));
  EXPECT_EQ(p.arenaOffset[id("v")], -1);
  EXPECT_EQ(p.arenaOffset[id("e")], -1);  // graph output
  EXPECT_EQ(p.ioBytes, 2u * 4096u);
  // a and b are live together (b is never read: freed at once); c is placed while a is still
  // read by it; d reuses a's place once c (through its view) has been read.
  EXPECT_NE(p.arenaOffset[id("c")], p.arenaOffset[id("a")]);
  EXPECT_EQ(p.arenaOffset[id("d")], p.arenaOffset[id("a")]);
  EXPECT_EQ(p.packedBytes, 4u * 4096u);
  EXPECT_EQ(p.arenaBytes, 2u * 4096u);
}

}  // namespace
}  // namespace trnsim::compiler
