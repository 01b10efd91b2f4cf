// The fp32 inner-product kernel behind nc_matmul. Every output element is summed in increasing
// k from 0.0f, each term a product rounded to fp32 then added (the model's arithmetic; the
// reference loop in tests/sim/functional_matmul_test.cpp). How it is computed fast:
// - both operands are packed once per instruction into zero-padded fp32 panels (A: 6 rows of
//   the output per panel, [k][6]; B: 16 columns, [k][16]), converted from their dtype while
//   packed, straight from simulated memory when the operand is rows of contiguous elements,
//   so the inner loop reads contiguous memory (B rows of a [128 x 512] tile are 2 KiB apart
//   and would fight over two L1 sets) and no fp32 copy of a whole operand is made;
// - the result is stored (or, for accumulate, added to what is there) straight into the
//   output rows, which may be PSUM itself;
// - a 6 x 16 block of the output stays in 12 registers of 8 floats while k runs;
// - versions for baseline x86-64 (or any other host) and AVX2, picked at run time; both give
//   the same bits, since each sums the same terms in the same order with separate multiply and
//   add. A fused multiply-add would give the same bits where every product is exact and
//   normal, but it measured slower on the development host (AMD EPYC, whose separate add pipes
//   run the adds beside the multiplies), so there is no FMA version;
// - the column panels are independent tasks over support::parallelFor: each output element is
//   computed by one thread in the same order, so the bits do not depend on the thread count.

#include <algorithm>
#include <cstring>
#include <vector>

#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/functional_math.h"
#include "trnsim/support/parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define TRNSIM_HAVE_X86_PATHS 1
#endif

namespace trnsim::sim::detail {
namespace {

constexpr int kMr = 6;   // output rows per block
constexpr int kNr = 16;  // output columns per block

// 8 floats as one GCC/Clang vector (one AVX register; two SSE registers on baseline x86-64).
typedef float Vec8 __attribute__((vector_size(32)));

/// A 6 x 16 block: c[i * ldc + j] = sum_k ap[k * 6 + i] * bp[k * 16 + j] over packed panels
/// (`accumulate`: c[i * ldc + j] + that sum).
using MicroKernel = void (*)(const float* ap, const float* bp, int K, float* c, int64_t ldc,
                             bool accumulate);

// Multiply then add as two statements: a compiler may contract a * b + c written as one
// expression into an FMA (clang does by default), which would round differently when the
// product is not exact.
#define TRNSIM_MUL_ADD(acc, x, y) \
  do {                            \
    const Vec8 prod = (x) * (y);  \
    (acc) = (acc) + prod;         \
  } while (0)

// The micro-kernel; its accumulators are named (not an array) so they stay in registers.
[[gnu::always_inline]] inline void microBody(const float* __restrict ap, const float* __restrict bp,
                                             int K, float* __restrict c, int64_t ldc,
                                             bool accumulate) {
  // The block's output rows lie ldc apart (16 KiB in PSUM, where they share cache sets): ask
  // for them now so that they arrive while the k loop runs.
  for (int i = 0; i < kMr; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + kNr - 1, 1);
  }
  Vec8 c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {}, c40 = {},
       c41 = {}, c50 = {}, c51 = {};
  for (int k = 0; k < K; ++k, ap += kMr, bp += kNr) {
    Vec8 b0, b1;
    std::memcpy(&b0, bp, sizeof(Vec8));
    std::memcpy(&b1, bp + 8, sizeof(Vec8));
    float x = ap[0];
    Vec8 a = {x, x, x, x, x, x, x, x};
    TRNSIM_MUL_ADD(c00, a, b0);
    TRNSIM_MUL_ADD(c01, a, b1);
    x = ap[1];
    a = Vec8{x, x, x, x, x, x, x, x};
    TRNSIM_MUL_ADD(c10, a, b0);
    TRNSIM_MUL_ADD(c11, a, b1);
    x = ap[2];
    a = Vec8{x, x, x, x, x, x, x, x};
    TRNSIM_MUL_ADD(c20, a, b0);
    TRNSIM_MUL_ADD(c21, a, b1);
    x = ap[3];
    a = Vec8{x, x, x, x, x, x, x, x};
    TRNSIM_MUL_ADD(c30, a, b0);
    TRNSIM_MUL_ADD(c31, a, b1);
    x = ap[4];
    a = Vec8{x, x, x, x, x, x, x, x};
    TRNSIM_MUL_ADD(c40, a, b0);
    TRNSIM_MUL_ADD(c41, a, b1);
    x = ap[5];
    a = Vec8{x, x, x, x, x, x, x, x};
    TRNSIM_MUL_ADD(c50, a, b0);
    TRNSIM_MUL_ADD(c51, a, b1);
  }
  // The sum is complete before anything is added to it: accumulate adds the old value last.
  auto store = [&](float* dst, const Vec8& sum) {
    if (accumulate) {
      Vec8 old;
      std::memcpy(&old, dst, sizeof(Vec8));
      const Vec8 total = old + sum;
      std::memcpy(dst, &total, sizeof(Vec8));
    } else {
      std::memcpy(dst, &sum, sizeof(Vec8));
    }
  };
  store(c, c00);
  store(c + 8, c01);
  store(c + ldc, c10);
  store(c + ldc + 8, c11);
  store(c + 2 * ldc, c20);
  store(c + 2 * ldc + 8, c21);
  store(c + 3 * ldc, c30);
  store(c + 3 * ldc + 8, c31);
  store(c + 4 * ldc, c40);
  store(c + 4 * ldc + 8, c41);
  store(c + 5 * ldc, c50);
  store(c + 5 * ldc + 8, c51);
}

#undef TRNSIM_MUL_ADD

void microGeneric(const float* ap, const float* bp, int K, float* c, int64_t ldc,
                  bool accumulate) {
  microBody(ap, bp, K, c, ldc, accumulate);
}

#ifdef TRNSIM_HAVE_X86_PATHS
[[gnu::target("avx2")]] void microAvx2(const float* ap, const float* bp, int K, float* c,
                                       int64_t ldc, bool accumulate) {
  microBody(ap, bp, K, c, ldc, accumulate);
}

bool hostHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

MicroKernel pickKernel() {
#ifdef TRNSIM_HAVE_X86_PATHS
  if (hostHasAvx2()) return microAvx2;
#endif
  return microGeneric;
}

/// Elements [col0, col0 + n) of row k of `in` as fp32 into out[0, n).
inline void loadRow(const MatmulInput& in, int k, int col0, int n, float* out) {
  const std::byte* row = in.data + int64_t(k) * in.rowStride;
  switch (in.dtype) {
    case numerics::DType::kFP32:
      std::memcpy(out, row + int64_t(col0) * 4, size_t(n) * sizeof(float));
      return;
    case numerics::DType::kBF16: {
      // bf16 is the top half of an fp32 (numerics::convertToFloat does the same).
      const std::byte* p = row + int64_t(col0) * 2;
      for (int j = 0; j < n; ++j) {
        uint16_t h;
        std::memcpy(&h, p + 2 * j, 2);
        const uint32_t w = uint32_t(h) << 16;
        std::memcpy(out + j, &w, 4);
      }
      return;
    }
    default:
      numerics::convertToFloat(in.dtype, row + int64_t(col0) * int64_t(numerics::dtypeSize(in.dtype)),
                               out, size_t(n));
  }
}

/// c (+)= the 16-column block `out` of width nr and height mr computed into `edge` [6][16].
void storeEdge(const float* edge, float* out, int64_t ldc, int mr, int nr, bool accumulate) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float& o = out[int64_t(i) * ldc + j];
      o = accumulate ? o + edge[i * kNr + j] : edge[i * kNr + j];
    }
}

/// Floats from one packed panel to the next: K rows and one cache line, so that the rows a
/// pack writes at the same k (one per panel) do not all fall into the same cache set.
inline size_t panelStride(int K, int kPanel) { return size_t(K) * size_t(kPanel) + 16; }

/// Packs `in` (K rows of `width` elements) into zero-padded panels of `kPanel` columns, panel
/// i holding columns [i * kPanel, i * kPanel + kPanel) as [k][kPanel]. Row by row, so that
/// operand rows far apart in memory (SBUF partitions are 192 KiB apart) are each read once,
/// whole, and converted in one pass.
template <int kPanel>
void packPanels(const MatmulInput& in, int K, int width, std::vector<float>& rowBuf,
                std::vector<float>& out) {
  const int blocks = (width + kPanel - 1) / kPanel;
  const size_t stride = panelStride(K, kPanel);
  out.resize(size_t(blocks) * stride);
  rowBuf.resize(size_t(blocks) * kPanel);
  // The padding columns of the last panel read as zeros.
  std::fill(rowBuf.begin() + width, rowBuf.end(), 0.0f);
  // Rows far apart defeat the host's prefetchers, and a row of a tile just streamed through
  // (a moving tile is reused only after 15 others) is rarely in cache: ask for the rows a few
  // ahead so that their misses overlap.
  const int64_t rowBytes = int64_t(width) * int64_t(numerics::dtypeSize(in.dtype));
  auto prefetchRow = [&](int k) {
    const char* p = reinterpret_cast<const char*>(in.data + int64_t(k) * in.rowStride);
    for (int64_t off = 0; off < rowBytes; off += 64) __builtin_prefetch(p + off);
  };
  constexpr int kAhead = 6;
  for (int k = 0; k < std::min(K, kAhead); ++k) prefetchRow(k);
  for (int k = 0; k < K; ++k) {
    if (k + kAhead < K) prefetchRow(k + kAhead);
    loadRow(in, k, 0, width, rowBuf.data());
    for (int ib = 0; ib < blocks; ++ib)
      std::memcpy(out.data() + size_t(ib) * stride + size_t(k) * kPanel,
                  rowBuf.data() + size_t(ib) * kPanel, kPanel * sizeof(float));
  }
}

void matmulPacked(MicroKernel kernel, const float* aPanels, const float* bPanels, float* c,
                  int64_t ldc, int K, int M, int N, bool accumulate, uint32_t threads) {
  const int mBlocks = (M + kMr - 1) / kMr;
  const int nBlocks = (N + kNr - 1) / kNr;
  // One task per column panel of 16, down all row blocks.
  support::parallelFor(size_t(nBlocks), threads, [&](size_t jb) {
    const int n0 = int(jb) * kNr, nr = std::min(kNr, N - n0);
    const float* bPanel = bPanels + jb * panelStride(K, kNr);
    float edge[kMr * kNr];
    for (int ib = 0; ib < mBlocks; ++ib) {
      const int m0 = ib * kMr, mr = std::min(kMr, M - m0);
      const float* aPanel = aPanels + size_t(ib) * panelStride(K, kMr);
      float* out = c + int64_t(m0) * ldc + n0;
      if (mr == kMr && nr == kNr) {
        kernel(aPanel, bPanel, K, out, ldc, accumulate);
      } else {
        kernel(aPanel, bPanel, K, edge, kNr, false);
        storeEdge(edge, out, ldc, mr, nr, accumulate);
      }
    }
  });
}

/// The K x width operand `in` as a dense fp32 array.
std::vector<float> dense(const MatmulInput& in, int K, int width) {
  std::vector<float> out(size_t(K) * size_t(width));
  for (int k = 0; k < K; ++k) loadRow(in, k, 0, width, out.data() + size_t(k) * width);
  return out;
}

void matmulSkipZero(const MatmulInput& ain, const MatmulInput& bin, float* c, int64_t ldc, int K,
                    int M, int N, bool accumulate) {
  const std::vector<float> a = dense(ain, K, M), b = dense(bin, K, N);
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      // The first term initialises the sum, so a lone -0.0 or NaN passes through unchanged.
      float acc = 0.0f;
      bool any = false;
      for (int k = 0; k < K; ++k) {
        const float bv = b[size_t(k) * N + n];
        if (bv == 0.0f) continue;
        const float term = a[size_t(k) * M + m] * bv;
        acc = any ? acc + term : term;
        any = true;
      }
      float& o = c[int64_t(m) * ldc + n];
      o = accumulate ? o + acc : acc;
    }
  }
}

}  // namespace

void matmulF32(const MatmulInput& a, const MatmulInput& b, float* c, int64_t ldc, int K, int M,
               int N, bool skipZeroB, bool accumulate, uint32_t threads) {
  if (skipZeroB) {
    matmulSkipZero(a, b, c, ldc, K, M, N, accumulate);
    return;
  }
  // Scratch kept per calling thread between instructions (a few hundred KiB for a
  // [128 x 512] tile), so an instruction allocates nothing.
  thread_local std::vector<float> rowBuf, ap, bp;
  packPanels<kMr>(a, K, M, rowBuf, ap);
  packPanels<kNr>(b, K, N, rowBuf, bp);
  // Pointers, not the thread_local vectors: a pool thread naming those would see its own.
  matmulPacked(pickKernel(), ap.data(), bp.data(), c, ldc, K, M, N, accumulate, threads);
}

}  // namespace trnsim::sim::detail
