// emitMatmulAB: matmuls on operands in the layouts PyTorch has (docs/kernels.md).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <vector>

#include "trnsim/kernels/kernel_util.h"
#include "trnsim/kernels/matmul.h"
#include "trnsim/kernels/matmul_block.h"

namespace trnsim::kernels {

using namespace detail;
using isa::Slice;

namespace {

using Transpose = MatmulTiling::Transpose;

/// How an operand gets K onto the partitions of its [P, bk, W] SBUF buffers.
enum class Load : uint8_t {
  kDma,           ///< already [K, W] in HBM (B, A with transposeA): a plain DMA per K tile
  kDmaTranspose,  ///< [W, K] in HBM: one dma_transpose per K tile
  kPeTranspose,   ///< [W, K] in HBM: 128-row tiles staged in SBUF, nc_transpose'd via PSUM
};

/// A row-major HBM tensor seen as [batches, rows, cols] (batch g from element g*rows*cols).
struct Matrix {
  isa::Tensor t;
  int64_t rows = 0, cols = 0;
  isa::AccessPattern block(int64_t g, int64_t r0, int64_t nr, int64_t c0, int64_t nc) const {
    return t.pattern({{cols, nr}, {1, nc}}, (g * rows + r0) * cols + c0);
  }
};

struct AbProblem {
  /// After folding the batch into M when b is shared (unless a is transposed: A^T's batches
  /// are not rows of one matrix; then G > 1 with a shared B).
  int64_t G = 1, M = 0, K = 0, N = 0;
  bool bBatched = false;  ///< b has the batch dims (one B per batch)
  Load loadA = Load::kPeTranspose, loadB = Load::kDma;
  DType inA = DType::kBF16, inB = DType::kBF16, out = DType::kBF16;
  /// Bytes per element of the per-column output scale (0: none).
  uint32_t scaleBytes = 0;
  DType in(int op) const { return op == 0 ? inA : inB; }
  uint64_t inBytes(int op) const { return numerics::dtypeSize(in(op)); }
  bool fp32() const { return inA == DType::kFP32 || inB == DType::kFP32; }
};

/// Output row tiles in flight: a store takes ~1.3 us + its data, several tiles' matmuls when
/// the rows are wide.
int64_t outRowsFor(const Blocks& k) { return k.bn == 1 ? 6 : k.bn == 2 ? 4 : 3; }

struct AbGeometry {
  int64_t P, TM, TN;
  int64_t mTiles, nTiles, kTiles;
};

AbGeometry geometry(const arch::ChipConfig& chip, const AbProblem& s) {
  const int64_t P = chip.pe.rows, TM = chip.pe.cols, TN = chip.pe.maxMovingFree;
  return {P, TM, TN, ceilDiv(s.M, TM), ceilDiv(s.N, TN), ceilDiv(s.K, P)};
}

/// SBUF staging tiles of a TensorE-transposed operand (0: A, 1: B): its units' DMAs are issued
/// this many units ahead of their transposes, enough to cover the DMA latency when several
/// units fall on one output tile (B^T with few M tiles per block).
int64_t stagesFor(int op, const AbGeometry& g, const Blocks& k) {
  const int64_t unitsPerTile = op == 0 ? 1 : ceilDiv(g.TN / g.P, k.bm);
  return std::clamp<int64_t>(2 * unitsPerTile + 2, 3, 10);
}

uint64_t abSbufBytes(const AbProblem& s, const AbGeometry& g, const Blocks& k) {
  const uint64_t out = numerics::dtypeSize(s.out);
  const uint64_t lhsW = uint64_t(std::min(k.bm * g.TM, s.M));
  const uint64_t rhsW = uint64_t(std::min(k.bn * g.TN, s.N));
  const uint64_t bkCols = uint64_t(std::min(k.bk * g.P, s.K));
  // A^T and B blocks, double-buffered
  uint64_t bytes = 2 * uint64_t(k.bk) * (lhsW * s.inBytes(0) + rhsW * s.inBytes(1));
  for (int op = 0; op < 2; ++op)
    if ((op == 0 ? s.loadA : s.loadB) == Load::kPeTranspose)
      bytes += uint64_t(stagesFor(op, g, k)) * bkCols * s.inBytes(op);  // staged rows
  bytes += uint64_t(outRowsFor(k)) * rhsW * out;                        // output rows
  bytes += (3 * rhsW + uint64_t(g.TM)) * s.scaleBytes;  // column scales, their row, ones
  if (ceilDiv(g.kTiles, k.bk) > 1) bytes += uint64_t(k.bm) * rhsW * 4;  // fp32 partial sums
  return bytes + uint64_t(64 * 32);                                     // alignment slack
}

/// Rate factor of DMA runs of `runBytes` contiguous bytes (the timing model's descriptor cost).
double dmaRunEfficiency(const arch::ChipConfig& chip, double runBytes) {
  const double minEff = chip.dma.minEfficientBytes;
  if (minEff <= 0 || runBytes >= minEff) return 1;
  const double overhead = minEff / 8;
  return (runBytes / (runBytes + overhead)) / (minEff / (minEff + overhead));
}

/// Estimated time of a blocking: the busiest of TensorE (matmuls and transposes, after the
/// pipeline fill: the first block's loads), the DMA queues and VectorE + ScalarE (PSUM copies
/// and K-block folds), the last two derated because they overlap well only below saturation;
/// plus the drain (the last tile's copy and store) and a share of the copies, which sit on
/// the dependency chain of every tile.
double abCostNs(const arch::ChipConfig& chip, const AbProblem& s, const AbGeometry& g,
                const Blocks& k) {
  const int64_t mBlocks = ceilDiv(g.mTiles, k.bm), nBlocks = ceilDiv(g.nTiles, k.bn);
  const int64_t kBlocks = ceilDiv(g.kTiles, k.bk);
  const int64_t BM = std::min(k.bm * g.TM, s.M), BN = std::min(k.bn * g.TN, s.N);
  const int64_t BK = std::min(k.bk * g.P, s.K);
  const auto inA = uint32_t(s.inBytes(0)), inB = uint32_t(s.inBytes(1));
  const auto out = uint32_t(numerics::dtypeSize(s.out));
  const double passes = s.fp32() ? chip.pe.fp32Slowdown : 1.0;
  const auto lastCols = double(s.N - (g.nTiles - 1) * g.TN);
  const auto tiles = double(s.G * g.mTiles * g.nTiles);
  const double mmCycles =
      double(s.G * g.mTiles * g.kTiles) * passes *
      (double(g.nTiles - 1) * std::max<double>(double(g.TN), chip.pe.mmMinCycles) +
       std::max<double>(lastCols, chip.pe.mmMinCycles));
  // A^T again per N block when K is blocked; B again per M block unless one block covers it.
  const double aTimes = kBlocks == 1 ? 1 : double(nBlocks);
  const double bTimes = kBlocks == 1 && nBlocks == 1 ? 1 : double(mBlocks);
  // A shared B with a batched A^T: B again per batch too unless one block covers it.
  const bool bPerBatch = s.bBatched || !(kBlocks == 1 && nBlocks == 1);
  const double gB = bPerBatch ? double(s.G) : 1.0;
  const double aTransposes = double(s.G * g.mTiles * g.kTiles) * aTimes;
  const double bTransposes = gB * double(ceilDiv(s.N, g.P) * g.kTiles) * bTimes;
  double trCycles = 0, trCopiesVecNs = 0, trCopiesActNs = 0;
  for (int op = 0; op < 2; ++op) {
    if ((op == 0 ? s.loadA : s.loadB) != Load::kPeTranspose) continue;
    const double n = op == 0 ? aTransposes : bTransposes;
    const auto in = uint32_t(s.inBytes(op));
    const double groupMax =
        std::max<double>(1, double(chip.mem.psumBankBytesPerPartition) / in / double(g.TM));
    const double copies = std::ceil(n / groupMax);
    trCycles += n * double(g.P);
    trCopiesVecNs += copies * streamNs(chip.vector, groupMax * double(g.TM), in);
    trCopiesActNs += copies * streamNs(chip.scalar, groupMax * double(g.TM), in);
  }
  const double peNs = (mmCycles + trCycles) / chip.pe.clockGhz;

  const double rate = std::min(chip.dma.sustainedGbpsPerCore, chip.dma.peakGbpsPerCore());
  auto loadRate = [&](Load l, double runBytes) {
    if (l == Load::kDmaTranspose) return rate * chip.dma.transposeEfficiency;
    return rate * dmaRunEfficiency(chip, runBytes);
  };
  const double aRate = loadRate(s.loadA, double((s.loadA == Load::kDma ? BM : BK) * inA));
  const double bRate = loadRate(s.loadB, double((s.loadB == Load::kDma ? BN : BK) * inB));
  const double oRate = loadRate(Load::kDma, double(BN * out));
  const double aBytes = double(s.G * s.M * s.K * inA) * aTimes;
  const double bBytes = gB * double(s.K * s.N * inB) * bTimes;
  const double dmaNs = aBytes / aRate + bBytes / bRate + double(s.G * s.M * s.N * out) / oRate;

  // VectorE alone folds PSUM into the fp32 partial sums; every other PSUM copy goes to
  // whichever of ScalarE and VectorE is less busy (EngineBalance), which at best evens them.
  const double evacVec = streamNs(chip.vector, double(g.TN), 4);
  const double evacAct = streamNs(chip.scalar, double(g.TN), 4);
  // A column scale makes every tile's last PSUM read a VectorE multiply.
  const double foldNs = tiles * (double(kBlocks - 1) + (s.scaleBytes ? 1.0 : 0.0)) * evacVec;
  const double copiesVecNs = (s.scaleBytes ? 0.0 : tiles * evacVec) + trCopiesVecNs;
  const double copiesActNs = (s.scaleBytes ? 0.0 : tiles * evacAct) + trCopiesActNs;
  const double shared = copiesActNs > 0 ? (foldNs + copiesVecNs) / (1 + copiesVecNs / copiesActNs)
                                        : foldNs + copiesVecNs;
  const double copyNs = std::max(foldNs, shared);

  // Fill: the first output tile waits for its K block of A^T rows and B columns, which share
  // the DMA bandwidth with everything else loading at the start: both buffer halves of the
  // direct loads, all staged units of the transposed ones.
  auto startBytes = [&](Load l, int op, int64_t width) {
    const double in = double(s.inBytes(op));
    if (l == Load::kPeTranspose) return double(stagesFor(op, g, k) * BK * g.P) * in;
    const int64_t epochs = (op == 0 ? mBlocks * (kBlocks == 1 ? 1 : nBlocks) : nBlocks) * kBlocks;
    return double(std::min<int64_t>(2, epochs * s.G) * BK * width) * in;
  };
  const double fill = chip.dma.fixedLatencyNs + startBytes(s.loadA, 0, BM) / aRate +
                      startBytes(s.loadB, 1, BN) / bRate +
                      (s.loadA == Load::kPeTranspose ? double(k.bk * g.P) / chip.pe.clockGhz : 0);
  const double drain = chip.dma.fixedLatencyNs + evacAct + double(g.TM * BN * out) / oRate;
  return std::max({peNs + fill, dmaNs / 0.85 + chip.dma.fixedLatencyNs, copyNs / 0.7}) + drain +
         0.2 * copyNs;
}

/// The distinct values ceil(tiles / d), d = 1, 2, ..., that are <= cap (or just `fixed`).
std::vector<int> blockCandidates(int64_t tiles, int64_t cap, int fixed) {
  if (fixed > 0) return {int(std::min<int64_t>(fixed, tiles))};
  std::vector<int> out;
  for (int64_t d = 1; d <= tiles; ++d) {
    const int64_t v = ceilDiv(tiles, d);
    if (v <= cap && (out.empty() || out.back() != v)) out.push_back(int(v));
  }
  return out;
}

/// Emits the blocked product of one emitMatmulAB call.
class AbEmitter {
 public:
  AbEmitter(isa::KernelBuilder& b, const AbProblem& s, const Matrix& a, const Matrix& bm,
            const Matrix& out, const isa::Tensor& scale)
      : b_(b), s_(s), g_(geometry(b.chip(), s)), src_{a, bm}, out_(out), scale_(scale) {
    balance_.chip = &b.chip();
  }

  Status run(const MatmulTiling& tiling) {
    TRNSIM_RETURN_IF_ERROR(chooseBlocks(tiling));
    const Status allocated = allocate();
    if (allocated.isOk()) {
      plan();
      emit();
    }
    releaseAll();
    return allocated.isOk() ? b_.status() : allocated;
  }

 private:
  struct Epoch {  ///< one content of an operand's buffer: (batch, M or N block, K block)
    int64_t g, blk, kb, firstBlock, firstTile;
  };
  struct Unit {  ///< 128 source rows of a TensorE-transposed operand for one epoch
    int op;
    int64_t epoch, idx, target;
  };
  struct BlockRef {
    int64_t g, mb, nb, kb, firstTile;
    std::array<int64_t, 2> epoch;
  };

  Status chooseBlocks(const MatmulTiling& t) {
    const uint64_t capacity = b_.sbufFreeBytes();
    double best = std::numeric_limits<double>::infinity();
    for (int bm : blockCandidates(g_.mTiles, 16, t.tilesInBlockM))
      for (int bn : blockCandidates(g_.nTiles, 4, t.tilesInBlockN))
        for (int bk : blockCandidates(g_.kTiles, 128, t.tilesInBlockK)) {
          const Blocks k{bm, bn, bk};
          if (abSbufBytes(s_, g_, k) > capacity) continue;
          const double cost = abCostNs(b_.chip(), s_, g_, k);
          if (cost < best) {
            best = cost;
            blk_ = k;
          }
        }
    if (best == std::numeric_limits<double>::infinity())
      return Status(ErrorCode::kCapacity,
                    fmt::format("matmul: no blocking of M={}, K={}, N={} fits the {} free bytes "
                                "per SBUF partition (one tile of each buffer needs {})",
                                s_.M, s_.K, s_.N, capacity, abSbufBytes(s_, g_, {1, 1, 1})));
    BM_ = blk_.bm * g_.TM;
    BN_ = blk_.bn * g_.TN;
    BK_ = blk_.bk * g_.P;
    mBlocks_ = ceilDiv(s_.M, BM_);
    nBlocks_ = ceilDiv(s_.N, BN_);
    kBlocks_ = ceilDiv(s_.K, BK_);
    return Status::ok();
  }

  Load load(int op) const { return op == 0 ? s_.loadA : s_.loadB; }
  bool perColumn() const { return scale_.valid() && scale_.decl().numElements() > 1; }
  int64_t extentOf(int op) const { return op == 0 ? s_.M : s_.N; }  // rows of A / columns of B
  int64_t blockOf(int op) const { return op == 0 ? BM_ : BN_; }

  Status allocate() {
    const int64_t P = g_.P;
    const int64_t lhsW = std::min(BM_, s_.M), rhsW = std::min(BN_, s_.N);
    const int64_t bk = std::min(BK_, s_.K);  // columns of a staged tile
    for (int i = 0; i < 2; ++i) {
      buf_[0][i] = detail::sbufTile(b_, fmt::format("mmab_aT_{}", i), s_.inA, {P, blk_.bk, lhsW});
      buf_[1][i] = detail::sbufTile(b_, fmt::format("mmab_b_{}", i), s_.inB, {P, blk_.bk, rhsW});
      if (scale_.valid())
        scaleBuf_[i] = detail::sbufTile(b_, fmt::format("mmab_scale_{}", i), scale_.dtype(),
                                        {g_.TM, perColumn() ? rhsW : 1});
    }
    if (perColumn()) {
      scaleRow_ = detail::sbufTile(b_, "mmab_scale_row", scale_.dtype(), {1, rhsW});
      ones_ = detail::sbufTile(b_, "mmab_ones", scale_.dtype(), {1, g_.TM});
      TRNSIM_RETURN_IF_ERROR(b_.status());
      (void)b_.memset(ones_.ap(), 1.0f);
    }
    for (int64_t i = 0; i < outRowsFor(blk_); ++i)
      rows_.rows.push_back(
          detail::sbufTile(b_, fmt::format("mmab_out_{}", i), s_.out, {g_.TM, rhsW}));
    if (kBlocks_ > 1)
      rows_.acc = detail::sbufTile(b_, "mmab_acc", DType::kFP32, {g_.TM, blk_.bm, rhsW});
    for (int op = 0; op < 2; ++op)
      if (load(op) == Load::kPeTranspose)
        for (int64_t i = 0; i < stagesFor(op, g_, blk_); ++i)
          stage_[op].push_back(detail::sbufTile(
              b_, fmt::format("mmab_stage_{}_{}", op ? "b" : "a", i), s_.in(op), {P, bk}));
    const uint64_t bank = b_.chip().mem.psumBankBytesPerPartition;
    const bool transposes = s_.loadA == Load::kPeTranspose || s_.loadB == Load::kPeTranspose;
    // Every PSUM bank when all are free; else as many as surely fit (a free block of two banks
    // holds an aligned one), at least two.
    const bool allFree = b_.psumFreeBytes() >= b_.chip().psumBytesPerPartition();
    for (uint32_t i = 0; i < b_.chip().mem.psumBanks && (allFree || b_.psumFreeBytes() >= 2 * bank);
         ++i) {
      ps_.tiles.push_back(
          detail::psumTile(b_, fmt::format("mmab_ps_{}", i), DType::kFP32, {g_.TM, g_.TN}));
      if (!transposes) continue;
      // Transposes pass the input dtype through PSUM (is_transpose semantics): a bank holds
      // bank / (128 x element size) transposed 128-column tiles.
      for (int op = 0; op < 2; ++op) {
        const DType in = s_.in(op);
        if (load(op) != Load::kPeTranspose) continue;
        psT_[op].push_back(
            in == DType::kFP32
                ? ps_.tiles.back()
                : b_.view(ps_.tiles.back(),
                          detail::uniqueName(b_, fmt::format("mmab_psT_{}_{}", op, i)), in,
                          {g_.TM, int64_t(bank / numerics::dtypeSize(in))}));
      }
    }
    TRNSIM_RETURN_IF_ERROR(b_.status());
    if (ps_.tiles.size() < 2)
      return Status(ErrorCode::kCapacity,
                    fmt::format("matmul: needs 2 free PSUM banks ({} bytes per partition each); "
                                "release PSUM tiles before the call",
                                bank));
    for (int op = 0; op < 2; ++op)
      groupMax_[op] = std::max<int64_t>(1, int64_t(bank / s_.inBytes(op)) / g_.TM);
    return Status::ok();
  }

  /// Lists the blocks (batch, M block, N block, K block in that nesting), the epochs of each
  /// operand's buffer (a new one whenever a block needs other data), and where each transposed
  /// 128-row unit is emitted: spread over the output tiles of the previous epoch (whose
  /// buffer half it does not touch), or just before its first use for an operand's first epoch.
  void plan() {
    int64_t tile = 0;
    for (int64_t g = 0; g < s_.G; ++g)
      for (int64_t mb = 0; mb < mBlocks_; ++mb)
        for (int64_t nb = 0; nb < nBlocks_; ++nb)
          for (int64_t kb = 0; kb < kBlocks_; ++kb) {
            BlockRef r{g, mb, nb, kb, tile, {0, 0}};
            const std::array<std::array<int64_t, 3>, 2> keys{
                {{g, mb, kb}, {s_.bBatched ? g : 0, nb, kb}}};
            for (int op = 0; op < 2; ++op) {
              auto& eps = epochs_[op];
              if (eps.empty() || eps.back().g != keys[op][0] || eps.back().blk != keys[op][1] ||
                  eps.back().kb != keys[op][2])
                eps.push_back({keys[op][0], keys[op][1], kb, int64_t(blocks_.size()), tile});
              r.epoch[op] = int64_t(eps.size()) - 1;
            }
            blocks_.push_back(r);
            tile += ceilDiv(sizeOf(0, mb), g_.TM) * ceilDiv(sizeOf(1, nb), g_.TN);
          }
    for (int op = 0; op < 2; ++op) {
      if (load(op) != Load::kPeTranspose) continue;
      const auto& eps = epochs_[op];
      for (int64_t e = 0; e < int64_t(eps.size()); ++e) {
        const Epoch& ep = eps[size_t(e)];
        const int64_t release = e >= 2 ? eps[size_t(e - 1)].firstTile : 0;
        const int64_t count = ceilDiv(sizeOf(op, ep.blk), g_.P);
        const int64_t tilesPerRow = ceilDiv(sizeOf(1, blocks_[size_t(ep.firstBlock)].nb), g_.TN);
        for (int64_t i = 0; i < count; ++i) {
          // First use: A rows i*128.. feed output tile row i; B^T columns i*128.. tile column
          // i*128/TN of the first output tile row.
          const int64_t deadline = ep.firstTile + (op == 0 ? i * tilesPerRow : (i * g_.P) / g_.TN);
          const int64_t target = release < ep.firstTile
                                     ? release + (ep.firstTile - release) * (i + 1) / (count + 1)
                                     : deadline;
          units_.push_back({op, e, i, std::min(target, deadline)});
        }
      }
    }
    std::stable_sort(units_.begin(), units_.end(),
                     [](const Unit& x, const Unit& y) { return x.target < y.target; });
  }

  /// Valid size of block blk of operand op along M (op 0) or N (op 1).
  int64_t sizeOf(int op, int64_t blk) const {
    return std::min(blockOf(op), extentOf(op) - blk * blockOf(op));
  }
  int64_t kSizeOf(int64_t kb) const { return std::min(BK_, s_.K - kb * BK_); }

  /// The loads of an epoch that are not TensorE transposes (emitted at its first block).
  void emitDirectLoad(int op, int64_t e) {
    const Epoch& ep = epochs_[op][size_t(e)];
    const isa::Tensor& dst = buf_[op][size_t(e % 2)];
    const int64_t r0 = ep.blk * blockOf(op), width = sizeOf(op, ep.blk);
    const int64_t k0 = ep.kb * BK_, kSize = kSizeOf(ep.kb);
    for (int64_t kt = 0; kt * g_.P < kSize; ++kt) {
      const int64_t kr = std::min(g_.P, kSize - kt * g_.P);
      const auto d = dst({Slice::range(0, kr), Slice::at(kt), Slice::range(0, width)});
      if (load(op) == Load::kDma)
        (void)b_.dmaCopy(d, src_[op].block(ep.g, k0 + kt * g_.P, kr, r0, width),
                         {.queue = queue(op, kt)});
      else
        (void)b_.dmaTranspose(d, src_[op].block(ep.g, r0, width, k0 + kt * g_.P, kr),
                              queue(op, kt));
    }
  }

  /// One unit: 128 (or fewer) rows of A (B) for one K block are staged in SBUF, transposed on
  /// TensorE into PSUM, groupMax_ K tiles per bank, and copied into the epoch's buffer half.
  void emitUnit(const Unit& u) {
    const Epoch& ep = epochs_[u.op][size_t(u.epoch)];
    const int64_t P = g_.P;
    const int64_t r0 = ep.blk * blockOf(u.op) + u.idx * P;
    const int64_t rows = std::min(P, ep.blk * blockOf(u.op) + sizeOf(u.op, ep.blk) - r0);
    const int64_t k0 = ep.kb * BK_, kSize = kSizeOf(ep.kb);
    const auto& stages = stage_[size_t(u.op)];
    const size_t slot = size_t(staged_[size_t(u.op)]++) % stages.size();
    const isa::Tensor& stage = stages[slot];
    const isa::Tensor& dst = buf_[u.op][size_t(u.epoch % 2)];
    (void)b_.dmaCopy(stage({Slice::range(0, rows), Slice::range(0, kSize)}),
                     src_[u.op].block(ep.g, r0, rows, k0, kSize),
                     {.queue = queue(u.op, int64_t(slot))});
    const int64_t kTiles = ceilDiv(kSize, P);
    for (int64_t kt = 0; kt < kTiles;) {
      const int64_t kr = std::min(P, kSize - kt * P);
      int64_t n = 1;  // K tiles in this bank: same row count, at most groupMax_
      while (kt + n < kTiles && n < groupMax_[u.op] && std::min(P, kSize - (kt + n) * P) == kr) ++n;
      const isa::Tensor& pt = psT_[u.op][ps_.take()];
      for (int64_t j = 0; j < n; ++j) {
        const int64_t c0 = (kt + j) * P;
        (void)b_.ncTranspose(pt({Slice::range(0, kr), Slice::range(j * rows, (j + 1) * rows)}),
                             stage({Slice::range(0, rows), Slice::range(c0, c0 + kr)}));
      }
      (void)b_.tensorCopy(dst({Slice::range(0, kr), Slice::range(kt, kt + n),
                               Slice::range(u.idx * P, u.idx * P + rows)}),
                          pt({Slice::range(0, kr), Slice::range(0, n * rows)}),
                          balance_.pick(double(n * rows), uint32_t(s_.inBytes(u.op))));
      kt += n;
    }
  }

  /// The scales of N block nb on the TM partitions of `dst`. One per column: the block's row is
  /// loaded once (a DMA to 128 partitions from a stride-0 source would read it from HBM 128
  /// times) and broadcast by TensorE, ones[1, TM]^T @ row[1, cols] into PSUM (exact: products
  /// with 1), then copied. One for all: one element per partition.
  void loadScales(const isa::Tensor& dst, int64_t nb) {
    if (!perColumn()) {
      (void)b_.dmaCopy(dst({Slice::range(0, g_.TM), Slice::range(0, 1)}),
                       scale_.pattern({{0, g_.TM}, {1, 1}}), {.queue = queue(1, 0)});
      return;
    }
    const int64_t width = sizeOf(1, nb);
    (void)b_.dmaCopy(scaleRow_({Slice::range(0, 1), Slice::range(0, width)}),
                     scale_.pattern({{0, 1}, {1, width}}, nb * BN_), {.queue = queue(1, 0)});
    for (int64_t c0 = 0; c0 < width; c0 += g_.TN) {
      const int64_t cols = std::min(g_.TN, width - c0);
      const isa::Tensor& pt = ps_.tiles[ps_.take()];
      const auto psAp = pt({Slice::range(0, g_.TM), Slice::range(0, cols)});
      (void)b_.ncMatmul(psAp, ones_.ap(),
                        scaleRow_({Slice::range(0, 1), Slice::range(c0, c0 + cols)}));
      (void)b_.tensorCopy(dst({Slice::range(0, g_.TM), Slice::range(c0, c0 + cols)}), psAp,
                          balance_.pick(double(cols), 4));
    }
  }

  /// DMA queues (FIFO each): A loads, B loads and stores have their own group of 16, so a
  /// store never waits behind a prefetch that waits for a buffer; a load goes to the queue of
  /// its K tile (or staging slot), so the next epoch's load starts when this epoch's is done
  /// instead of sharing the bandwidth with it. Round-robin over the first 16 queues where the
  /// chip has fewer than 64.
  int queue(int stream, int64_t index) const {
    const uint32_t perEngine = b_.chip().dma.queuesPerEngine;
    const uint64_t total = uint64_t(b_.chip().dma.enginesPerCore) * perEngine;
    if (perEngine == 0 || total < 4 * uint64_t(perEngine)) return -1;
    return int(perEngine * uint32_t(stream + 1) + uint32_t(index % int64_t(perEngine)));
  }

  void emitUnitsUpTo(int64_t tile) {
    while (nextUnit_ < units_.size() && units_[nextUnit_].target <= tile)
      emitUnit(units_[nextUnit_++]);
  }

  void emit() {
    int64_t tile = 0;
    emitUnitsUpTo(0);
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const BlockRef& r = blocks_[i];
      for (int op = 0; op < 2; ++op) {
        const int64_t e = r.epoch[size_t(op)];
        if (load(op) != Load::kPeTranspose && epochs_[op][size_t(e)].firstBlock == int64_t(i))
          emitDirectLoad(op, e);
      }
      const isa::Tensor* scale = nullptr;
      if (scale_.valid()) {
        // The block's column scales on every output partition, when the N block changes (two
        // buffers, so the next block's load does not wait for this one's tiles).
        scale = &scaleBuf_[size_t(r.nb % 2)];
        if (scaleBlock_ != r.nb) {
          scaleBlock_ = r.nb;
          loadScales(*scale, r.nb);
        }
      }
      BlockProduct job{&buf_[0][size_t(r.epoch[0] % 2)],
                       &buf_[1][size_t(r.epoch[1] % 2)],
                       sizeOf(0, r.mb),
                       sizeOf(1, r.nb),
                       kSizeOf(r.kb),
                       r.kb,
                       kBlocks_,
                       &balance_,
                       scale};
      emitBlockProduct(
          b_, ps_, rows_, job,
          [&](int64_t m0, const isa::AccessPattern& o) {
            (void)b_.dmaCopy(
                out_.block(r.g, r.mb * BM_ + m0, o.partitions, r.nb * BN_, sizeOf(1, r.nb)), o,
                {.queue = queue(2, stored_++)});
          },
          [&] { emitUnitsUpTo(++tile); });
    }
    emitUnitsUpTo(std::numeric_limits<int64_t>::max());  // none left in a consistent plan
  }

  void releaseAll() {
    for (auto& t : ps_.tiles) b_.release(t);
    for (int op = 0; op < 2; ++op) {
      for (auto& t : buf_[op]) b_.release(t);
      for (auto& t : stage_[op]) b_.release(t);
    }
    for (auto& t : rows_.rows) b_.release(t);
    if (rows_.acc.valid()) b_.release(rows_.acc);
    for (auto* t : {&scaleBuf_[0], &scaleBuf_[1], &scaleRow_, &ones_})
      if (t->valid()) b_.release(*t);
  }

  isa::KernelBuilder& b_;
  AbProblem s_;
  AbGeometry g_;
  std::array<Matrix, 2> src_;  ///< A [M, K], B [K, N] or [N, K]
  Matrix out_;
  Blocks blk_{1, 1, 1};
  int64_t BM_ = 0, BN_ = 0, BK_ = 0, mBlocks_ = 0, nBlocks_ = 0, kBlocks_ = 0;
  std::array<std::array<isa::Tensor, 2>, 2> buf_;  ///< [op][half]: A^T [P, bk, BM], B [P, bk, BN]
  std::array<std::vector<isa::Tensor>, 2> stage_;
  std::array<int64_t, 2> staged_{0, 0};
  int64_t stored_ = 0;
  EngineBalance balance_;
  OutputRows rows_;
  PsumRing ps_;
  /// [op]: the PSUM banks in the operand's dtype, for its transposes
  std::array<std::vector<isa::Tensor>, 2> psT_;
  std::array<int64_t, 2> groupMax_{1, 1};
  isa::Tensor scale_;                    ///< per-column output scale in HBM ([N] or [1]), or none
  std::array<isa::Tensor, 2> scaleBuf_;  ///< [TM, BN] the block's scales on every partition
  isa::Tensor scaleRow_;                 ///< [1, BN] one N block's scales, as loaded
  isa::Tensor ones_;                     ///< [1, TM] ones: TensorE broadcasts scaleRow_ with them
  int64_t scaleBlock_ = -1;              ///< N block whose scales the last load brought
  std::array<std::vector<Epoch>, 2> epochs_;
  std::vector<BlockRef> blocks_;
  std::vector<Unit> units_;
  size_t nextUnit_ = 0;
};

bool matmulInputDtype(DType t) {
  return t == DType::kFP32 || t == DType::kBF16 || t == DType::kFP16 || t == DType::kFP8E4M3 ||
         t == DType::kFP8E5M2;
}

std::string shapeText(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

}  // namespace

Status emitMatmulAB(isa::KernelBuilder& b, const isa::Tensor& a, const isa::Tensor& bm,
                    const isa::Tensor& out, MatmulLayout layout, MatmulTiling tiling,
                    const MatmulEpilogue& epilogue) {
  if (!a.valid() || !bm.valid() || !out.valid()) return b.status();
  const arch::ChipConfig& chip = b.chip();
  const auto &as = a.shape(), &bs = bm.shape(), &os = out.shape();
  auto bad = [&](ErrorCode code, const std::string& why) {
    return Status(
        code, fmt::format("matmul: a '{}' {}{}, b '{}' {}{}, out '{}' {}: {}", a.decl().name,
                          shapeText(as), layout.transposeA ? " (transposed)" : "", bm.decl().name,
                          shapeText(bs), layout.transposeB ? " (transposed)" : "", out.decl().name,
                          shapeText(os), why));
  };
  for (const isa::Tensor* t : {&a, &bm, &out})
    if (t->decl().space != isa::MemSpace::kHbm)
      return bad(ErrorCode::kInvalidArgument,
                 fmt::format("'{}' is in {}; the operands must be HBM tensors", t->decl().name,
                             isa::memSpaceName(t->decl().space)));
  if (as.size() < 2 || bs.size() < 2 || os.size() != as.size())
    return bad(ErrorCode::kInvalidArgument,
               "expected a [..., M, K] ([..., K, M] transposed), out [..., M, N] with the same "
               "batch dims, b [K, N] or [..., K, N]");
  const size_t batchDims = as.size() - 2;
  const int64_t M = as[batchDims + (layout.transposeA ? 1 : 0)];
  const int64_t K = as[batchDims + (layout.transposeA ? 0 : 1)];
  const int64_t N = layout.transposeB ? bs[bs.size() - 2] : bs.back();
  const int64_t bK = layout.transposeB ? bs.back() : bs[bs.size() - 2];
  const bool bBatched = bs.size() > 2;
  bool ok = bK == K && os[batchDims] == M && os[batchDims + 1] == N &&
            (!bBatched || bs.size() == as.size());
  int64_t G = 1;
  for (size_t i = 0; i < batchDims && ok; ++i) {
    ok = os[i] == as[i] && (!bBatched || bs[i] == as[i]);
    G *= as[i];
  }
  if (!ok)
    return bad(ErrorCode::kInvalidArgument,
               fmt::format("shapes do not agree; expected a {}, b {} (shared) or with "
                           "a's batch dims, out [..., M, N]",
                           layout.transposeA ? "[..., K, M]" : "[..., M, K]",
                           layout.transposeB ? "[N, K]" : "[K, N]"));
  const bool fp8A = a.dtype() == DType::kFP8E4M3 || a.dtype() == DType::kFP8E5M2;
  const bool fp8B = bm.dtype() == DType::kFP8E4M3 || bm.dtype() == DType::kFP8E5M2;
  if (!matmulInputDtype(a.dtype()) || !matmulInputDtype(bm.dtype()) ||
      (a.dtype() != bm.dtype() && !fp8A && !fp8B))
    return bad(ErrorCode::kUnsupported,
               fmt::format("dtypes {} and {}: a and b must be float32, bfloat16, float16, "
                           "float8_e4m3 or float8_e5m2, one dtype or one of them fp8; cast first",
                           numerics::dtypeName(a.dtype()), numerics::dtypeName(bm.dtype())));
  const isa::Tensor& scale = epilogue.columnScale;
  if (scale.valid()) {
    const int64_t count = scale.decl().numElements();
    if (scale.decl().space != isa::MemSpace::kHbm || !numerics::isFloat(scale.dtype()) ||
        (count != 1 && count != N))
      return bad(ErrorCode::kInvalidArgument,
                 fmt::format("column scale '{}' {} {}: must be an HBM float tensor of N = {} "
                             "elements or of one",
                             scale.decl().name, numerics::dtypeName(scale.dtype()),
                             shapeText(scale.shape()), N));
  }
  if (!numerics::isFloat(out.dtype()))
    return bad(ErrorCode::kUnsupported,
               fmt::format("out dtype {} is not a float dtype", numerics::dtypeName(out.dtype())));
  if (chip.pe.rows != chip.pe.cols || chip.pe.rows > chip.mem.sbufPartitions)
    return bad(ErrorCode::kUnsupported,
               "the kernel assumes a square PE array of at most the "
               "SBUF partitions");

  AbProblem s;
  s.G = G;
  s.M = M;
  s.K = K;
  s.N = N;
  s.bBatched = bBatched && G > 1;
  if (!s.bBatched && !layout.transposeA) {  // a shared B: the batch is just more rows of A, out
    s.M = G * M;
    s.G = 1;
  }
  s.inA = a.dtype();
  s.inB = bm.dtype();
  s.out = out.dtype();
  s.scaleBytes = scale.valid() ? uint32_t(numerics::dtypeSize(scale.dtype())) : 0;
  // How an operand that needs K moved onto the partitions gets it: dma_transpose where the chip
  // has it for the dtype (2 or 4 bytes: fp8 is transposed on TensorE), else TensorE.
  auto transposed = [&](DType t) -> Expected<Load> {
    const bool dmaCan = chip.dma.supportsTranspose() &&
                        (numerics::dtypeSize(t) == 2 || numerics::dtypeSize(t) == 4);
    if (tiling.transpose == Transpose::kDma && !dmaCan)
      return bad(ErrorCode::kUnsupported,
                 fmt::format("DMA transpose asked for, but {} has none for {}: use "
                             "Transpose::kTensorEngine or kAuto",
                             chip.name, numerics::dtypeName(t)));
    return tiling.transpose != Transpose::kTensorEngine && dmaCan ? Load::kDmaTranspose
                                                                  : Load::kPeTranspose;
  };
  // a [K, M] is already A^T, K rows on the partitions: loaded as stored, like B.
  s.loadA = Load::kDma;
  s.loadB = Load::kDma;
  if (!layout.transposeA) {
    TRNSIM_ASSIGN_OR_RETURN(s.loadA, transposed(s.inA));
  }
  if (layout.transposeB) {
    TRNSIM_ASSIGN_OR_RETURN(s.loadB, transposed(s.inB));
  }
  const Matrix ma = layout.transposeA ? Matrix{a, K, M} : Matrix{a, s.M, K};
  const Matrix mb{bm, layout.transposeB ? N : K, layout.transposeB ? K : N};
  const Matrix mo{out, s.M, N};
  return AbEmitter(b, s, ma, mb, mo, scale).run(tiling);
}

Expected<isa::Program> matmulABProgram(const arch::ChipConfig& chip, std::vector<int64_t> aShape,
                                       std::vector<int64_t> bShape, DType inDtype, DType outDtype,
                                       MatmulLayout layout, MatmulTiling tiling) {
  if (aShape.size() < 2 || bShape.size() < 2)
    return Status(ErrorCode::kInvalidArgument, "matmul: a and b need at least 2 dims");
  std::vector<int64_t> outShape = aShape;
  if (layout.transposeA) outShape[outShape.size() - 2] = aShape.back();
  outShape.back() = layout.transposeB ? bShape[bShape.size() - 2] : bShape.back();
  isa::KernelBuilder b(
      chip, fmt::format("matmul_ab_{}x{}", fmt::join(aShape, "x"), fmt::join(bShape, "x")));
  auto a = b.hbm("a", inDtype, std::move(aShape), isa::TensorKind::kInput);
  auto bm = b.hbm("b", inDtype, std::move(bShape), isa::TensorKind::kInput);
  auto out = b.hbm("out", outDtype, std::move(outShape), isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitMatmulAB(b, a, bm, out, layout, tiling));
  return b.finish();
}

}  // namespace trnsim::kernels
