// The fp32 inner-product kernel behind nc_matmul. Register-blocked (4 rows of the output x 16
// columns kept in registers while k runs), compiled for baseline x86-64 and AVX2, picked at
// run time. Every output element is summed in increasing k with separate multiply and add
// (no FMA), so every version and every host gives the same bits.

#include <algorithm>
#include <cstring>

#include "trnsim/sim/functional_math.h"

namespace trnsim::sim::detail {
namespace {

constexpr int kMr = 4;   // output rows per block
constexpr int kNr = 16;  // output columns per block

// 8 floats as one GCC/Clang vector (one AVX register; two SSE registers on baseline x86-64).
typedef float Vec8 __attribute__((vector_size(32)));

// One kMr x kNr block: c[i][j] = sum_k a[k, m0 + i] * b[k, n0 + j], accumulators in registers.
[[gnu::always_inline]] inline void blockFull(const float* __restrict a, const float* __restrict b,
                                             float* __restrict c, int K, int M, int N, int m0,
                                             int n0) {
  static_assert(kNr == 16 && kMr == 4, "the block below is written for 4 x 16");
  Vec8 acc00 = {}, acc01 = {}, acc10 = {}, acc11 = {}, acc20 = {}, acc21 = {}, acc30 = {},
       acc31 = {};
  for (int k = 0; k < K; ++k) {
    const float* bk = b + int64_t(k) * N + n0;
    const float* ak = a + int64_t(k) * M + m0;
    Vec8 b0, b1;
    std::memcpy(&b0, bk, sizeof(Vec8));
    std::memcpy(&b1, bk + 8, sizeof(Vec8));
    const float x0 = ak[0], x1 = ak[1], x2 = ak[2], x3 = ak[3];
    const Vec8 a0 = {x0, x0, x0, x0, x0, x0, x0, x0}, a1 = {x1, x1, x1, x1, x1, x1, x1, x1},
               a2 = {x2, x2, x2, x2, x2, x2, x2, x2}, a3 = {x3, x3, x3, x3, x3, x3, x3, x3};
    acc00 += a0 * b0;
    acc01 += a0 * b1;
    acc10 += a1 * b0;
    acc11 += a1 * b1;
    acc20 += a2 * b0;
    acc21 += a2 * b1;
    acc30 += a3 * b0;
    acc31 += a3 * b1;
  }
  // Stored by name: taking the accumulators' addresses in a loop would keep them in memory.
  float* c0 = c + int64_t(m0) * N + n0;
  const int64_t ld = N;
  std::memcpy(c0, &acc00, sizeof(Vec8));
  std::memcpy(c0 + 8, &acc01, sizeof(Vec8));
  std::memcpy(c0 + ld, &acc10, sizeof(Vec8));
  std::memcpy(c0 + ld + 8, &acc11, sizeof(Vec8));
  std::memcpy(c0 + 2 * ld, &acc20, sizeof(Vec8));
  std::memcpy(c0 + 2 * ld + 8, &acc21, sizeof(Vec8));
  std::memcpy(c0 + 3 * ld, &acc30, sizeof(Vec8));
  std::memcpy(c0 + 3 * ld + 8, &acc31, sizeof(Vec8));
}

// Any block at the edges (rows < kMr or columns < kNr), element by element.
[[gnu::always_inline]] inline void blockEdge(const float* a, const float* b, float* c, int K, int M,
                                             int N, int m0, int mr, int n0, int nr) {
  for (int i = 0; i < mr; ++i) {
    for (int j = 0; j < nr; ++j) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) acc += a[int64_t(k) * M + m0 + i] * b[int64_t(k) * N + n0 + j];
      c[int64_t(m0 + i) * N + n0 + j] = acc;
    }
  }
}

[[gnu::always_inline]] inline void matmulBody(const float* a, const float* b, float* c, int K,
                                              int M, int N) {
  for (int m0 = 0; m0 < M; m0 += kMr) {
    const int mr = std::min(kMr, M - m0);
    for (int n0 = 0; n0 < N; n0 += kNr) {
      const int nr = std::min(kNr, N - n0);
      if (mr == kMr && nr == kNr) {
        blockFull(a, b, c, K, M, N, m0, n0);
      } else {
        blockEdge(a, b, c, K, M, N, m0, mr, n0, nr);
      }
    }
  }
}

void matmulBaseline(const float* a, const float* b, float* c, int K, int M, int N) {
  matmulBody(a, b, c, K, M, N);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TRNSIM_HAVE_AVX2_PATH 1
[[gnu::target("avx2")]] void matmulAvx2(const float* a, const float* b, float* c, int K, int M,
                                         int N) {
  matmulBody(a, b, c, K, M, N);
}
bool hostHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

#endif

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
               bool exactProducts) {
  (void)exactProducts;  // no FMA path yet: mul + add is exact-equivalent and host independent
  if (skipZeroB) {
    matmulSkipZero(a, b, c, K, M, N);
    return;
  }
#ifdef TRNSIM_HAVE_AVX2_PATH
  if (hostHasAvx2()) {
    matmulAvx2(a, b, c, K, M, N);
    return;
  }
#endif
  matmulBaseline(a, b, c, K, M, N);
}

}  // namespace trnsim::sim::detail
