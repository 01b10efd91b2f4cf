#include "trnsim/plan/compute_sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "trnsim/kernels/attention.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/norm.h"
#include "trnsim/sim/timing.h"

namespace trnsim::plan {
namespace {

using numerics::DType;

/// Cache key kinds (element 0 of a key).
enum KeyKind : uint64_t { kMatmulBf16 = 0, kMatmulFp8, kAttentionFwd, kAttentionBwd, kRmsNorm };

uint64_t roundUp(uint64_t x, uint64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

/// (query, key) pairs that attention computes; causal with seqKv > seqQ is a load-balanced
/// context-parallel chunk (see attentionSeconds): its own triangle plus half the other keys.
double attentionPairs(double seqQ, double seqKv, bool causal) {
  if (!causal) return seqQ * seqKv;
  if (seqKv < seqQ) seqKv = seqQ;
  return seqQ * (seqKv - seqQ) / 2 + seqQ * (seqQ + 1) / 2;
}

Expected<SimBlockTiming> timeProgram(const arch::ChipConfig& chip, const isa::Program& program) {
  const isa::Program* programs[] = {&program};
  TRNSIM_ASSIGN_OR_RETURN(sim::Timeline tl,
                          sim::simulateTiming(chip, programs, {.recordEvents = false}));
  SimBlockTiming t;
  t.seconds = tl.endNs * 1e-9;
  if (!tl.cores.empty()) {
    const sim::CoreTimingStats& c = tl.cores[0];
    t.tensorBusyS = c.busyNs[int(arch::Engine::kTensor)] * 1e-9;
    t.otherBusyS =
        std::max({c.busyNs[int(arch::Engine::kVector)], c.busyNs[int(arch::Engine::kScalar)],
                  c.busyNs[int(arch::Engine::kGpSimd)]}) *
        1e-9;
    t.hbmBytes = double(c.hbmReadBytes + c.hbmWriteBytes);
    t.instructions = c.instructions;
  }
  return t;
}

}  // namespace

Expected<std::unique_ptr<SimulatedComputeModel>> SimulatedComputeModel::create(
    const arch::SystemConfig& system, SimComputeOptions options) {
  const std::string where = system.sourceFile.empty() ? system.name : system.sourceFile;
  if (system.accel.simChip.empty())
    return Status(ErrorCode::kConfig,
                  fmt::format("system '{}' has no accelerator.sim_chip: the simulated compute "
                              "model needs a trnsim chip (trn1, trn2, trn3 or a chip JSON); use "
                              "the roofline model for other chips",
                              system.name),
                  where);
  auto chip = arch::loadChip(system.accel.simChip);
  if (!chip.hasValue())
    return chip.status().withContext(fmt::format("{}: accelerator.sim_chip", where));
  const uint32_t ranks = system.accel.ranksPerChip;
  if (ranks == 0 || chip->coresPerChip % ranks != 0)
    return Status(ErrorCode::kConfig,
                  fmt::format("accelerator.ranks_per_chip = {} must divide the {} physical "
                              "NeuronCores of chip '{}' (a rank is one logical core)",
                              ranks, chip->coresPerChip, chip->name),
                  where);
  if (options.maxBlockM < 128 || options.maxBlockM % 128 || options.maxBlockN < 512 ||
      options.maxBlockN % 512 || options.maxBlockK < 128 || options.maxBlockK % 128 ||
      options.maxAttentionSeq < 128 || options.maxAttentionSeq % 128 ||
      options.maxAttentionGroupHeads == 0 || options.rmsNormRows == 0 || options.rmsNormHidden == 0)
    return Status(ErrorCode::kInvalidArgument,
                  "SimComputeOptions: block caps must be positive multiples of the hardware "
                  "tiles (M, K, attention seq: 128; N: 512)");

  std::unique_ptr<SimulatedComputeModel> model(new SimulatedComputeModel());
  model->name_ = fmt::format("simulated ({}, {} physical core(s) per rank)", chip->name,
                             chip->coresPerChip / ranks);
  model->chip_ = *chip;
  model->coreChip_ = *chip;
  // Every core of the chip streams at once in a step: each gets its share of the HBM.
  model->coreChip_.mem.hbmGbps = chip->mem.hbmGbps / chip->coresPerChip;
  model->coresPerRank_ = chip->coresPerChip / ranks;
  model->ranksPerChip_ = ranks;
  model->opts_ = options;

  // Memory-bound passes: the simulated rmsnorm over `rows` and `2 rows` gives the streaming
  // rate (the difference of bytes over the difference of time) and the fixed cost of a pass
  // (the first load's DMA latency and the last store), so small passes are not too cheap.
  auto norm1 = model->cached({kRmsNorm, options.rmsNormRows, options.rmsNormHidden, 0, 0, 0});
  if (!norm1.hasValue())
    return norm1.status().withContext("simulated compute model: rmsnorm probe");
  auto norm2 = model->cached({kRmsNorm, 2 * options.rmsNormRows, options.rmsNormHidden, 0, 0, 0});
  if (!norm2.hasValue())
    return norm2.status().withContext("simulated compute model: rmsnorm probe");
  const double dT = norm2->seconds - norm1->seconds, dB = norm2->hbmBytes - norm1->hbmBytes;
  if (!(dT > 0) || !(dB > 0))
    return Status(ErrorCode::kInternal, "simulated compute model: rmsnorm probe did not scale");
  const double coreBytesPerS = dB / dT;
  model->rankGbps_ = coreBytesPerS * 1e-9 * model->coresPerRank_;
  model->memoryFixedS_ = std::max(0.0, norm1->seconds - norm1->hbmBytes / coreBytesPerS);
  return model;
}

Expected<SimBlockTiming> SimulatedComputeModel::cached(const Key& key) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
    auto bad = failed_.find(key);
    if (bad != failed_.end()) return bad->second;
  }
  // Simulate outside the lock so threads asking for different shapes run in parallel; two
  // threads missing on the same key both simulate and get the same (deterministic) answer.
  // Blocks the kernel library cannot build are remembered too (the callers fall back).
  Expected<SimBlockTiming> t = simulate(key);
  simulations_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!t.hasValue()) return failed_.emplace(key, t.status()).first->second;
  return cache_.emplace(key, *t).first->second;
}

Expected<SimBlockTiming> SimulatedComputeModel::simulate(const Key& key) const {
  const arch::ChipConfig& chip = coreChip_;
  switch (key[0]) {
    case kMatmulBf16: {
      TRNSIM_ASSIGN_OR_RETURN(
          isa::Program prog,
          kernels::matmulProgram(chip, int64_t(key[1]), int64_t(key[3]), int64_t(key[2])));
      return timeProgram(chip, prog);
    }
    case kMatmulFp8: {
      // The kernel library has no double_row (fp8) matmul. Simulate the bf16 kernel with fp8
      // operands (half the DMA bytes and SBUF, TensorE at the bf16 rate), then take the TensorE
      // time off the critical path that double_row saves: T = max(T8 - B (1 - 1/s), B / s, the
      // busiest other engine, the HBM bytes at the core's rate), s = pe.fp8Speedup.
      TRNSIM_ASSIGN_OR_RETURN(
          isa::Program prog,
          kernels::matmulProgram(chip, int64_t(key[1]), int64_t(key[3]), int64_t(key[2]),
                                 DType::kFP8E4M3, DType::kBF16));
      TRNSIM_ASSIGN_OR_RETURN(SimBlockTiming t, timeProgram(chip, prog));
      const double s = std::max<uint32_t>(1, chip.pe.fp8Speedup);
      const double dmaGbps = std::min(chip.dma.sustainedGbpsPerCore, chip.mem.hbmGbps);
      const double saved = t.tensorBusyS * (1 - 1 / s);
      t.seconds = std::max(
          {t.seconds - saved, t.tensorBusyS / s, t.otherBusyS, t.hbmBytes / (dmaGbps * 1e9)});
      t.tensorBusyS /= s;
      return t;
    }
    case kAttentionFwd:
    case kAttentionBwd: {
      kernels::AttentionOptions ao;
      ao.causal = key[4] != 0;
      const int64_t heads = int64_t(key[1]), seq = int64_t(key[2]), d = int64_t(key[3]);
      Expected<isa::Program> prog =
          key[0] == kAttentionFwd ? kernels::attentionProgram(chip, heads, 1, seq, d, ao)
                                  : kernels::attentionBackwardProgram(chip, heads, 1, seq, d, ao);
      if (!prog.hasValue()) return prog.status();
      return timeProgram(chip, *prog);
    }
    case kRmsNorm: {
      TRNSIM_ASSIGN_OR_RETURN(isa::Program prog,
                              kernels::rmsNormProgram(chip, int64_t(key[1]), int64_t(key[2])));
      return timeProgram(chip, prog);
    }
    default:
      return Status(ErrorCode::kInternal, fmt::format("compute_sim: bad cache key {}", key[0]));
  }
}

Expected<SimBlockTiming> SimulatedComputeModel::matmulBlock(uint64_t m, uint64_t n, uint64_t k,
                                                            Precision p) const {
  return cached({p == Precision::kFp8 ? kMatmulFp8 : kMatmulBf16, m, n, k, 0, 0});
}

Expected<SimBlockTiming> SimulatedComputeModel::attentionBlock(uint64_t groupHeads, uint64_t seq,
                                                               uint64_t headDim, bool causal,
                                                               bool backward) const {
  return cached(
      {backward ? kAttentionBwd : kAttentionFwd, groupHeads, seq, headDim, causal ? 1u : 0u, 0});
}

double SimulatedComputeModel::fallbackMatmulSeconds(double flopsPerCore, Precision p) const {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  // The efficiency of a mid-size simulated block (cached after the first fallback).
  double eff = 0.5;
  auto probe = matmulBlock(std::min<uint64_t>(1024, opts_.maxBlockM),
                           std::min<uint64_t>(1024, opts_.maxBlockN),
                           std::min<uint64_t>(1024, opts_.maxBlockK), Precision::kBf16);
  if (probe.hasValue() && probe->seconds > 0) {
    const double flops = 2.0 * std::min<uint64_t>(1024, opts_.maxBlockM) *
                         std::min<uint64_t>(1024, opts_.maxBlockN) *
                         std::min<uint64_t>(1024, opts_.maxBlockK);
    eff = flops / (probe->seconds * chip_.peakBf16FlopsPerCore());
  }
  const double peak =
      p == Precision::kFp8 ? chip_.peakFp8FlopsPerCore() : chip_.peakBf16FlopsPerCore();
  return flopsPerCore / (peak * eff);
}

double SimulatedComputeModel::coreMatmulSeconds(uint64_t batch, uint64_t m, uint64_t n, uint64_t k,
                                                Precision p) const {
  // The kernel's tiles: M and K are padded to 128 (a partial stationary or contraction tile
  // takes TensorE the time of a full one). The kernel library also wants N in whole tiles of
  // 512, but a partial moving tile of N' columns takes max(N', mm_min_cycles) cycles, not 512:
  // simulate N padded and scale by the columns TensorE really streams.
  const uint64_t mp = roundUp(m, 128), np = roundUp(n, 512), kp = roundUp(k, 128);
  const uint64_t nRem = n % 512;
  const double nScale =
      nRem == 0 ? 1.0
                : double(n - nRem + std::max<uint64_t>(nRem, chip_.pe.mmMinCycles)) / double(np);
  return nScale * paddedCoreMatmulSeconds(batch, mp, np, kp, p);
}

double SimulatedComputeModel::paddedCoreMatmulSeconds(uint64_t batch, uint64_t mp, uint64_t np,
                                                      uint64_t kp, Precision p) const {
  const uint64_t bm = std::min(mp, opts_.maxBlockM), bn = std::min(np, opts_.maxBlockN),
                 bk = std::min(kp, opts_.maxBlockK);
  const double blocks = double(batch) * (double(mp) / double(bm)) * (double(np) / double(bn)) *
                        (double(kp) / double(bk));
  auto one = matmulBlock(bm, bn, bk, p);
  if (!one.hasValue()) return fallbackMatmulSeconds(2.0 * double(batch) * mp * np * kp, p);
  if (blocks <= 1) return one->seconds;
  // Output blocks and K blocks are independent and pipelined back to back: a fixed cost (the
  // first loads, the DMA latency, the TensorE throttle's ramp, the last store) plus a rate per
  // block. Two blocks along a dimension give that dimension's rate R_d = T2 - T1 (they differ:
  // a longer K reuses the output tiles, more rows reload the moving operand); the rate used is
  // their mean weighted by log(blocks along d), and F = T1 - R. Accuracy against whole-shape
  // simulations: tests/plan/compute_sim_test.cpp and docs/plan_compute.md.
  const double along[3] = {double(batch) * double(mp) / double(bm), double(np) / double(bn),
                           double(kp) / double(bk)};
  double weighted = 0, weights = 0;
  for (int d = 0; d < 3; ++d) {
    if (along[d] <= 1) continue;
    auto two = matmulBlock(d == 0 ? 2 * bm : bm, d == 1 ? 2 * bn : bn, d == 2 ? 2 * bk : bk, p);
    if (!two.hasValue()) continue;
    const double w = std::log(along[d]);
    weighted += w * std::max(two->seconds - one->seconds, 0.0);
    weights += w;
  }
  if (!(weights > 0)) return one->seconds * blocks;
  const double rate = weighted / weights;
  const double fixed = std::max(one->seconds - rate, 0.0);
  return fixed + blocks * rate;
}

double SimulatedComputeModel::matmulSeconds(const MatmulShape& s, Precision p) const {
  if (s.m == 0 || s.n == 0 || s.k == 0 || s.batch == 0) return 0;
  // Split the rank's work over its physical cores: whole matmuls when the batch divides, else
  // rows or columns of C, whichever the simulation says is faster (as a kernel author would).
  const uint64_t c = coresPerRank_;
  if (s.batch % c == 0) return coreMatmulSeconds(s.batch / c, s.m, s.n, s.k, p);
  const double byRows = coreMatmulSeconds(s.batch, (s.m + c - 1) / c, s.n, s.k, p);
  if (c == 1) return byRows;
  return std::min(byRows, coreMatmulSeconds(s.batch, s.m, (s.n + c - 1) / c, s.k, p));
}

double SimulatedComputeModel::attentionSeconds(const AttentionShape& s, bool backward) const {
  if (s.batch == 0 || s.heads == 0 || s.seqQ == 0 || s.headDim == 0) return 0;
  const uint64_t seqKv = std::max<uint64_t>(s.seqKv, 1);
  // GQA: query heads in groups sharing one KV head; anything else is treated as plain MHA.
  uint64_t groupHeads = 1, groups = s.heads;
  if (s.kvHeads > 0 && s.kvHeads <= s.heads && s.heads % s.kvHeads == 0) {
    groupHeads = s.heads / s.kvHeads;
    groups = s.kvHeads;
  }
  // KV groups (times the batch) are split over the rank's physical cores.
  const double groupsPerCore = double(s.batch) * double(groups) / double(coresPerRank_);
  const uint64_t g = std::min(groupHeads, opts_.maxAttentionGroupHeads);
  const uint64_t q = roundUp(s.seqQ, 128);
  const uint64_t seq = std::min(q, opts_.maxAttentionSeq);
  const uint64_t d = std::min<uint64_t>(s.headDim, chip_.pe.rows);
  const double perBlock = groupsPerCore * (double(groupHeads) / double(g)) *
                          (double(s.headDim) / double(d));  // headDim > 128: more passes
  // A causal sequence longer than the block is, in the kernel's own order, q / seq triangles
  // on the diagonal (causal blocks) and full rectangles below them (non-causal blocks).
  // Causal with more keys than queries is a context-parallel chunk, load-balanced as in
  // Megatron (each rank holds two mirrored pieces): its queries see on average half the other
  // keys, q (kv - q) / 2 more pairs of rectangle, the same reading as the roofline model.
  const double qd = double(q), sd = double(seq);
  const double blockPairs = sd * sd, triPairs = sd * (sd + 1) / 2;
  double rectPairs = qd * double(seqKv), triangles = 0;
  if (s.causal) {
    triangles = qd / sd;
    rectPairs = std::max(qd * (qd + 1) / 2 - triangles * triPairs, 0.0) +
                (seqKv > q ? qd * double(seqKv - q) / 2 : 0.0);
  }
  const double rects = rectPairs / blockPairs;
  const Expected<SimBlockTiming> none = SimBlockTiming{};
  auto tri = s.causal ? attentionBlock(g, seq, d, true, backward) : none;
  auto rect = rects > 0 ? attentionBlock(g, seq, d, false, backward) : none;
  const bool ok = tri.hasValue() && rect.hasValue();
  if (ok) {
    // Blocks run back to back in one kernel: each costs its time less the fixed part F (the
    // first loads and the last store), paid once. F from the same block split in halves: a
    // causal block of s is two causal blocks and one rectangle of s / 2 (two extra F), a
    // rectangle four rectangles (three extra F).
    const double blocks = perBlock * (triangles + rects);
    double fixed = 0;
    if (blocks > 1 && seq % 256 == 0) {
      const uint64_t half = seq / 2;
      auto halfRect = attentionBlock(g, half, d, false, backward);
      if (s.causal) {
        auto halfTri = attentionBlock(g, half, d, true, backward);
        if (halfTri.hasValue() && halfRect.hasValue())
          fixed = (2 * halfTri->seconds + halfRect->seconds - tri->seconds) / 2;
      } else if (halfRect.hasValue()) {
        fixed = (4 * halfRect->seconds - rect->seconds) / 3;
      }
      fixed = std::clamp(fixed, 0.0, 0.5 * (s.causal ? tri->seconds : rect->seconds));
    }
    const double simulated =
        fixed + perBlock * (triangles * (tri->seconds - fixed) +
                            (rects > 0 ? rects * (rect->seconds - fixed) : 0.0));
    if (s.seqQ >= 128) return simulated;
    // Fewer than 128 queries (decoding): the kernel pads the query tile to 128 rows, a decode
    // kernel fills them with other heads and sequences instead, so only seqQ / 128 of the
    // tile's compute counts; but all of K and V still stream from HBM once.
    const double kvBytes =
        2.0 * double(s.batch) * double(groups) * double(seqKv) * double(s.headDim) * 2 /* bf16 */;
    return std::max(simulated * double(s.seqQ) / 128.0, memoryBoundSeconds(kvBytes));
  }

  // The chip cannot run the flash-attention kernel (trn1 has no DMA transpose): the score and
  // context matmuls as plain matmuls at the simulated matmul speed, causal pairs only;
  // backward does 2.5x the forward's matmul work.
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  MatmulShape qk{.m = s.seqQ, .n = seqKv, .k = s.headDim, .batch = s.batch * s.heads};
  MatmulShape pv{.m = s.headDim, .n = s.seqQ, .k = seqKv, .batch = s.batch * s.heads};
  const double full = double(s.seqQ) * double(seqKv);
  const double fwd = (matmulSeconds(qk, Precision::kBf16) + matmulSeconds(pv, Precision::kBf16)) *
                     attentionPairs(double(s.seqQ), double(seqKv), s.causal) / full;
  return backward ? 2.5 * fwd : fwd;
}

double SimulatedComputeModel::attentionForwardSeconds(const AttentionShape& s, Precision p) const {
  if (!s.flash) return materializedAttentionSeconds(*this, s, p, false);
  // The flash-attention kernels are bf16; fp8 training keeps attention in bf16 too.
  return attentionSeconds(s, false);
}

double SimulatedComputeModel::attentionBackwardSeconds(const AttentionShape& s, Precision p) const {
  if (!s.flash) return materializedAttentionSeconds(*this, s, p, true);
  return attentionSeconds(s, true);
}

double SimulatedComputeModel::memoryBoundSeconds(double bytes) const {
  if (!(bytes > 0) || !(rankGbps_ > 0)) return 0;
  return memoryFixedS_ + bytes / (rankGbps_ * 1e9);
}

double SimulatedComputeModel::peakFlopsPerChip(Precision p) const {
  const double perCore =
      p == Precision::kFp8 ? chip_.peakFp8FlopsPerCore() : chip_.peakBf16FlopsPerCore();
  return perCore * chip_.coresPerChip;
}

Expected<std::unique_ptr<ComputeModel>> makeSimulatedComputeModel(
    const arch::SystemConfig& system) {
  TRNSIM_ASSIGN_OR_RETURN(std::unique_ptr<SimulatedComputeModel> model,
                          SimulatedComputeModel::create(system));
  return std::unique_ptr<ComputeModel>(std::move(model));
}

}  // namespace trnsim::plan
