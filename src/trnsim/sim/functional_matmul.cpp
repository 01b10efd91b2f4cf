// The fp32 inner-product kernel behind nc_matmul. Every output element is summed in increasing
// k from 0.0f, each term a product rounded to fp32 then added (the model's arithmetic; the
// reference loop in tests/sim/functional_matmul_test.cpp). How it is computed fast:
// - both operands are packed once per instruction into zero-padded panels (A: 6 rows of the
//   output per panel, [k][6]; B: 16 columns, [k][16]), so the inner loop reads contiguous
//   memory (B rows of a [128 x 512] tile are 2 KiB apart and would fight over two L1 sets);
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

/// A 6 x 16 block: c[i * ldc + j] = sum_k ap[k * 6 + i] * bp[k * 16 + j] over packed panels.
using MicroKernel = void (*)(const float* ap, const float* bp, int K, float* c, int64_t ldc);

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
                                             int K, float* __restrict c, int64_t ldc) {
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
  std::memcpy(c, &c00, sizeof(Vec8));
  std::memcpy(c + 8, &c01, sizeof(Vec8));
  std::memcpy(c + ldc, &c10, sizeof(Vec8));
  std::memcpy(c + ldc + 8, &c11, sizeof(Vec8));
  std::memcpy(c + 2 * ldc, &c20, sizeof(Vec8));
  std::memcpy(c + 2 * ldc + 8, &c21, sizeof(Vec8));
  std::memcpy(c + 3 * ldc, &c30, sizeof(Vec8));
  std::memcpy(c + 3 * ldc + 8, &c31, sizeof(Vec8));
  std::memcpy(c + 4 * ldc, &c40, sizeof(Vec8));
  std::memcpy(c + 4 * ldc + 8, &c41, sizeof(Vec8));
  std::memcpy(c + 5 * ldc, &c50, sizeof(Vec8));
  std::memcpy(c + 5 * ldc + 8, &c51, sizeof(Vec8));
}

#undef TRNSIM_MUL_ADD

void microGeneric(const float* ap, const float* bp, int K, float* c, int64_t ldc) {
  microBody(ap, bp, K, c, ldc);
}

#ifdef TRNSIM_HAVE_X86_PATHS
[[gnu::target("avx2")]] void microAvx2(const float* ap, const float* bp, int K, float* c,
                                       int64_t ldc) {
  microBody(ap, bp, K, c, ldc);
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

void matmulPacked(MicroKernel kernel, const float* a, const float* b, float* c, int K, int M, int N,
                  uint32_t threads) {
  const int mBlocks = (M + kMr - 1) / kMr;
  const int nBlocks = (N + kNr - 1) / kNr;
  // A packed once: panel i holds rows [6i, 6i + 6) of the output as [k][6], zero-padded.
  std::vector<float> ap(size_t(mBlocks) * size_t(K) * kMr, 0.0f);
  for (int ib = 0; ib < mBlocks; ++ib) {
    const int m0 = ib * kMr, mr = std::min(kMr, M - m0);
    float* panel = ap.data() + size_t(ib) * size_t(K) * kMr;
    for (int k = 0; k < K; ++k)
      std::memcpy(panel + size_t(k) * kMr, a + int64_t(k) * M + m0, size_t(mr) * sizeof(float));
  }
  // One task per column panel of 16: pack B's panel, then run down all row blocks.
  support::parallelFor(size_t(nBlocks), threads, [&](size_t jb) {
    const int n0 = int(jb) * kNr, nr = std::min(kNr, N - n0);
    std::vector<float> bp(size_t(K) * kNr, 0.0f);
    for (int k = 0; k < K; ++k)
      std::memcpy(bp.data() + size_t(k) * kNr, b + int64_t(k) * N + n0, size_t(nr) * sizeof(float));
    float edge[kMr * kNr];
    for (int ib = 0; ib < mBlocks; ++ib) {
      const int m0 = ib * kMr, mr = std::min(kMr, M - m0);
      const float* panel = ap.data() + size_t(ib) * size_t(K) * kMr;
      float* out = c + int64_t(m0) * N + n0;
      if (mr == kMr && nr == kNr) {
        kernel(panel, bp.data(), K, out, N);
      } else {
        kernel(panel, bp.data(), K, edge, kNr);
        for (int i = 0; i < mr; ++i)
          std::memcpy(out + int64_t(i) * N, edge + i * kNr, size_t(nr) * sizeof(float));
      }
    }
  });
}

void matmulSkipZero(const float* a, const float* b, float* c, int K, int M, int N) {
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      // The first term initialises the sum, so a lone -0.0 or NaN passes through unchanged.
      float acc = 0.0f;
      bool any = false;
      for (int k = 0; k < K; ++k) {
        const float bv = b[int64_t(k) * N + n];
        if (bv == 0.0f) continue;
        const float term = a[int64_t(k) * M + m] * bv;
        acc = any ? acc + term : term;
        any = true;
      }
      c[int64_t(m) * N + n] = acc;
    }
  }
}

}  // namespace

void matmulF32(const float* a, const float* b, float* c, int K, int M, int N, bool skipZeroB,
               bool exactProducts, uint32_t threads) {
  if (skipZeroB) {
    matmulSkipZero(a, b, c, K, M, N);
    return;
  }
  (void)exactProducts;  // no FMA version (see the top of this file)
  matmulPacked(pickKernel(), a, b, c, K, M, N, threads);
}

}  // namespace trnsim::sim::detail
