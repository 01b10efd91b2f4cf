#include "trnsim/kernels/matmul.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

#include "trnsim/kernels/kernel_util.h"

namespace trnsim::kernels {
namespace {

using isa::Slice;
using numerics::DType;

/// The largest divisor of n that is <= limit (at least 1).
int largestDivisor(int64_t n, int64_t limit) {
  for (int64_t d = std::min(n, limit); d > 1; --d)
    if (n % d == 0) return int(d);
  return 1;
}

struct Blocks {
  int bm, bn, bk;
};

uint64_t sbufBytesNeeded(const Blocks& b, int64_t tileM, int64_t tileN, int64_t kBlocks, DType in,
                         DType out) {
  const uint64_t inSize = numerics::dtypeSize(in), outSize = numerics::dtypeSize(out);
  uint64_t bytes = 2 * uint64_t(b.bk) * b.bm * tileM * inSize;  // lhsT blocks, double-buffered
  bytes += 2 * uint64_t(b.bk) * b.bn * tileN * inSize;          // rhs blocks, double-buffered
  bytes += 2 * uint64_t(b.bn) * tileN * outSize;                // output rows, double-buffered
  if (kBlocks > 1) bytes += uint64_t(b.bm) * b.bn * tileN * 4;  // fp32 partial sums
  return bytes + 64 * 8;                                        // allocator alignment slack
}

}  // namespace

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
                              "and N a multiple of {}; pad the operands",
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

  std::array<isa::Tensor, 2> lhsBuf, rhsBuf, outBuf;
  for (int i = 0; i < 2; ++i) {
    lhsBuf[i] = detail::sbufTile(b, fmt::format("mm_lhsT_{}", i), inT, {P, blk.bk, BM});
    rhsBuf[i] = detail::sbufTile(b, fmt::format("mm_rhs_{}", i), inT, {P, blk.bk, BN});
    outBuf[i] = detail::sbufTile(b, fmt::format("mm_out_{}", i), outT, {TM, BN});
  }
  isa::Tensor acc;
  if (kBlocks > 1) acc = detail::sbufTile(b, "mm_acc", DType::kFP32, {TM, blk.bm, BN});
  std::vector<isa::Tensor> psTiles;
  for (uint32_t i = 0; i < chip.mem.psumBanks; ++i)
    psTiles.push_back(detail::psumTile(b, fmt::format("mm_ps_{}", i), DType::kFP32, {TM, TN}));
  if (!b.status().isOk()) return b.status();

  size_t psNext = 0, loadNext = 0, outNext = 0;
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
        const bool lastK = kb == kBlocks - 1;
        for (int64_t mt = 0; mt < blk.bm; ++mt) {
          const isa::Tensor& o = outBuf[outNext % 2];
          for (int64_t nt = 0; nt < blk.bn; ++nt) {
            const isa::Tensor& ps = psTiles[psNext++ % psTiles.size()];
            for (int64_t kt = 0; kt < blk.bk; ++kt) {
              (void)b.ncMatmul(
                  ps.ap(),
                  lhsBuf[buf]({Slice::all(), Slice::at(kt), Slice::range(mt * TM, (mt + 1) * TM)}),
                  rhsBuf[buf]({Slice::all(), Slice::at(kt), Slice::range(nt * TN, (nt + 1) * TN)}),
                  {.accumulate = kt > 0});
            }
            const auto outSlice = o({Slice::all(), Slice::range(nt * TN, (nt + 1) * TN)});
            if (kBlocks == 1) {
              (void)b.tensorCopy(outSlice, ps.ap(), arch::Engine::kScalar);
              continue;
            }
            const auto accSlice =
                acc({Slice::all(), Slice::at(mt), Slice::range(nt * TN, (nt + 1) * TN)});
            if (kb == 0) {
              (void)b.tensorCopy(accSlice, ps.ap(), arch::Engine::kScalar);
            } else if (!lastK) {
              (void)b.tensorTensor(accSlice, accSlice, ps.ap(), isa::AluOp::kAdd);
            } else {
              (void)b.tensorTensor(outSlice, accSlice, ps.ap(), isa::AluOp::kAdd);
            }
          }
          if (lastK) {
            const int64_t m0 = mb * BM + mt * TM;
            (void)b.dmaCopy(out({Slice::range(m0, m0 + TM), Slice::range(nb * BN, (nb + 1) * BN)}),
                            o.ap());
            ++outNext;
          }
        }
      }
    }
  }
  for (auto& t : psTiles) b.release(t);
  for (int i = 0; i < 2; ++i) {
    b.release(lhsBuf[i]);
    b.release(rhsBuf[i]);
    b.release(outBuf[i]);
  }
  if (acc.valid()) b.release(acc);
  return b.status();
}

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
