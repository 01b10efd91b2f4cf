// The compiled-layer compute model (plan/layer_graph.h, plan/compute_compiled.h): the layer
// graphs pass the compiler's checks, their FLOPs are the model's analytic per-layer FLOPs, a
// compiled layer takes at least as long as its matmuls alone, the disk cache round-trips and
// survives a corrupt file, and the planner's kernel composition still gives the numbers it
// gave before compiled layers existed. Tiny models and short sequences: each test runs in
// seconds under ASan + UBSan.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "trnsim/arch/system_config.h"
#include "trnsim/compiler/ops.h"
#include "trnsim/compiler/passes.h"
#include "trnsim/compiler/text.h"
#include "trnsim/plan/compute_compiled.h"
#include "trnsim/plan/compute_sim.h"
#include "trnsim/plan/estimate.h"
#include "trnsim/plan/layer_graph.h"
#include "trnsim/plan/run.h"
#include "trnsim/runtime/session.h"

namespace trnsim::plan {
namespace {

constexpr const char* kAttentionBackward = "_scaled_dot_product_flash_attention_for_cpu_backward";

bool haveAttentionBackward() { return compiler::findOp(kAttentionBackward) != nullptr; }

/// A Llama-shaped model small enough for a sanitizer build: 4 heads of 64 on 2 KV heads.
ModelConfig tinyLlama() {
  ModelConfig m;
  m.name = "tiny-llama";
  m.layers = 2;
  m.hidden = 256;
  m.ffnHidden = 512;
  m.heads = 4;
  m.kvHeads = 2;
  m.vocab = 1024;
  m.activation = Activation::kSwiglu;
  return m;
}

ModelConfig tinyGpt() {
  ModelConfig m = tinyLlama();
  m.name = "tiny-gpt";
  m.kvHeads = 4;
  m.activation = Activation::kGelu;
  return m;
}

arch::SystemConfig trn2() {
  auto s = arch::loadSystem("trn2.48xlarge");
  EXPECT_TRUE(s) << s.status().toString();
  return *s;
}

/// A fresh temporary cache folder per test.
std::string tempCacheDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             fmt::format("trnsim_plan_cache_{}_{}", name, static_cast<long>(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

Status checkGraph(const std::string& text) {
  TRNSIM_ASSIGN_OR_RETURN(compiler::Graph g, compiler::parseGraph(text));
  return compiler::runPipeline(g);
}

TEST(CompiledLayerGraphs, PassTheCompilerChecks) {
  struct Case {
    ModelConfig model;
    LayerGraphShape shape;
  };
  std::vector<Case> cases;
  cases.push_back({tinyLlama(), {.tp = 1, .cp = 1, .batch = 1, .seq = 256}});
  cases.push_back({tinyLlama(), {.tp = 2, .cp = 1, .batch = 2, .seq = 256}});
  cases.push_back(
      {tinyLlama(), {.tp = 2, .cp = 2, .batch = 1, .seq = 512, .sequenceParallel = false}});
  cases.push_back({tinyGpt(), {.tp = 2, .cp = 1, .batch = 1, .seq = 256}});
  cases.push_back({tinyLlama(), {.tp = 1, .cp = 1, .batch = 1, .seq = 256, .mlp = false}});
  // The published GPT-3-era recipe: materialized attention (GQA groups stacked) and dropout.
  cases.push_back({tinyLlama(),
                   {.tp = 1, .cp = 1, .batch = 2, .seq = 256, .materializedAttention = true,
                    .dropout = 0.1}});
  cases.push_back({tinyGpt(),
                   {.tp = 2, .cp = 1, .batch = 1, .seq = 256, .materializedAttention = true,
                    .dropout = 0.1}});
  const bool bwd = haveAttentionBackward();
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("{} tp {} cp {} batch {} mlp {} materialized {} dropout {}",
                             c.model.name, c.shape.tp, c.shape.cp, c.shape.batch, c.shape.mlp,
                             c.shape.materializedAttention, c.shape.dropout));
    auto g = buildLayerGraphs(c.model, c.shape);
    ASSERT_TRUE(g) << g.status().toString();
    std::vector<const std::string*> texts = {&g->forward, &g->attentionForward};
    if (c.shape.cp > 1) texts.push_back(&g->ringForward);
    if (bwd) {
      texts.push_back(&g->backward);
      texts.push_back(&g->attentionBackward);
      if (c.shape.cp > 1) texts.push_back(&g->ringBackward);
    }
    for (const std::string* t : texts) {
      Status s = checkGraph(*t);
      EXPECT_TRUE(s.isOk()) << s.toString() << "\n" << *t;
    }
    auto head = buildHeadGraphs(c.model, c.shape);
    ASSERT_TRUE(head) << head.status().toString();
    for (const std::string* t : {&head->forward, &head->backward}) {
      Status s = checkGraph(*t);
      EXPECT_TRUE(s.isOk()) << s.toString() << "\n" << *t;
    }
  }
  Status s = checkGraph(buildAdamwGraph(5000));
  EXPECT_TRUE(s.isOk()) << s.toString();
  // One fused node: AdamW is a single streaming pass.
  auto g = compiler::parseGraph(buildAdamwGraph(5000));
  ASSERT_TRUE(g);
  ASSERT_TRUE(compiler::runPipeline(*g).isOk());
  ASSERT_EQ(g->nodes.size(), 1u) << compiler::printGraph(*g);
  EXPECT_EQ(g->nodes[0].op, "fused");
  if (!bwd) GTEST_SKIP() << kAttentionBackward << " is not in the op table yet: backward unchecked";
}

/// Forward FLOPs of one layer per token on one rank, from the model's shape alone: QKV, output
/// projection, SwiGLU (3 matmuls), and the attention core's useful (causal) half.
double analyticForwardFlops(const ModelConfig& m, const LayerGraphShape& s) {
  const double h = m.hidden, hd = double(m.hidden) / m.heads, tp = double(s.tp);
  const double heads = m.heads / tp, kv = std::max(1.0, m.kvHeads / tp);
  const double ffn = m.ffnHidden / tp;
  const double tokens = double(s.batch) * double(s.seq) / double(s.cp);
  const double perToken = 2 * h * (heads + 2 * kv) * hd + 2 * heads * hd * h + 2 * 3 * h * ffn;
  const double attention = 4.0 * double(s.batch) * heads * std::pow(double(s.seq), 2) * hd / 2;
  return tokens * perToken + attention;
}

double graphFlops(const std::string& text) {
  auto c = compiler::compileGraph(text, *arch::loadChip("trn2"));
  EXPECT_TRUE(c) << c.status().toString();
  if (!c) return -1;
  runtime::Executable exe(std::move(c).value(), *arch::loadChip("trn2"));
  return exe.matmulFlops();
}

TEST(CompiledLayerGraphs, FlopsEqualTheModelsAnalyticFlops) {
  const ModelConfig m = tinyLlama();
  for (uint64_t tp : {1u, 2u}) {
    LayerGraphShape s{.tp = tp, .cp = 1, .batch = 1, .seq = 256};
    auto g = buildLayerGraphs(m, s);
    ASSERT_TRUE(g) << g.status().toString();
    const double want = analyticForwardFlops(m, s);
    EXPECT_DOUBLE_EQ(graphFlops(g->forward), want) << "tp " << tp;
    if (haveAttentionBackward()) {
      // Backward matmuls: dX and dW of every linear layer, twice the forward's.
      const double attention = 4.0 * double(m.heads / tp) * 256.0 * 256.0 * 64 / 2;
      EXPECT_DOUBLE_EQ(graphFlops(g->backward), 2 * (want - attention)) << "tp " << tp;
    }
  }
}

// Materialized attention computes the whole square (twice the causal half) forward, and its four
// backward bmms twice that; the dense matmuls are unchanged. Context parallelism and a dropout
// outside [0, 1) are refused with the reason.
TEST(CompiledLayerGraphs, MaterializedAttentionComputesTheWholeSquare) {
  const ModelConfig m = tinyLlama();
  LayerGraphShape s{.tp = 1, .cp = 1, .batch = 1, .seq = 256, .materializedAttention = true,
                    .dropout = 0.1};
  auto g = buildLayerGraphs(m, s);
  ASSERT_TRUE(g) << g.status().toString();
  const double square = 4.0 * m.heads * 256.0 * 256.0 * 64;  // scores + context, all pairs
  const double dense = analyticForwardFlops(m, s) - square / 2;
  EXPECT_DOUBLE_EQ(graphFlops(g->forward), dense + square);
  EXPECT_DOUBLE_EQ(graphFlops(g->backward), 2 * dense + 2 * square);
  EXPECT_DOUBLE_EQ(graphFlops(g->attentionForward), square);
  EXPECT_NE(g->forward.find("native_dropout"), std::string::npos);
  EXPECT_EQ(g->forward.find("flash_attention"), std::string::npos);
  LayerGraphShape cp = s;
  cp.cp = 2;
  auto refused = buildLayerGraphs(m, cp);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().toString().find("context parallelism"), std::string::npos);
  LayerGraphShape p = s;
  p.dropout = 1;
  ASSERT_FALSE(buildLayerGraphs(m, p));
}

/// y = x W^T alone, as a graph: the matmul kernel's own time.
std::string loneMatmul(int64_t rows, int64_t in, int64_t out) {
  return fmt::format(
      "graph mm_alone(%x: bf16[{0}, {1}] input, %w: bf16[{2}, {1}] param) {{\n"
      "  %y: bf16[{0}, {2}] = mm(%x, %w) {{transpose_b=1}}\n  return %y\n}}\n",
      rows, in, out);
}

TEST(CompiledComputeModel, ForwardTakesAtLeastItsMatmuls) {
  CompiledComputeOptions o;
  o.cacheDir = "off";
  auto model = CompiledComputeModel::create(trn2(), o);
  ASSERT_TRUE(model) << model.status().toString();
  const ModelConfig m = tinyLlama();
  LayerGraphShape s{.tp = 1, .cp = 1, .batch = 1, .seq = 256};
  auto g = buildLayerGraphs(m, s);
  ASSERT_TRUE(g);
  auto fwd = (*model)->graphSeconds(g->forward);
  ASSERT_TRUE(fwd) << fwd.status().toString();
  const int64_t T = 256, h = 256, hq = 256, hkv = 128, f = 512;
  double matmuls = 0;
  for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{
           {h, hq}, {h, hkv}, {h, hkv}, {hq, h}, {h, f}, {h, f}, {f, h}}) {
    auto t = (*model)->graphSeconds(loneMatmul(T, in, out));
    ASSERT_TRUE(t) << t.status().toString();
    matmuls += *t;
  }
  EXPECT_GE(*fwd, matmuls);
  // ... and not absurdly more: the layer is more than its matmuls, but not 50x.
  EXPECT_LT(*fwd, 50 * matmuls);
  // The per-rank figure divides the one-core time by the rank's 2 physical cores (trn2, LNC=2).
  if (haveAttentionBackward()) {
    auto layer = (*model)->layer(m, s);
    ASSERT_TRUE(layer) << layer.status().toString();
    EXPECT_DOUBLE_EQ(layer->forward, *fwd / 2);
    EXPECT_GT(layer->backward, layer->forward);
    EXPECT_GT(layer->forward, layer->attentionForward);
  }
}

TEST(CompiledComputeModel, DiskCacheRoundTripsAndIgnoresACorruptFile) {
  const std::string dir = tempCacheDir("roundtrip");
  CompiledComputeOptions o;
  o.cacheDir = dir;
  const std::string text = loneMatmul(256, 256, 512);
  double first = 0;
  {
    auto model = CompiledComputeModel::create(trn2(), o);
    ASSERT_TRUE(model);
    auto t = (*model)->graphSeconds(text);
    ASSERT_TRUE(t) << t.status().toString();
    first = *t;
    EXPECT_GT(first, 0);
    EXPECT_EQ((*model)->simulations(), 1u);
    auto again = (*model)->graphSeconds(text);  // memory
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, first);
    EXPECT_EQ((*model)->memoryHits(), 1u);
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  {
    auto model = CompiledComputeModel::create(trn2(), o);  // a new process, in effect
    ASSERT_TRUE(model);
    auto t = (*model)->graphSeconds(text);
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, first);  // bit-exact through the file
    EXPECT_EQ((*model)->diskHits(), 1u);
    EXPECT_EQ((*model)->simulations(), 0u);
  }
  for (const char* junk : {"{\"key\": \"0\", \"seconds\": 1.0}", "not json at all {", ""}) {
    {
      std::ofstream out(files[0], std::ios::binary | std::ios::trunc);
      out << junk;
    }
    auto model = CompiledComputeModel::create(trn2(), o);
    ASSERT_TRUE(model);
    testing::internal::CaptureStderr();
    auto t = (*model)->graphSeconds(text);
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_TRUE(t) << t.status().toString();
    EXPECT_EQ(*t, first) << junk;  // simulated again, not read from the junk
    EXPECT_EQ((*model)->simulations(), 1u) << junk;
    EXPECT_NE(err.find("warning"), std::string::npos) << err;
    EXPECT_NE(err.find(files[0].filename().string()), std::string::npos) << err;
  }
  // The last simulation rewrote a good file.
  auto model = CompiledComputeModel::create(trn2(), o);
  ASSERT_TRUE(model);
  ASSERT_TRUE((*model)->graphSeconds(text));
  EXPECT_EQ((*model)->diskHits(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(CompiledComputeModel, KeyCoversTheChipAndTheText) {
  const std::string dir = tempCacheDir("keys");
  CompiledComputeOptions o;
  o.cacheDir = dir;
  auto a = CompiledComputeModel::create(trn2(), o);
  ASSERT_TRUE(a);
  arch::SystemConfig trn1 = *arch::loadSystem("trn1.32xlarge");
  auto b = CompiledComputeModel::create(trn1, o);
  ASSERT_TRUE(b) << b.status().toString();
  const std::string text = loneMatmul(128, 128, 512);
  ASSERT_TRUE((*a)->graphSeconds(text));
  ASSERT_TRUE((*b)->graphSeconds(text));  // another chip: simulated, not read from trn2's
  EXPECT_EQ((*b)->diskHits(), 0u);
  ASSERT_TRUE((*a)->graphSeconds(loneMatmul(128, 256, 512)));
  EXPECT_EQ((*a)->simulations(), 2u);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 3u);
  std::filesystem::remove_all(dir);
  // The key's version names the code that times the graphs (a fingerprint of the compiler,
  // kernels, simulator and chip configs), so a figure from older code is never reused.
  const std::string v(compiledCacheVersion());
  const size_t at = v.find("/ code ");
  ASSERT_NE(at, std::string::npos) << v;
  EXPECT_EQ(v.substr(at + 7).find_first_not_of("0123456789abcdef"), std::string::npos) << v;
  EXPECT_EQ(v.size() - at - 7, 16u) << v;
}

// The planner's kernel composition is untouched by compiled layers: `--compute-model kernels`
// gives what `trnsim plan` printed before they existed (the installed CLI of commit 432db76,
// `trnsim plan --model llama3-8b --system trn2.48xlarge --chips 16 --global-batch 64 --seq 4096
// --tp 4 --json`).
TEST(CompiledComputeModel, KernelsModelReproducesTheOldNumbers) {
  PlannerOptions o;
  o.computeModel = ComputeModelKind::kKernels;
  auto planner = Planner::create(trn2(), 16, o);
  ASSERT_TRUE(planner) << planner.status().toString();
  EXPECT_EQ(planner->computeModel(), ComputeModelKind::kKernels);
  Workload w;
  w.model = *loadModel("llama3-8b");
  w.globalBatch = 64;
  w.seq = 4096;
  Parallelism p;
  p.tp = 4;
  p.dp = 16;
  auto e = planner->estimate(w, p);
  ASSERT_TRUE(e) << e.status().toString();
  EXPECT_EQ(e->computeModel, "kernels");
  EXPECT_DOUBLE_EQ(e->stepTimeS, 1.6746101821257995);
  EXPECT_DOUBLE_EQ(e->breakdown.compute, 1.55975085368262);
  EXPECT_DOUBLE_EQ(e->breakdown.recompute, 0.03738038926351255);
  EXPECT_DOUBLE_EQ(e->breakdown.optimizer, 0.0052175916829885075);
  EXPECT_DOUBLE_EQ(e->mfu, 0.8004101816092437);
}

TEST(CompiledComputeModel, PlannerUsesCompiledLayersOnTrainiumOnly) {
  if (!haveAttentionBackward()) GTEST_SKIP() << kAttentionBackward << " is not in the op table yet";
  PlannerOptions o;
  o.compiled.cacheDir = "off";
  Workload w;
  w.model = tinyLlama();
  w.globalBatch = 16;
  w.seq = 256;
  Parallelism p;
  p.tp = 2;
  p.dp = 32;
  p.microbatch = 1;
  w.globalBatch = 64;
  auto planner = Planner::create(trn2(), 16, o);
  ASSERT_TRUE(planner) << planner.status().toString();
  ASSERT_EQ(planner->computeModel(), ComputeModelKind::kCompiled);
  auto compiled = planner->estimate(w, p);
  ASSERT_TRUE(compiled) << compiled.status().toString();
  EXPECT_EQ(compiled->computeModel, "compiled");
  auto kernels = planner->estimate(w, p, ComputeModelKind::kKernels);
  ASSERT_TRUE(kernels);
  EXPECT_EQ(kernels->computeModel, "kernels");
  // The compiled layer charges norms, casts, layout changes and residuals as compiled: it is
  // slower than the composition; communication and memory are the same model.
  EXPECT_GT(compiled->breakdown.compute, kernels->breakdown.compute);
  EXPECT_EQ(compiled->breakdown.tpExposed, kernels->breakdown.tpExposed);
  EXPECT_EQ(compiled->memoryPerChipGib, kernels->memoryPerChipGib);
  // fp8: the compiled graphs are bf16, so the kernel composition answers and says so.
  Parallelism p8 = p;
  p8.precision = Precision::kFp8;
  auto fp8 = planner->estimate(w, p8);
  ASSERT_TRUE(fp8);
  EXPECT_EQ(fp8->computeModel, "kernels");
  EXPECT_NE(fp8->computeNote.find("fp8"), std::string::npos);
  // GPUs keep the roofline.
  auto gpu = Planner::create(*arch::loadSystem("dgx-h100"), 8, o);
  ASSERT_TRUE(gpu);
  EXPECT_EQ(gpu->computeModel(), ComputeModelKind::kKernels);
  Parallelism pg;
  pg.tp = 2;
  pg.dp = 4;
  auto eg = gpu->estimate(w, pg);
  ASSERT_TRUE(eg);
  EXPECT_EQ(eg->computeModel, "roofline");
}

TEST(CompiledComputeModel, SearchReRanksTheBestWithCompiledLayers) {
  if (!haveAttentionBackward()) GTEST_SKIP() << kAttentionBackward << " is not in the op table yet";
  PlannerOptions o;
  o.compiled.cacheDir = "off";
  o.compiledRerank = 6;  // re-time 6, keep the top 5
  auto planner = Planner::create(trn2(), 16, o);  // 64 ranks
  ASSERT_TRUE(planner) << planner.status().toString();
  Workload w;
  w.model = tinyLlama();
  w.globalBatch = 64;
  w.seq = 256;
  SearchOptions so;
  so.fixCp = true;  // cp 1, pp 1: a small search (tp 1, 2 or 4, micro-batches)
  so.fixPp = true;
  so.fixPrecision = true;
  so.fixRecompute = true;
  so.fixZero = true;
  so.fixed.zero = 1;
  so.fixed.recompute = Recompute::kSelective;
  so.threads = 2;
  auto r = search(*planner, w, so);
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_EQ(r->computeModel, "compiled");
  EXPECT_EQ(r->reranked, std::min<uint64_t>(6, r->fitting));
  EXPECT_EQ(r->top.size(), std::min<size_t>(5, r->fitting));
  ASSERT_FALSE(r->top.empty());
  for (size_t i = 0; i < r->top.size(); ++i) {
    EXPECT_EQ(r->top[i].computeModel, "compiled");
    if (i) {
      EXPECT_LE(r->top[i - 1].stepTimeS, r->top[i].stepTimeS);
    }
    // Each is the planner's compiled estimate of that parallelism.
    auto again = planner->estimate(w, r->top[i].parallelism);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->stepTimeS, r->top[i].stepTimeS);
  }
}

}  // namespace
}  // namespace trnsim::plan

namespace trnsim::plan {
namespace {

// docs/plan_compute.md, "Compiled layers against the kernel composition": one layer of
// Llama-3-8B, 70B and 405B at the per-rank shapes the planner picks on trn2, forward and
// backward per rank and micro-batch, by both compute models. Release build:
//   ./build/<release>/tests/test_plan --gtest_filter='CompiledComputeModelSlow.*'
// (the compiled graphs are cached under $TRNSIM_CACHE_DIR; `off` times them afresh).
TEST(CompiledComputeModelSlow, Llama3LayersSideBySide) {
  struct Row {
    const char* model;
    Parallelism p;
  };
  auto par = [](uint32_t tp, uint32_t cp, uint32_t mb, bool sp) {
    Parallelism p;
    p.tp = tp;
    p.cp = cp;
    p.microbatch = mb;
    p.sequenceParallel = sp;
    return p;
  };
  const Row rows[] = {{"llama3-8b", par(1, 2, 1, false)},
                      {"llama3-70b", par(4, 4, 1, true)},
                      {"llama3-405b", par(16, 2, 1, true)}};
  auto sim = SimulatedComputeModel::create(trn2());
  ASSERT_TRUE(sim);
  auto compiled = CompiledComputeModel::create(trn2());
  ASSERT_TRUE(compiled);
  const SimulatedComputeModel& k = **sim;
  for (const Row& r : rows) {
    const ModelConfig m = *loadModel(r.model);
    const Parallelism& p = r.p;
    const uint64_t seq = 8192, T = p.microbatch * seq / p.cp, tp = p.tp, h = m.hidden;
    const uint64_t hd = m.headDim(), H = m.heads / tp, Hk = std::max<uint64_t>(1, m.kvHeads / tp);
    const uint64_t F = m.ffnHidden / tp;
    // The kernel composition as estimate.cpp adds it up (bf16).
    auto bwdMm = [&](MatmulShape s) {
      return k.matmulSeconds({s.m, s.k, s.n, s.batch}, Precision::kBf16) +
             k.matmulSeconds({s.k, s.n, s.m, s.batch}, Precision::kBf16);
    };
    const MatmulShape mms[] = {{T, (H + 2 * Hk) * hd, h, 1}, {T, h, H * hd, 1},
                               {T, 2 * F, h, 1}, {T, h, F, 1}};
    double mmF = 0, mmB = 0;
    for (const MatmulShape& s : mms) {
      mmF += k.matmulSeconds(s, Precision::kBf16);
      mmB += bwdMm(s);
    }
    AttentionShape a{p.microbatch, H, Hk, seq / p.cp, seq, hd, true};
    const double aF = k.attentionForwardSeconds(a, Precision::kBf16);
    const double aB = k.attentionBackwardSeconds(a, Precision::kBf16);
    const double normTokens = p.sequenceParallel ? double(T) / tp : double(T);
    const double normBytes = normTokens * h * (2 * 2 + 2 * 3) * 2.0;
    const double actElems = double(T) * F * 3;
    const double memF = k.memoryBoundSeconds(normBytes) + k.memoryBoundSeconds(actElems * 2);
    const double memB = k.memoryBoundSeconds(2 * normBytes) + k.memoryBoundSeconds(4 * actElems);
    // The same matmuls as the compiler lowers them, each alone (per rank: / 2 cores): forward
    // x W^T, dgrad dy W, wgrad permute(dy) x as AOTAutograd writes it.
    const int64_t Ti = int64_t(T / p.microbatch);  // one sequence, as the graphs
    const std::pair<int64_t, int64_t> linears[] = {{int64_t(h), int64_t(H * hd)},
                                                   {int64_t(h), int64_t(Hk * hd)},
                                                   {int64_t(h), int64_t(Hk * hd)},
                                                   {int64_t(H * hd), int64_t(h)},
                                                   {int64_t(h), int64_t(F)},
                                                   {int64_t(h), int64_t(F)},
                                                   {int64_t(F), int64_t(h)}};
    double cmF = 0, cmB = 0, cmPermute = 0;
    for (auto [in, out] : linears) {
      auto f = (*compiled)->graphSeconds(loneMatmul(Ti, in, out));
      auto dg = (*compiled)->graphSeconds(fmt::format(
          "graph dgrad(%dy: bf16[{0}, {2}] input, %w: bf16[{2}, {1}] param) {{\n"
          "  %dx: bf16[{0}, {1}] = mm(%dy, %w)\n  return %dx\n}}\n",
          Ti, in, out));
      auto wg = (*compiled)->graphSeconds(fmt::format(
          "graph wgrad(%dy: bf16[{0}, {2}] input, %x: bf16[{0}, {1}] input) {{\n"
          "  %t: bf16[{2}, {0}] = permute(%dy) {{dims=[1, 0]}}\n"
          "  %dw: bf16[{2}, {1}] = mm(%t, %x)\n  return %dw\n}}\n",
          Ti, in, out));
      auto pe = (*compiled)->graphSeconds(fmt::format(
          "graph perm(%dy: bf16[{0}, {1}] input) {{\n"
          "  %t: bf16[{1}, {0}] = permute(%dy) {{dims=[1, 0]}}\n  return %t\n}}\n",
          Ti, out));
      ASSERT_TRUE(f && dg && wg && pe);
      const double perRank = double(p.microbatch) / (*compiled)->physicalCoresPerRank();
      cmF += *f * perRank;
      cmB += (*dg + *wg) * perRank;
      cmPermute += *pe * perRank;
    }
    std::printf("%-12s compiled matmuls alone: fwd %.2f ms, bwd %.2f ms (of which the wgrad "
                "permutes alone %.2f ms)\n",
                r.model, cmF * 1e3, cmB * 1e3, cmPermute * 1e3);
    LayerGraphShape gs{.tp = tp, .cp = p.cp, .batch = p.microbatch, .seq = seq,
                       .sequenceParallel = p.sequenceParallel};
    const auto started = std::chrono::steady_clock::now();
    auto c = (*compiled)->layer(m, gs);
    ASSERT_TRUE(c) << c.status().toString();
    const double host =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf(
        "%-12s tp%llu cp%llu mb%llu: kernels fwd %.2f ms (mm %.2f, attn %.2f, mem %.2f) bwd %.2f ms "
        "(mm %.2f, attn %.2f, mem %.2f) | compiled fwd %.2f ms (attn %.2f) bwd %.2f ms (attn "
        "%.2f) | x%.2f fwd, x%.2f bwd | host %.1f s\n",
        r.model, (unsigned long long)tp, (unsigned long long)p.cp,
        (unsigned long long)p.microbatch, (mmF + aF + memF) * 1e3, mmF * 1e3, aF * 1e3,
        memF * 1e3, (mmB + aB + memB) * 1e3, mmB * 1e3, aB * 1e3, memB * 1e3, c->forward * 1e3,
        c->attentionForward * 1e3, c->backward * 1e3, c->attentionBackward * 1e3,
        c->forward / (mmF + aF + memF), c->backward / (mmB + aB + memB), host);
    EXPECT_GT(c->forward, mmF);
    EXPECT_GT(c->backward, mmB);
  }
}

}  // namespace
}  // namespace trnsim::plan

namespace trnsim::plan {
namespace {

// Writes the graphs of one layer (Llama-3-405B at tp 16, cp 2, one sequence of 8192 tokens, or
// $TRNSIM_DUMP_LAYER_MODEL, _TP, _CP, _SEQ,
// _ATTENTION=materialized, _DROPOUT) as IR text into $TRNSIM_DUMP_LAYER_IR, for reading or for
// `trnsim._trnsim.compiler.compile` (skipped unless the variable is set).
TEST(CompiledComputeModelSlow, DumpLayerIr) {
  const char* dir = std::getenv("TRNSIM_DUMP_LAYER_IR");
  if (!dir) GTEST_SKIP() << "set TRNSIM_DUMP_LAYER_IR to a folder";
  const char* name = std::getenv("TRNSIM_DUMP_LAYER_MODEL");
  const ModelConfig m = *loadModel(name ? name : "llama3-405b");
  LayerGraphShape s{.tp = 16, .cp = 2, .batch = 1, .seq = 8192};
  if (const char* tp = std::getenv("TRNSIM_DUMP_LAYER_TP")) s.tp = std::stoull(tp);
  if (const char* cp = std::getenv("TRNSIM_DUMP_LAYER_CP")) s.cp = std::stoull(cp);
  if (const char* seq = std::getenv("TRNSIM_DUMP_LAYER_SEQ")) s.seq = std::stoull(seq);
  if (const char* a = std::getenv("TRNSIM_DUMP_LAYER_ATTENTION"))
    s.materializedAttention = std::string(a) == "materialized";
  if (const char* p = std::getenv("TRNSIM_DUMP_LAYER_DROPOUT")) s.dropout = std::stod(p);
  s.sequenceParallel = s.tp > 1;
  auto g = buildLayerGraphs(m, s);
  ASSERT_TRUE(g);
  auto h = buildHeadGraphs(m, s);
  ASSERT_TRUE(h);
  std::filesystem::create_directories(dir);
  const std::pair<const char*, const std::string*> files[] = {
      {"layer_forward.ir", &g->forward},        {"layer_backward.ir", &g->backward},
      {"attention_forward.ir", &g->attentionForward}, {"attention_backward.ir", &g->attentionBackward},
      {"head_forward.ir", &h->forward},          {"head_backward.ir", &h->backward}};
  for (const auto& [file, text] : files) std::ofstream(std::filesystem::path(dir) / file) << *text;
}

}  // namespace
}  // namespace trnsim::plan
