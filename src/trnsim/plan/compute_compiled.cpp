// Compiled-layer compute model: layer graphs compiled and run timing-only, cached in memory and
// on disk (docs/plan_compute.md, "Compiled layers").

#include "trnsim/plan/compute_compiled.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "trnsim/compiler/passes.h"
#include "trnsim/plan/compute_sim.h"
#include "trnsim/runtime/session.h"
#include "trnsim/support/hash.h"
#include "trnsim/support/json_load.h"
#include "trnsim/support/random.h"

#ifndef TRNSIM_VERSION
#define TRNSIM_VERSION "dev"
#endif

namespace trnsim::plan {

namespace detail {
std::string_view timingCodeFingerprint();  // generated: cmake/SourceFingerprint.cmake
}  // namespace detail

namespace {

/// Bump when what a cached figure means changes without the timing code changing (the key also
/// holds a fingerprint of that code: src/trnsim/plan/CMakeLists.txt).
constexpr int kCacheFormat = 2;

bool isOff(std::string_view v) {
  return v.empty() || v == "0" || v == "off" || v == "none" || v == "false" || v == "OFF";
}

std::string defaultCacheDir() {
  if (const char* env = std::getenv("TRNSIM_CACHE_DIR")) {
    if (isOff(env)) return "";
    return (std::filesystem::path(env) / "plan-compiled").string();
  }
  const char* home = std::getenv("HOME");
  if (!home || !*home) return "";
  return (std::filesystem::path(home) / ".cache" / "trnsim" / "plan-compiled").string();
}

/// 64-bit FNV-1a, twice with different starting values: a 128-bit hex key.
std::string hashKey(std::string_view text) {
  return fmt::format("{:016x}{:016x}", support::fnv1a64(text),
                     support::fnv1a64(text, support::kGolden));
}

}  // namespace

std::string_view computeModelKindName(ComputeModelKind k) {
  return k == ComputeModelKind::kKernels ? "kernels" : "compiled";
}

Expected<ComputeModelKind> parseComputeModelKind(std::string_view name) {
  if (name == "compiled") return ComputeModelKind::kCompiled;
  if (name == "kernels") return ComputeModelKind::kKernels;
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("unknown compute model '{}'; expected compiled or kernels", name),
                "--compute-model");
}

std::string_view compiledCacheVersion() {
  static const std::string v =
      fmt::format("trnsim {} / compiled-layer cache {} / code {}", TRNSIM_VERSION, kCacheFormat,
                  detail::timingCodeFingerprint().substr(0, 16));
  return v;
}

Expected<std::shared_ptr<CompiledComputeModel>> CompiledComputeModel::create(
    const arch::SystemConfig& system, CompiledComputeOptions options) {
  // The kernel model resolves the chip, checks ranks_per_chip and derives the one-core chip
  // with its HBM share; both models time on the same core.
  TRNSIM_ASSIGN_OR_RETURN(std::unique_ptr<SimulatedComputeModel> sim,
                          SimulatedComputeModel::create(system));
  std::shared_ptr<CompiledComputeModel> m(new CompiledComputeModel());
  m->coreChip_ = sim->coreChip();
  m->coresPerRank_ = std::max<uint32_t>(1, sim->physicalCoresPerRank());
  m->cacheDir_ = options.cacheDir.empty()  ? defaultCacheDir()
                 : isOff(options.cacheDir) ? std::string()
                                           : options.cacheDir;
  const arch::ChipConfig& c = m->coreChip_;
  m->chipFingerprint_ =
      fmt::format("{} {} cores={} pe={}x{}@{} hbm={} dma={} sem={}", c.name, c.sourceFile,
                  c.coresPerChip, c.pe.rows, c.pe.cols, c.pe.clockGhz, c.mem.hbmGbps,
                  c.dma.sustainedGbpsPerCore, c.semaphoreWaitCycles);
  return m;
}

std::string CompiledComputeModel::cacheKeyOf(const std::string& irText) const {
  return hashKey(fmt::format("{}\n{}\n{}", compiledCacheVersion(), chipFingerprint_, irText));
}

Expected<double> CompiledComputeModel::graphSeconds(const std::string& irText) const {
  const std::string key = cacheKeyOf(irText);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      ++memoryHits_;
      return it->second;
    }
  }
  const std::filesystem::path file = cacheDir_.empty()
                                         ? std::filesystem::path()
                                         : std::filesystem::path(cacheDir_) / (key + ".json");
  if (!cacheDir_.empty()) {
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) {
      std::ifstream in(file, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      try {
        Expected<nlohmann::json> parsed = support::parseJsonText(text.str(), file.string());
        if (!parsed) throw std::runtime_error(parsed.status().message());
        const nlohmann::json& j = *parsed;
        if (j.at("key").get<std::string>() != key) throw std::runtime_error("the key differs");
        const double s = j.at("seconds").get<double>();
        if (!(s >= 0)) throw std::runtime_error("seconds is not a time");
        ++diskHits_;
        std::lock_guard<std::mutex> lock(mutex_);
        cache_[key] = s;
        return s;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "trnsim: warning: ignoring the corrupt plan cache file %s (%s)\n",
                     file.string().c_str(), e.what());
      }
    }
  }
  // Simulate outside the lock: threads asking for different graphs run at once; two asking for
  // the same one both run it and get the same (deterministic) answer.
  double seconds = 0;
  try {
    TRNSIM_ASSIGN_OR_RETURN(compiler::Compiled compiled, compiler::compileGraph(irText, coreChip_));
    runtime::Executable exe(std::move(compiled), coreChip_);
    TRNSIM_ASSIGN_OR_RETURN(runtime::RunRecord rec, exe.run(/*timingOnly=*/true));
    seconds = rec.result.simulatedNs * 1e-9;
    instructions_ += rec.result.instructions;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("compiled layer: ") + e.what());
  }
  ++simulations_;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cache_[key] = seconds;
  }
  if (!cacheDir_.empty()) {
    // Write a temporary file and rename it, so a reader never sees half a file.
    std::error_code ec;
    std::filesystem::create_directories(cacheDir_, ec);
    const std::filesystem::path tmp =
        file.string() + fmt::format(".tmp{}.{}", ::getpid(), static_cast<const void*>(&seconds));
    {
      std::ofstream out(tmp, std::ios::binary);
      nlohmann::json j{{"key", key}, {"seconds", seconds}, {"version", compiledCacheVersion()}};
      out << j.dump() << "\n";
    }
    std::filesystem::rename(tmp, file, ec);
    if (ec) std::filesystem::remove(tmp, ec);
  }
  return seconds;
}

Expected<CompiledLayerTimes> CompiledComputeModel::layer(const ModelConfig& m,
                                                         const LayerGraphShape& s) const {
  LayerGraphShape one = s;
  one.batch = 1;
  TRNSIM_ASSIGN_OR_RETURN(LayerGraphs g, buildLayerGraphs(m, one));
  TRNSIM_ASSIGN_OR_RETURN(double fwd, graphSeconds(g.forward));
  TRNSIM_ASSIGN_OR_RETURN(double bwd, graphSeconds(g.backward));
  TRNSIM_ASSIGN_OR_RETURN(double attnFwd, graphSeconds(g.attentionForward));
  TRNSIM_ASSIGN_OR_RETURN(double attnBwd, graphSeconds(g.attentionBackward));
  if (s.cp > 1) {
    // Load-balanced ring attention: beyond its own causal block a rank attends to the other
    // ranks' keys in cp - 1 steps of half a non-causal block each.
    TRNSIM_ASSIGN_OR_RETURN(double ringFwd, graphSeconds(g.ringForward));
    TRNSIM_ASSIGN_OR_RETURN(double ringBwd, graphSeconds(g.ringBackward));
    const double steps = (double(s.cp) - 1) / 2;
    fwd += steps * ringFwd;
    attnFwd += steps * ringFwd;
    bwd += steps * ringBwd;
    attnBwd += steps * ringBwd;
  }
  const double scale = double(s.batch) / coresPerRank_;
  return CompiledLayerTimes{fwd * scale, bwd * scale, attnFwd * scale, attnBwd * scale};
}

Expected<CompiledHeadTimes> CompiledComputeModel::head(const ModelConfig& m,
                                                       const LayerGraphShape& s) const {
  LayerGraphShape one = s;
  one.batch = 1;
  TRNSIM_ASSIGN_OR_RETURN(HeadGraphs g, buildHeadGraphs(m, one));
  TRNSIM_ASSIGN_OR_RETURN(double fwd, graphSeconds(g.forward));
  TRNSIM_ASSIGN_OR_RETURN(double bwd, graphSeconds(g.backward));
  const double scale = double(s.batch) / coresPerRank_;
  return CompiledHeadTimes{fwd * scale, bwd * scale};
}

Expected<double> CompiledComputeModel::optimizerSeconds(double params) const {
  if (!(params > 0)) return 0.0;
  // AdamW is one streaming pass: a fixed part and a rate, from two sizes (the rank's shard is
  // split over its physical cores).
  constexpr uint64_t kSmall = uint64_t{1} << 21, kLarge = uint64_t{1} << 22;
  TRNSIM_ASSIGN_OR_RETURN(double t1, graphSeconds(buildAdamwGraph(kSmall)));
  TRNSIM_ASSIGN_OR_RETURN(double t2, graphSeconds(buildAdamwGraph(kLarge)));
  const double rate = (t2 - t1) / double(kLarge - kSmall);
  const double fixed = std::max(0.0, t1 - rate * double(kSmall));
  return fixed + rate * params / coresPerRank_;
}

}  // namespace trnsim::plan
