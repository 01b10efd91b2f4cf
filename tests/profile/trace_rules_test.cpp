// The trace rules (profile/trace_check.h): what trnsim writes keeps them, including a real
// pipelined matmul whose TensorE instructions overlap in the timing model, and the checker
// refuses each kind of broken trace with a message that names the events.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>

#include "profile_fixture.h"
#include "trnsim/isa/builder.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/profile/trace.h"
#include "trnsim/profile/trace_check.h"
#include "trnsim/sim/chip.h"

namespace trnsim::profile {
namespace {

using arch::Engine;
using testing::event;
using nlohmann::json;

/// (tid, name) of every named track, and tid of every slice, in a one-core trace.
struct Tracks {
  std::map<int64_t, std::string> names;
  std::vector<int64_t> sliceTids;
};

Tracks tracksOf(const std::string& text) {
  Tracks t;
  const json trace = json::parse(text);
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") t.names[e["tid"]] = e["args"]["name"];
    if (e["ph"] == "X") t.sliceTids.push_back(e["tid"]);
  }
  return t;
}

TEST(TraceRules, TheFixturesTraceKeepsThem) {
  const arch::ChipConfig chip = testing::testChip();
  const isa::Program program = testing::testProgram();
  const sim::Timeline timeline = testing::testTimeline();
  auto text = traceJson(singleChipTrace(chip, {&program, 1}, timeline));
  ASSERT_TRUE(text) << text.status().toString();
  EXPECT_TRUE(checkTraceRules(*text).isOk()) << checkTraceRules(*text).toString();
}

TEST(TraceRules, AnInstructionStartingBeforeThePreviousEndsGoesOnALane) {
  // TensorE: [0, 10] and [5, 15] overlap; [12, 20] fits after the first. A contained slice
  // would nest, but lanes keep one slice at a time per track.
  sim::Timeline t;
  t.events = {event(0, Engine::kTensor, 0, 0, 0, 10, 0, 0, 0),
              event(0, Engine::kTensor, 0, 1, 5, 15, 0, 0, 0),
              event(0, Engine::kTensor, 0, 2, 12, 20, 0, 0, 0),
              event(0, Engine::kTensor, 0, 3, 13, 14, 0, 0, 0)};
  t.endNs = 20;
  const arch::ChipConfig chip = testing::testChip();
  auto text = traceJson(singleChipTrace(chip, {}, t));
  ASSERT_TRUE(text) << text.status().toString();
  EXPECT_TRUE(checkTraceRules(*text).isOk()) << checkTraceRules(*text).toString();
  const Tracks tracks = tracksOf(*text);
  // Lane 0: events 0 and 2; lane 1: event 1 (starts at 5 < 10) then event 3 (13 < 20 on
  // lane 0, 13 < 15 on lane 1): lane 2.
  EXPECT_EQ(tracks.sliceTids, (std::vector<int64_t>{1, 100001, 1, 200001}));
  EXPECT_EQ(tracks.names.at(1), "tensor");
  EXPECT_EQ(tracks.names.at(100001), "tensor (overlap lane 1)");
  EXPECT_EQ(tracks.names.at(200001), "tensor (overlap lane 2)");
}

TEST(TraceRules, ArrowsRunFromTheLastDependencyOnAnotherTrack) {
  // A DMA load, a matmul after it, a vector op after the matmul, and a second matmul after
  // the first (same track: no arrow).
  sim::Timeline t;
  t.events = {event(0, Engine::kDma, 2, 0, 0, 100, 0, 4096, 0),
              event(0, Engine::kTensor, 0, 1, 120, 200, 100, 0, 0),
              event(0, Engine::kVector, 0, 2, 210, 260, 200, 0, 0),
              event(0, Engine::kTensor, 0, 3, 200, 280, 200, 0, 0)};
  t.events[1].after = 0;
  t.events[2].after = 1;
  t.events[3].after = 1;
  t.endNs = 280;
  const arch::ChipConfig chip = testing::testChip();
  auto text = traceJson(singleChipTrace(chip, {}, t));
  ASSERT_TRUE(text) << text.status().toString();
  EXPECT_TRUE(checkTraceRules(*text).isOk()) << checkTraceRules(*text).toString();
  std::vector<std::tuple<std::string, int64_t, double>> flows;  // phase, tid, ts
  const json trace = json::parse(*text);
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "s" || e["ph"] == "f") flows.emplace_back(e["ph"], e["tid"], e["ts"]);
  }
  using F = std::tuple<std::string, int64_t, double>;
  EXPECT_EQ(flows,
            (std::vector<F>{F{"s", 102, 0.05}, F{"f", 1, 0.12}, F{"s", 1, 0.16}, F{"f", 2, 0.21}}));
  TraceOptions none;
  none.dependencyArrows = false;
  EXPECT_EQ(traceJson(singleChipTrace(chip, {}, t), none)->find("\"ph\":\"s\""), std::string::npos);
}

TEST(TraceRules, APipelinedMatmulsTraceKeepsThem) {
  // The demo's kind of program: TensorE loads the next stationary tile under the running
  // matmul, so its instructions overlap in the timing model (63 partial overlaps on one
  // track before lanes).
  auto chip = arch::loadChip("trn2");
  ASSERT_TRUE(chip) << chip.status().toString();
  isa::KernelBuilder b(*chip, "pipelined");
  auto lhsT = b.hbm("lhsT", numerics::DType::kBF16, {512, 256}, isa::TensorKind::kInput);
  auto rhs = b.hbm("rhs", numerics::DType::kBF16, {512, 512}, isa::TensorKind::kInput);
  auto out = b.hbm("out", numerics::DType::kBF16, {256, 512}, isa::TensorKind::kOutput);
  ASSERT_TRUE(kernels::emitMatmul(b, lhsT, rhs, out).isOk());
  auto program = b.finish();
  ASSERT_TRUE(program) << program.status().toString();
  sim::Chip c(*chip);
  ASSERT_TRUE(c.load({*program}).isOk());
  sim::RunOptions opts;
  opts.computeValues = false;
  auto run = c.run(opts);
  ASSERT_TRUE(run) << run.status().toString();
  auto text = traceJson(singleChipTrace(*chip, c.programs(), run->timeline));
  ASSERT_TRUE(text) << text.status().toString();
  EXPECT_TRUE(checkTraceRules(*text).isOk()) << checkTraceRules(*text).toString();
  const Tracks tracks = tracksOf(*text);
  EXPECT_EQ(tracks.names.count(100001), 1u) << "expected TensorE instructions to overlap";
  // Loads feed the matmuls and the matmuls the PSUM evacuation: arrows between tracks.
  EXPECT_NE(text->find("\"ph\":\"f\",\"bp\":\"e\""), std::string::npos);
}

/// A trace with one named track (pid 1, tid 1) and the given events after its metadata.
std::string traceWith(const std::string& events) {
  return R"({"traceEvents":[{"ph":"M","pid":1,"tid":1,"name":"thread_name","args":{"name":"t"}})" +
         (events.empty() ? "" : "," + events) + "]}";
}

std::string slice(double ts, double dur, int64_t tid = 1) {
  return R"({"ph":"X","name":"op","pid":1,"tid":)" + std::to_string(tid) + R"(,"ts":)" +
         json(ts).dump() + R"(,"dur":)" + json(dur).dump() + "}";
}

void expectBroken(const std::string& text, const std::string& fragment) {
  Status s = checkTraceRules(text);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << text;
  EXPECT_NE(s.toString().find(fragment), std::string::npos) << s.toString();
}

TEST(TraceRules, NestedAndTouchingSlicesAreFine) {
  EXPECT_TRUE(
      checkTraceRules(traceWith(slice(0, 10) + "," + slice(2, 3) + "," + slice(10, 1))).isOk());
  // 0.1 + 0.2 as ts + dur is 0.30000000000000004: touching, not overlapping.
  EXPECT_TRUE(checkTraceRules(traceWith(slice(0.1, 0.2) + "," + slice(0.3, 1))).isOk());
}

TEST(TraceRules, EachBrokenRuleIsNamed) {
  expectBroken(traceWith(slice(0, 10) + "," + slice(5, 10)),
               "event 1 'op' [0 us, 10 us] overlaps event 2");
  expectBroken(traceWith(slice(0, 1, 2)), "pid 1 tid 2 has slices but no thread_name");
  expectBroken(traceWith(slice(-1, 1)), "finite ts >= 0");
  expectBroken(traceWith(R"({"ph":"X","name":"op","pid":1,"tid":1,"ts":0})"), "dur >= 0");
  expectBroken(traceWith(slice(0, 1) + R"(,{"ph":"s","id":7,"pid":1,"tid":1,"ts":0.5})"),
               "1 start(s) and 0 end(s)");
  expectBroken(traceWith(slice(0, 1) + "," + slice(5, 1) +
                         R"(,{"ph":"s","id":7,"pid":1,"tid":1,"ts":5.5},)"
                         R"({"ph":"f","bp":"e","id":7,"pid":1,"tid":1,"ts":0.5})"),
               "before it starts");
  expectBroken(traceWith(slice(0, 1) + R"(,{"ph":"s","id":7,"pid":1,"tid":1,"ts":0.5},)"
                                       R"({"ph":"f","bp":"e","id":7,"pid":1,"tid":1,"ts":3})"),
               "lies in no slice");
  expectBroken(traceWith(R"({"ph":"C","name":"HBM","pid":1,"ts":0,"args":{"GB/s":"x"}})"),
               "not a finite number");
  expectBroken("[1]", "no \"ph\"");
  expectBroken("{\"events\":[]}", "no \"traceEvents\"");
  EXPECT_EQ(checkTraceRules("{").code(), ErrorCode::kParse);
}

}  // namespace
}  // namespace trnsim::profile
