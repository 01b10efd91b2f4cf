// The plan's outputs (report.cpp, plan_json.cpp): the JSON keys the CLI promises, the HTML page
// is self-contained (no URL, no script) and draws what it says, goodput falls with scale, and
// comparable chip counts follow the peak-rate ratio.

#include "trnsim/plan/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "trnsim/plan/plan_json.h"

namespace trnsim::plan {
namespace {

arch::SystemConfig system(const std::string& name, uint32_t perNode, double tflops) {
  arch::SystemConfig s;
  s.name = name;
  s.chipsPerNode = perNode;
  s.accel.name = name + " chip";
  s.accel.peakTflopsBf16 = tflops;
  s.accel.powerWatts = 700;
  s.checkpointGbpsPerNode = 10;
  s.scaleOut.maxChips = 131072;
  return s;
}

SystemPlan fakePlan(const std::string& name, uint64_t chips, double stepS) {
  SystemPlan p;
  p.system = name;
  p.accelerator = name + " chip";
  p.chips = chips;
  p.ranks = chips;
  StepEstimate& e = p.step;
  e.parallelism.tp = 8;
  e.parallelism.pp = 4;
  e.parallelism.dp = uint32_t(chips / 32);
  e.stepTimeS = stepS;
  e.breakdown.compute = 0.6 * stepS;
  e.breakdown.recompute = 0.1 * stepS;
  e.breakdown.tpExposed = 0.1 * stepS;
  e.breakdown.dpExposed = 0.05 * stepS;
  e.breakdown.bubble = 0.15 * stepS;
  e.tokensPerS = 1e6;
  e.mfu = 0.4;
  e.fits = true;
  e.memoryPerChipGib = 60;
  e.memoryCapacityGib = 80;
  return p;
}

PlanReport fakeReport() {
  PlanReport r;
  r.workload.model.name = "toy-70b";
  r.workload.globalBatch = 1024;
  r.workload.seq = 8192;
  r.tokens = 15e12;
  r.primary = fakePlan("sys-a", 4096, 10);
  ReliabilityModel rm;
  rm.usdPerNodeHour = 40;
  arch::SystemConfig a = system("sys-a", 16, 667);
  auto run = estimateRunWith(a, 4096, 1024.0 * 8192, r.primary.step, r.tokens, rm);
  EXPECT_TRUE(run);
  r.primary.run = *run;
  SearchResult s;
  s.evaluated = s.candidates = 1000;
  s.fitting = 100;
  s.top = {r.primary.step, r.primary.step};
  s.best = r.primary.step;
  r.primary.search = s;
  r.compare.push_back(fakePlan("sys-b", 2048, 12));
  SystemPlan failed;
  failed.system = "sys-c";
  failed.chips = 64;
  failed.error = "nothing fits";
  r.compare.push_back(failed);
  for (const auto& [name, per] : {std::pair<std::string, uint32_t>{"sys-a", 16}, {"sys-b", 8}}) {
    arch::SystemConfig s2 = system(name, per, 667);
    auto curve = goodputCurve(s2, goodputChipCounts(s2, 4096), 1e12, 0.7);
    EXPECT_TRUE(curve);
    r.goodput.push_back(*curve);
  }
  return r;
}

TEST(ReportTest, JsonHasTheDocumentedKeys) {
  auto j = nlohmann::json::parse(planToJson(fakeReport()));
  for (const char* key :
       {"step_time_s", "tokens_per_s", "model_tflops_per_chip", "hardware_tflops_per_chip", "mfu",
        "hfu", "memory_per_chip_gib", "fits", "breakdown", "parallelism", "time_to_train_days",
        "cost_usd", "energy_mwh", "goodput", "checkpoint_interval_s", "expected_interruptions",
        "search", "compare", "goodput_vs_chips"})
    EXPECT_TRUE(j.contains(key)) << key;
  for (const char* key : {"tp", "pp", "dp", "cp", "ep", "vpp", "microbatch"})
    EXPECT_TRUE(j["parallelism"].contains(key)) << key;
  for (const char* key : {"compute", "recompute", "tp_exposed", "cp_exposed", "ep_exposed",
                          "dp_exposed", "pp_exposed", "bubble", "optimizer"})
    EXPECT_TRUE(j["breakdown"].contains(key)) << key;
  EXPECT_EQ(j["parallelism"]["tp"], 8);
  EXPECT_DOUBLE_EQ(j["breakdown"]["bubble"].get<double>(), 1.5);
  EXPECT_EQ(j["compare"].size(), 2u);
  EXPECT_EQ(j["compare"][1]["error"], "nothing fits");
  EXPECT_EQ(j["search"]["top"].size(), 2u);
  // 15T tokens / (1024 * 8192) tokens per step, rounded up.
  EXPECT_EQ(j["steps"].get<uint64_t>(), uint64_t(std::ceil(15e12 / (1024.0 * 8192))));
}

TEST(ReportTest, HtmlIsSelfContainedAndDrawsEveryPart) {
  std::string html = planToHtml(fakeReport());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  std::string lower = html;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  lower.erase(std::remove(lower.begin(), lower.end(), ' '), lower.end());
  for (const char* external :
       {"http:", "https:", "ftp:", "file:", "src=", "href=", "@import", "url(", "<script", "<link"})
    EXPECT_EQ(lower.find(external), std::string::npos) << external;
  // Three plots (breakdown, three bar charts, goodput) plus nothing else drawn.
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++svgs;
  EXPECT_EQ(svgs, 5u);
  for (const char* part : {"compute: ", "recompute: ", "TP comm: ", "DP comm: ", "bubble: "})
    EXPECT_NE(html.find(part), std::string::npos) << part;
  EXPECT_NE(html.find("nothing fits"), std::string::npos);
  EXPECT_NE(html.find("sys-b x2048"), std::string::npos);
  // Balanced tags of the kinds we emit.
  for (const char* tag : {"svg", "table", "tr", "text", "title"}) {
    std::string open = std::string("<") + tag, close = std::string("</") + tag + ">";
    size_t opens = 0, closes = 0;
    for (size_t at = html.find(open); at != std::string::npos; at = html.find(open, at + 1))
      if (at + open.size() < html.size() &&
          (html[at + open.size()] == ' ' || html[at + open.size()] == '>'))
        ++opens;
    for (size_t at = html.find(close); at != std::string::npos; at = html.find(close, at + 1))
      ++closes;
    EXPECT_EQ(opens, closes) << tag;
  }
}

TEST(ReportTest, HtmlEscapesNames) {
  PlanReport r = fakeReport();
  r.workload.model.name = "<b>&model";
  std::string html = planToHtml(r);
  EXPECT_EQ(html.find("<b>&model"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;&amp;model"), std::string::npos);
}

TEST(ReportTest, GoodputFallsWithScale) {
  arch::SystemConfig s = system("sys", 8, 989);
  auto counts = goodputChipCounts(s, 16384);
  ASSERT_GE(counts.size(), 10u);
  EXPECT_EQ(counts.front(), 8u);
  EXPECT_GE(counts.back(), 131072u);
  EXPECT_LE(counts.back(), s.scaleOut.maxChips);
  auto curve = goodputCurve(s, counts, 1e12, 1.0);
  ASSERT_TRUE(curve);
  for (size_t i = 1; i < curve->points.size(); ++i)
    EXPECT_LT(curve->points[i].second, curve->points[i - 1].second) << curve->points[i].first;
  // With neither checkpoints nor stragglers, goodput is 1 - restart / job MTBF (to first order).
  ReliabilityModel none;
  none.stragglerSigma = 0;
  auto flat = goodputCurve(s, {1024}, 0, 1.0, none);
  ASSERT_TRUE(flat);
  double m = kLlama3ChipMtbfHours / 1024 * 3600;
  EXPECT_NEAR(flat->points[0].second, 1 - kDefaultRestartSeconds / m, 1e-12);
}

TEST(ReportTest, ComparableChipsFollowPeakRates) {
  arch::SystemConfig trn = system("trn", 16, 667);
  arch::SystemConfig gpu = system("gpu", 8, 989);
  // 4096 x 667 / 989 = 2762 -> the nearest 8 x 2^k in log scale is 2048.
  EXPECT_EQ(comparableChips(trn, 4096, gpu), 2048u);
  EXPECT_EQ(comparableChips(gpu, 2048, gpu), 2048u);
  // 2048 x 989 / 667 = 3037 -> 16 x 2^k: 2048 (ratio 1.48) or 4096 (ratio 1.35): 4096.
  EXPECT_EQ(comparableChips(gpu, 2048, trn), 4096u);
  // Never beyond the network's limit nor below one unit.
  EXPECT_EQ(comparableChips(trn, 1u << 20, gpu), 131072u);
  EXPECT_EQ(comparableChips(trn, 1, gpu), 8u);
}

TEST(ReportTest, TextNamesTheFigures) {
  std::string text = planToText(fakeReport());
  for (const char* s : {"step time", "MFU", "time to train", "goodput", "checkpoint", "search",
                        "sys-c x 64: nothing fits"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace trnsim::plan
