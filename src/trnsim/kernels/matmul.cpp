#include "trnsim/kernels/matmul.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <vector>

#include "trnsim/kernels/kernel_util.h"
#include "trnsim/kernels/matmul_block.h"

namespace trnsim::kernels {
namespace detail {

using isa::Slice;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int largestDivisor(int64_t n, int64_t limit) {
  for (int64_t d = std::min(n, limit); d > 1; --d)
    if (n % d == 0) return int(d);
  return 1;
}

uint64_t sbufBytesNeeded(const Blocks& b, int64_t tileM, int64_t tileN, int64_t kBlocks, DType in,
                         DType out) {
  const uint64_t inSize = numerics::dtypeSize(in), outSize = numerics::dtypeSize(out);
  uint64_t bytes = 2 * uint64_t(b.bk) * b.bm * tileM * inSize;  // lhsT blocks, double-buffered
  bytes += 2 * uint64_t(b.bk) * b.bn * tileN * inSize;          // rhs blocks, double-buffered
  bytes += 2 * uint64_t(b.bn) * tileN * outSize;                // output rows, double-buffered
  if (kBlocks > 1) bytes += uint64_t(b.bm) * b.bn * tileN * 4;  // fp32 partial sums
  return bytes + 64 * 8;                                        // allocator alignment slack
}

// ---- the block product shared by emitMatmul and emitMatmulAB ----

double streamNs(const arch::StreamEngineConfig& e, double elems, uint32_t widestBytes) {
  return (e.fixedOverheadCycles +
          std::max<double>(e.minCycles, elems / e.elemsPerCycle(widestBytes))) /
         e.clockGhz;
}

void emitBlockProduct(isa::KernelBuilder& b, PsumRing& ps, OutputRows& out, const BlockProduct& job,
                      const std::function<void(int64_t, const isa::AccessPattern&)>& store,
                      const std::function<void()>& afterTile) {
  const arch::ChipConfig& chip = b.chip();
  const int64_t P = chip.pe.rows, TM = chip.pe.cols, TN = chip.pe.maxMovingFree;
  const bool lastK = job.kb == job.kBlocks - 1;
  for (int64_t m0 = 0, mt = 0; m0 < job.mSize; m0 += TM, ++mt) {
    const int64_t rows = std::min(TM, job.mSize - m0);
    const isa::Tensor& o = out.rows[out.next % out.rows.size()];
    for (int64_t n0 = 0; n0 < job.nSize; n0 += TN) {
      const int64_t cols = std::min(TN, job.nSize - n0);
      const isa::Tensor& pt = ps.tiles[ps.take()];
      const auto psAp = pt({Slice::range(0, rows), Slice::range(0, cols)});
      for (int64_t k0 = 0, kt = 0; k0 < job.kSize; k0 += P, ++kt) {
        const int64_t kr = std::min(P, job.kSize - k0);
        (void)b.ncMatmul(
            psAp, (*job.lhs)({Slice::range(0, kr), Slice::at(kt), Slice::range(m0, m0 + rows)}),
            (*job.rhs)({Slice::range(0, kr), Slice::at(kt), Slice::range(n0, n0 + cols)}),
            {.accumulate = kt > 0});
      }
      const auto outSlice = o({Slice::range(0, rows), Slice::range(n0, n0 + cols)});
      // out = sum * scale (VectorE), from PSUM (one K block) or the fp32 partial sums.
      auto scaled = [&](const isa::AccessPattern& sum) {
        const isa::Tensor& sc = *job.scale;
        if (sc.shape()[1] == 1)
          (void)b.tensorScalar(outSlice, sum, isa::AluOp::kMultiply,
                               sc({Slice::range(0, rows), Slice::range(0, 1)}));
        else
          (void)b.tensorTensor(outSlice, sum,
                               sc({Slice::range(0, rows), Slice::range(n0, n0 + cols)}),
                               isa::AluOp::kMultiply);
        if (job.balance) job.balance->addVector(double(cols), 4);
      };
      if (job.kBlocks == 1 && job.scale) {
        scaled(psAp);
      } else if (job.kBlocks == 1) {
        const uint32_t widest = std::max<uint32_t>(4, uint32_t(numerics::dtypeSize(o.dtype())));
        (void)b.tensorCopy(
            outSlice, psAp,
            job.balance ? job.balance->pick(double(cols), widest) : arch::Engine::kScalar);
      } else {
        const auto accSlice =
            out.acc({Slice::range(0, rows), Slice::at(mt), Slice::range(n0, n0 + cols)});
        if (job.kb == 0) {
          (void)b.tensorCopy(
              accSlice, psAp,
              job.balance ? job.balance->pick(double(cols), 4) : arch::Engine::kScalar);
        } else if (lastK && job.scale) {
          (void)b.tensorTensor(accSlice, accSlice, psAp, isa::AluOp::kAdd);
          if (job.balance) job.balance->addVector(double(cols), 4);
          scaled(accSlice);
        } else {
          (void)b.tensorTensor(lastK ? outSlice : accSlice, accSlice, psAp, isa::AluOp::kAdd);
          if (job.balance) job.balance->addVector(double(cols), 4);
        }
      }
      if (afterTile) afterTile();
    }
    if (lastK) {
      store(m0, o({Slice::range(0, rows), Slice::range(0, job.nSize)}));
      ++out.next;
    }
  }
}

}  // namespace detail

using namespace detail;
using isa::Slice;

Status emitMatmul(isa::KernelBuilder& b, const isa::Tensor& lhsT, const isa::Tensor& rhs,
                  const isa::Tensor& out, MatmulTiling tiling) {
  const arch::ChipConfig& chip = b.chip();
  if (!lhsT.valid() || !rhs.valid() || !out.valid()) return b.status();
  if (lhsT.shape().size() != 2 || rhs.shape().size() != 2 || out.shape().size() != 2)
    return Status(ErrorCode::kInvalidArgument, "matmul: lhsT, rhs and out must be 2-D");
  const int64_t K = lhsT.shape()[0], M = lhsT.shape()[1], N = rhs.shape()[1];
  if (rhs.shape()[0] != K || out.shape()[0] != M || out.shape()[1] != N)
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("matmul: shapes lhsT [{}, {}], rhs [{}, {}], out [{}, {}] do not "
                              "agree; expected lhsT [K, M], rhs [K, N], out [M, N]",
                              K, M, rhs.shape()[0], N, out.shape()[0], out.shape()[1]));
  const int64_t P = chip.pe.rows, TM = chip.pe.cols, TN = chip.pe.maxMovingFree;
  if (M % TM != 0 || K % P != 0 || N % TN != 0)
    return Status(ErrorCode::kUnsupported,
                  fmt::format("matmul: M={}, K={}, N={}: this kernel needs M and K multiples of {} "
                              "and N a multiple of {}; pad the operands or use emitMatmulAB",
                              M, K, N, TM, TN));
  const int64_t mTiles = M / TM, nTiles = N / TN, kTiles = K / P;
  const DType inT = lhsT.dtype(), outT = out.dtype();

  Blocks blk{largestDivisor(mTiles, tiling.tilesInBlockM ? tiling.tilesInBlockM : 16),
             largestDivisor(nTiles, tiling.tilesInBlockN ? tiling.tilesInBlockN : 2),
             largestDivisor(kTiles, tiling.tilesInBlockK ? tiling.tilesInBlockK : 8)};
  // Shrink the blocks (M first, then K, then N) until the buffers fit in SBUF.
  const uint64_t capacity = b.sbufFreeBytes();
  while (sbufBytesNeeded(blk, TM, TN, kTiles / blk.bk, inT, outT) > capacity) {
    if (blk.bm > 1)
      blk.bm = largestDivisor(mTiles, blk.bm - 1);
    else if (blk.bk > 1)
      blk.bk = largestDivisor(kTiles, blk.bk - 1);
    else if (blk.bn > 1)
      blk.bn = largestDivisor(nTiles, blk.bn - 1);
    else
      break;
  }
  const int64_t BM = blk.bm * TM, BN = blk.bn * TN, BK = blk.bk * P;
  const int64_t kBlocks = kTiles / blk.bk;

  std::array<isa::Tensor, 2> lhsBuf, rhsBuf;
  OutputRows rows;
  for (int i = 0; i < 2; ++i) {
    lhsBuf[i] = detail::sbufTile(b, fmt::format("mm_lhsT_{}", i), inT, {P, blk.bk, BM});
    rhsBuf[i] = detail::sbufTile(b, fmt::format("mm_rhs_{}", i), inT, {P, blk.bk, BN});
    rows.rows.push_back(detail::sbufTile(b, fmt::format("mm_out_{}", i), outT, {TM, BN}));
  }
  if (kBlocks > 1) rows.acc = detail::sbufTile(b, "mm_acc", DType::kFP32, {TM, blk.bm, BN});
  PsumRing ps;
  for (uint32_t i = 0; i < chip.mem.psumBanks; ++i)
    ps.tiles.push_back(detail::psumTile(b, fmt::format("mm_ps_{}", i), DType::kFP32, {TM, TN}));
  if (!b.status().isOk()) return b.status();

  size_t loadNext = 0;
  for (int64_t nb = 0; nb < N / BN; ++nb) {
    for (int64_t mb = 0; mb < M / BM; ++mb) {
      for (int64_t kb = 0; kb < kBlocks; ++kb) {
        const size_t buf = loadNext++ % 2;
        for (int64_t kt = 0; kt < blk.bk; ++kt) {
          const int64_t k0 = kb * BK + kt * P;
          (void)b.dmaCopy(lhsBuf[buf]({Slice::all(), Slice::at(kt), Slice::all()}),
                          lhsT({Slice::range(k0, k0 + P), Slice::range(mb * BM, (mb + 1) * BM)}));
          (void)b.dmaCopy(rhsBuf[buf]({Slice::all(), Slice::at(kt), Slice::all()}),
                          rhs({Slice::range(k0, k0 + P), Slice::range(nb * BN, (nb + 1) * BN)}));
        }
        emitBlockProduct(
            b, ps, rows, {&lhsBuf[buf], &rhsBuf[buf], BM, BN, BK, kb, kBlocks},
            [&](int64_t m0, const isa::AccessPattern& o) {
              const int64_t r0 = mb * BM + m0;
              (void)b.dmaCopy(
                  out({Slice::range(r0, r0 + TM), Slice::range(nb * BN, (nb + 1) * BN)}), o);
            });
      }
    }
  }
  for (auto& t : ps.tiles) b.release(t);
  for (int i = 0; i < 2; ++i) {
    b.release(lhsBuf[i]);
    b.release(rhsBuf[i]);
    b.release(rows.rows[size_t(i)]);
  }
  if (rows.acc.valid()) b.release(rows.acc);
  return b.status();
}

// ---- emitMatmulAB ----

Expected<isa::Program> matmulProgram(const arch::ChipConfig& chip, int64_t m, int64_t k, int64_t n,
                                     DType inDtype, DType outDtype, MatmulTiling tiling) {
  isa::KernelBuilder b(chip, fmt::format("matmul_{}x{}x{}", m, k, n));
  auto lhsT = b.hbm("lhsT", inDtype, {k, m}, isa::TensorKind::kInput);
  auto rhs = b.hbm("rhs", inDtype, {k, n}, isa::TensorKind::kInput);
  auto out = b.hbm("out", outDtype, {m, n}, isa::TensorKind::kOutput);
  TRNSIM_RETURN_IF_ERROR(b.status());
  TRNSIM_RETURN_IF_ERROR(emitMatmul(b, lhsT, rhs, out, tiling));
  return b.finish();
}

}  // namespace trnsim::kernels
