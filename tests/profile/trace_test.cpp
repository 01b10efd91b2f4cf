// The Chrome/Perfetto trace of a hand-made timeline: valid JSON, one named track per engine
// and DMA queue used, times in microseconds, args, escaping, HBM counters.

#include "trnsim/profile/trace.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "profile_fixture.h"
#include "trnsim/isa/text.h"
#include "trnsim/profile/json_writer.h"

namespace trnsim::profile {
namespace {

using nlohmann::json;
using namespace testing;

struct Fixture {
  arch::ChipConfig chip = testChip();
  isa::Program program = testProgram();
  sim::Timeline timeline = testTimeline();

  TraceInput input() const {
    TraceInput in = singleChipTrace(chip, std::span<const isa::Program>(&program, 1), timeline);
    return in;
  }
};

json parse(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << text.substr(0, 2000);
  return j;
}

/// pid -> process name, (pid, tid) -> thread name, from the metadata events.
struct Names {
  std::map<int64_t, std::string> processes;
  std::map<std::pair<int64_t, int64_t>, std::string> threads;
};

Names metadataNames(const json& trace) {
  Names names;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] != "M") continue;
    if (e["name"] == "process_name") {
      EXPECT_TRUE(names.processes.emplace(e["pid"].get<int64_t>(), e["args"]["name"]).second)
          << "process named twice: " << e.dump();
    } else if (e["name"] == "thread_name") {
      const auto key = std::make_pair(e["pid"].get<int64_t>(), e["tid"].get<int64_t>());
      EXPECT_TRUE(names.threads.emplace(key, e["args"]["name"]).second)
          << "track named twice: " << e.dump();
    }
  }
  return names;
}

int64_t pidOf(const Names& names, const std::string& process) {
  for (const auto& [pid, name] : names.processes) {
    if (name == process) return pid;
  }
  ADD_FAILURE() << "no process " << process;
  return -1;
}

TEST(Trace, ParsesWithOneNamedTrackPerEngineAndQueueUsed) {
  Fixture f;
  auto text = traceJson(f.input());
  ASSERT_TRUE(text) << text.status().toString();
  const json trace = parse(*text);
  EXPECT_EQ(trace["displayTimeUnit"], "ns");
  ASSERT_TRUE(trace["traceEvents"].is_array());

  const Names names = metadataNames(trace);
  EXPECT_EQ(names.processes.size(), 3u);  // chip HBM, core 0, core 1
  const int64_t core0 = pidOf(names, "testchip core 0");
  const int64_t core1 = pidOf(names, "testchip core 1");
  pidOf(names, "testchip HBM");

  // Every X event sits on a named track, and every named track has an event.
  std::set<std::pair<int64_t, int64_t>> used;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "X") used.emplace(e["pid"].get<int64_t>(), e["tid"].get<int64_t>());
  }
  std::set<std::pair<int64_t, int64_t>> named;
  for (const auto& [key, name] : names.threads) named.insert(key);
  EXPECT_EQ(used, named);

  std::multiset<std::string> core0Tracks, core1Tracks;
  for (const auto& [key, name] : names.threads) {
    (key.first == core0 ? core0Tracks : core1Tracks).insert(name);
    EXPECT_TRUE(key.first == core0 || key.first == core1);
  }
  EXPECT_EQ(core0Tracks,
            (std::multiset<std::string>{"tensor", "scalar", "vector", "dma q3 (engine 0 queue 3)",
                                        "dma q17 (engine 1 queue 1)"}));
  EXPECT_EQ(core1Tracks, (std::multiset<std::string>{"tensor"}));
}

TEST(Trace, CompleteEventsCarryMicrosecondTimesAndArgs) {
  Fixture f;
  auto text = traceJson(f.input());
  ASSERT_TRUE(text) << text.status().toString();
  const json trace = parse(*text);
  std::vector<json> xs;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "X") xs.push_back(e);
  }
  ASSERT_EQ(xs.size(), f.timeline.events.size());
  const char* names[] = {"nc_matmul", "activation",    "dma_copy",
                         "dma_copy",  "tensor_tensor", "instruction 99"};
  const std::string loc = std::string(kOddFile) + ":40";
  for (size_t i = 0; i < xs.size(); ++i) {
    const sim::TimelineEvent& ev = f.timeline.events[i];
    const json& x = xs[i];
    SCOPED_TRACE(x.dump());
    EXPECT_EQ(x["name"], names[i]);
    EXPECT_EQ(x["cat"], std::string(arch::engineName(ev.engine)));
    EXPECT_EQ(x["ts"].get<double>(), ev.startNs / 1000.0);
    EXPECT_EQ(x["dur"].get<double>(), (ev.endNs - ev.startNs) / 1000.0);
    const json& args = x["args"];
    EXPECT_EQ(args["instruction"], ev.instruction);
    EXPECT_EQ(args["wait_ns"].get<double>(), ev.startNs - ev.readyNs);
    if (ev.hbmBytes) {
      EXPECT_EQ(args["hbm_bytes"], ev.hbmBytes);
    } else {
      EXPECT_FALSE(args.contains("hbm_bytes"));
    }
    if (ev.flops != 0) {
      EXPECT_EQ(args["flops"].get<double>(), ev.flops);
    }
    if (i < 5) {
      const isa::Instruction& inst = f.program.instructions[i];
      EXPECT_EQ(args["loc"], loc);
      EXPECT_EQ(args["text"], isa::printInstruction(f.program, inst));
      EXPECT_FALSE(args.contains("dst"));  // operand args are off by default
    } else {
      EXPECT_FALSE(args.contains("text"));
      EXPECT_FALSE(args.contains("loc"));
    }
  }
  // Spot values written out, in case both sides of a comparison went wrong the same way.
  EXPECT_EQ(xs[3]["ts"].get<double>(), 0.4);
  EXPECT_EQ(xs[3]["dur"].get<double>(), 0.8);
  EXPECT_EQ(xs[3]["args"]["wait_ns"].get<double>(), 300.0);
  EXPECT_EQ(xs[3]["args"]["queue"], 17);
  EXPECT_EQ(xs[4]["args"]["wait_ns"].get<double>(), 250.0);
  EXPECT_EQ(xs[0]["args"]["flops"].get<double>(), 16777216.0);
}

TEST(Trace, OperandArgsNameEachSlot) {
  Fixture f;
  TraceOptions opts;
  opts.operandArgs = true;
  opts.instructionText = false;
  auto text = traceJson(f.input(), opts);
  ASSERT_TRUE(text);
  const json trace = parse(*text);
  std::vector<json> xs;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "X") xs.push_back(e);
  }
  ASSERT_EQ(xs.size(), 6u);
  for (size_t i = 0; i < 5; ++i) {
    const isa::Instruction& inst = f.program.instructions[i];
    const json& args = xs[i]["args"];
    EXPECT_FALSE(args.contains("text"));
    for (const isa::Operand& op : inst.operands) {
      const std::string slot(isa::opInfo(inst.opcode).operands[op.slot].name);
      ASSERT_TRUE(args.contains(slot)) << args.dump();
      EXPECT_EQ(args[slot], isa::printAccessPattern(f.program, op.ap));
    }
  }
  for (const char* slot : {"dst", "stationary", "moving"}) {
    EXPECT_TRUE(xs[0]["args"].contains(slot)) << slot;
  }
  EXPECT_TRUE(xs[1]["args"].contains("data"));
  EXPECT_TRUE(xs[4]["args"].contains("data2"));
}

TEST(Trace, HbmCounterIsTheSummedTransferRate) {
  Fixture f;
  auto text = traceJson(f.input());
  ASSERT_TRUE(text);
  const json trace = parse(*text);
  const Names names = metadataNames(trace);
  const int64_t chipPid = pidOf(names, "testchip HBM");
  std::vector<std::pair<double, double>> points;  // (ts us, GB/s)
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "C" && e["pid"] == chipPid) {
      EXPECT_EQ(e["name"], "HBM");
      points.emplace_back(e["ts"].get<double>(), e["args"]["GB/s"].get<double>());
    }
  }
  // q3: 131072 B over 800 ns = 163.84 GB/s; q17: 65536 B over 800 ns = 81.92 GB/s.
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0].first, 0.0);
  EXPECT_NEAR(points[0].second, 163.84, 1e-9);
  EXPECT_EQ(points[1].first, 0.4);
  EXPECT_NEAR(points[1].second, 245.76, 1e-9);
  EXPECT_EQ(points[2].first, 0.8);
  EXPECT_NEAR(points[2].second, 81.92, 1e-9);
  EXPECT_EQ(points[3].first, 1.2);
  EXPECT_EQ(points[3].second, 0.0);

  TraceOptions opts;
  opts.hbmCounters = false;
  auto bare = traceJson(f.input(), opts);
  ASSERT_TRUE(bare);
  const json bareTrace = parse(*bare);
  ASSERT_FALSE(bareTrace["traceEvents"].empty());
  for (const json& e : bareTrace["traceEvents"]) EXPECT_NE(e["ph"], "C");
}

TEST(Trace, EscapesOddNames) {
  Fixture f;
  TraceInput in = f.input();
  const std::string odd = "chip \"q\" \\ \n\t\x01\x1f é \xff end";
  in.chips[0].name = odd;
  auto text = traceJson(in);
  ASSERT_TRUE(text);
  const json trace = parse(*text);
  const Names names = metadataNames(trace);
  // The invalid byte 0xff becomes U+FFFD; everything else survives the round trip.
  const std::string expected = "chip \"q\" \\ \n\t\x01\x1f é \xef\xbf\xbd end core 0";
  pidOf(names, expected);
  EXPECT_EQ(trace["otherData"]["chips"][0], "chip \"q\" \\ \n\t\x01\x1f é \xef\xbf\xbd end");
}

TEST(Trace, JsonStringEscapingRoundTrips) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(char(c));
  all += std::string("\0mid", 4);
  all += "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";  // é € 😀
  detail::JsonBuffer out;
  detail::appendJsonString(out, all);
  EXPECT_EQ(json::parse(out.view()).get<std::string>(), all);

  const std::pair<std::string, std::string> invalid[] = {
      {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                  // overlong NUL
      {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // surrogate
      {"\xf5\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                  // beyond U+10FFFF
      {"a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd"},                // truncated
      {"\x80z", "\xef\xbf\xbdz"},                                // lone continuation
  };
  for (const auto& [in, want] : invalid) {
    detail::JsonBuffer o;
    detail::appendJsonString(o, in);
    EXPECT_EQ(json::parse(o.view()).get<std::string>(), want) << o.view();
  }

  detail::JsonBuffer n;
  detail::appendJsonNumber(n, std::numeric_limits<double>::quiet_NaN());
  n += ',';
  detail::appendJsonNumber(n, 0.1);
  n += ',';
  detail::appendJsonNumber(n, -0.0);
  n += ',';
  detail::appendJsonNumber(n, 1e300);
  n += ',';
  detail::appendJsonNumber(n, uint64_t{18446744073709551615u});
  EXPECT_EQ(n.view(), "null,0.1,0,1e+300,18446744073709551615");
}

TEST(Trace, IsDeterministicAndWritesTheSameBytesToAFile) {
  Fixture f;
  auto a = traceJson(f.input());
  auto b = traceJson(f.input());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);

  const auto path = std::filesystem::temp_directory_path() /
                    ("trnsim_profile_trace_" + std::to_string(::getpid()) + ".json");
  ASSERT_TRUE(writeTrace(path.string(), f.input()).isOk());
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  EXPECT_EQ(content.str(), *a);
  std::filesystem::remove(path);
}

TEST(Trace, BadInputIsAnErrorValue) {
  Fixture f;
  Status io = writeTrace("/nonexistent-dir/trace.json", f.input());
  EXPECT_EQ(io.code(), ErrorCode::kIo);
  EXPECT_NE(io.toString().find("/nonexistent-dir/trace.json"), std::string::npos);

  TraceInput none;
  none.chips.push_back({});
  EXPECT_EQ(traceJson(none).status().code(), ErrorCode::kInvalidArgument);

  sim::Timeline backwards = f.timeline;
  backwards.events[2].endNs = -1;
  TraceInput in = f.input();
  in.chips[0].timeline = &backwards;
  auto r = traceJson(in);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().where().find("event 2"), std::string::npos);

  sim::Timeline nan = f.timeline;
  nan.events[0].startNs = std::numeric_limits<double>::quiet_NaN();
  in.chips[0].timeline = &nan;
  EXPECT_FALSE(traceJson(in));
}

TEST(Trace, SeveralChipsGetTheirOwnProcesses) {
  Fixture f;
  TraceInput in = f.input();
  ChipTrace second = in.chips[0];
  second.name = "peer";
  second.programs.clear();
  second.config = nullptr;
  in.chips.push_back(second);
  auto text = traceJson(in);
  ASSERT_TRUE(text);
  const Names names = metadataNames(parse(*text));
  EXPECT_EQ(names.processes.size(), 6u);
  const int64_t peer = pidOf(names, "peer core 0");
  EXPECT_EQ(names.threads.at({peer, 100 + 17}), "dma q17");  // no config: no engine split
}

TEST(Trace, HundredThousandInstructionsWriteQuickly) {
  Fixture f;
  sim::Timeline big;
  const size_t n = 100000;
  big.events.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t inst = uint32_t(i % f.program.instructions.size());
    const isa::Instruction& ins = f.program.instructions[inst];
    const double start = double(i) * 10;
    big.events.push_back(event(0, ins.engine, ins.queue, inst, start, start + 25, start - 3,
                               ins.engine == arch::Engine::kDma ? 4096 : 0, 0));
  }
  big.endNs = double(n) * 10 + 25;
  TraceInput in = singleChipTrace(f.chip, std::span<const isa::Program>(&f.program, 1), big);
  const auto t0 = std::chrono::steady_clock::now();
  auto text = traceJson(in);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(text);
  std::printf("[ info ] 100k-event trace: %.1f MB in %.3f s\n", double(text->size()) / 1e6,
              seconds);
  // Each event is one line; parse a sample of them (a DOM of all 100k is slow in Debug, and
  // the small traces above check the whole document).
  size_t xs = 0, sampled = 0;
  std::istringstream lines(*text);
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    if (line.find("\"ph\":\"X\"") != std::string::npos) ++xs;
    if (i % 997 != 1 || line.size() < 2 || line[0] != '{') continue;
    if (line.back() == ',') line.pop_back();
    EXPECT_TRUE(json::accept(line)) << line;
    ++sampled;
  }
  EXPECT_GT(sampled, 90u);
  EXPECT_EQ(xs, n);
  // A guard against pathologies only: Debug and sanitizer builds are several times slower
  // than the release build measured in docs/profile.md.
  EXPECT_LT(seconds, 20.0);
}

}  // namespace
}  // namespace trnsim::profile
