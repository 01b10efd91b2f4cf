// emitMatmulAB (operands in PyTorch layouts, any shape) against a double-precision host loop on
// the same rounded inputs, run on the functional simulator; its TensorE utilization at
// 1024^3 bf16 next to emitMatmul's; and HBM views (KernelBuilder::hbmView) as operands.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "trnsim/kernels/matmul.h"

namespace trnsim {
namespace {

using numerics::DType;
using Transpose = kernels::MatmulTiling::Transpose;

/// Uniform values in [-1, 1) rounded to `dtype` (through the dtype's own conversion).
std::vector<float> randomIn(size_t n, uint32_t seed, DType dtype) {
  auto v = kernels::testing::randomValues(n, seed, DType::kFP32);
  if (dtype == DType::kFP32) return v;
  std::vector<std::byte> raw(n * numerics::dtypeSize(dtype));
  numerics::convertFromFloat(dtype, v.data(), raw.data(), n);
  numerics::convertToFloat(dtype, raw.data(), v.data(), n);
  return v;
}

/// Unit roundoff of one rounding to `dtype`.
double unitRoundoff(DType t) {
  switch (t) {
    case DType::kFP32:
      return std::ldexp(1.0, -24);
    case DType::kBF16:
      return std::ldexp(1.0, -8);
    case DType::kFP16:
      return std::ldexp(1.0, -11);
    case DType::kFP8E4M3:
      return std::ldexp(1.0, -4);
    default:
      return std::ldexp(1.0, -3);
  }
}

struct Case {
  const char* chip = "trn2";
  int64_t batch = 1;  ///< 1 = 2-D operands
  int64_t m = 1, k = 1, n = 1;
  bool batchedB = false;
  bool transposeA = false;  ///< a is [K, M] (A^T as stored)
  bool transposeB = false;
  DType in = DType::kBF16, out = DType::kFP32;
  kernels::MatmulTiling tiling = {};
  uint64_t sbufFreeBytes = 0;  ///< if set, SBUF bytes per partition left to the kernel

  // What a case changes from mnk()'s defaults, one call each, so that a case fits on a line.
  Case batched(int64_t count, bool bBatched = false) const {
    return with(&Case::batch, count).with(&Case::batchedB, bBatched);
  }
  Case aT() const { return with(&Case::transposeA, true); }
  Case bT() const { return with(&Case::transposeB, true); }
  Case dtypes(DType inputs, DType output = DType::kFP32) const {
    return with(&Case::in, inputs).with(&Case::out, output);
  }
  Case tiled(const kernels::MatmulTiling& t) const { return with(&Case::tiling, t); }
  Case sbufFree(uint64_t bytes) const { return with(&Case::sbufFreeBytes, bytes); }

  template <class T>
  Case with(T Case::*field, const T& value) const {
    Case c = *this;
    c.*field = value;
    return c;
  }
};

/// A 2-D bf16 -> fp32 case of [m, k] x [k, n] on `chip`, default tiling, all of SBUF.
Case mnk(const char* chip, int64_t m, int64_t k, int64_t n) {
  return {.chip = chip, .m = m, .k = k, .n = n};
}

/// matmulABProgram's program, with all but c.sbufFreeBytes of SBUF taken first if that is set.
Expected<isa::Program> buildProgram(const arch::ChipConfig& cfg, const Case& c,
                                    const std::vector<int64_t>& aShape,
                                    const std::vector<int64_t>& bShape) {
  if (c.sbufFreeBytes == 0)
    return kernels::matmulABProgram(cfg, aShape, bShape, c.in, c.out,
                                    {.transposeA = c.transposeA, .transposeB = c.transposeB},
                                    c.tiling);
  isa::KernelBuilder b(cfg, "matmul_ab_small_sbuf");
  const int64_t taken = int64_t(cfg.mem.sbufBytesPerPartition - c.sbufFreeBytes) / 4;
  (void)b.sbuf("taken", DType::kFP32, {128, taken});
  std::vector<int64_t> outShape = aShape;
  outShape[outShape.size() - 2] = c.m;
  outShape.back() = c.n;
  auto a = b.hbm("a", c.in, aShape, isa::TensorKind::kInput);
  auto bm = b.hbm("b", c.in, bShape, isa::TensorKind::kInput);
  auto out = b.hbm("out", c.out, outShape, isa::TensorKind::kOutput);
  EXPECT_EQ(b.sbufFreeBytes(), c.sbufFreeBytes);
  TRNSIM_RETURN_IF_ERROR(kernels::emitMatmulAB(
      b, a, bm, out, {.transposeA = c.transposeA, .transposeB = c.transposeB}, c.tiling));
  return b.finish();
}

std::string describe(const Case& c) {
  return fmt::format("{} batch {}{} {}x{}x{} {}{}{} -> {} tiling {}/{}/{} transpose {}", c.chip,
                     c.batch, c.batchedB ? " (b batched)" : "", c.m, c.k, c.n,
                     numerics::dtypeName(c.in), c.transposeA ? " a^T" : "",
                     c.transposeB ? " b^T" : "", numerics::dtypeName(c.out), c.tiling.tilesInBlockM,
                     c.tiling.tilesInBlockN, c.tiling.tilesInBlockK, int(c.tiling.transpose));
}

struct Errors {
  double maxOverBound = 0;        ///< max |out - ref| / allowed error (must stay <= 1)
  double maxRel = 0;              ///< max |out - ref| / |ref| over elements with |ref| >= 1e-3
  double maxNormalized = 0;       ///< max |out - ref| / sum_k |a b|
  double maxAbs = 0, maxRef = 0;  ///< max |out - ref|, max |ref|
};

/// Runs one case functionally and compares every element with the double-precision product of
/// the same rounded inputs. Allowed error: fp32 accumulation of K products, in any order
/// (|err| <= (K + 1) u32 sum |a b|, one more u32 when fp32 inputs' products round), plus one
/// rounding to out's dtype (u_out |ref|), with 1 % margin.
Errors runCase(const Case& c) {
  SCOPED_TRACE(describe(c));
  const auto cfg = kernels::testing::chip(c.chip);
  std::vector<int64_t> aShape = c.transposeA ? std::vector<int64_t>{c.k, c.m}
                                             : std::vector<int64_t>{c.m, c.k},
                       bShape = c.transposeB ? std::vector<int64_t>{c.n, c.k}
                                             : std::vector<int64_t>{c.k, c.n};
  if (c.batch > 1) {
    aShape.insert(aShape.begin(), c.batch);
    if (c.batchedB) bShape.insert(bShape.begin(), c.batch);
  }
  auto prog = buildProgram(cfg, c, aShape, bShape);
  EXPECT_TRUE(prog.hasValue()) << prog.status().toString();
  if (!prog.hasValue()) return {};
  const int64_t gb = c.batchedB ? c.batch : 1;
  auto a = randomIn(size_t(c.batch * c.m * c.k), 11, c.in);
  auto bv = randomIn(size_t(gb * c.k * c.n), 12, c.in);
  auto out = kernels::testing::runFunctional(cfg, *prog, {{"a", &a}, {"b", &bv}}, "out");
  EXPECT_EQ(out.size(), size_t(c.batch * c.m * c.n));
  if (out.size() != size_t(c.batch * c.m * c.n)) return {};
  const double u32 = std::ldexp(1.0, -24), uOut = unitRoundoff(c.out);
  const double gamma = double(c.k + (c.in == DType::kFP32 ? 2 : 1)) * u32;
  Errors e;
  int reported = 0;
  std::vector<double> bt(size_t(c.n * c.k));  // B^T of the batch: row j = column j of B
  std::vector<float> ag(size_t(c.m * c.k));   // A of the batch, [M, K]
  for (int64_t g = 0; g < c.batch; ++g) {
    const float* ab = a.data() + g * c.m * c.k;
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t k = 0; k < c.k; ++k)
        ag[size_t(i * c.k + k)] = c.transposeA ? ab[k * c.m + i] : ab[i * c.k + k];
    const float* bg = bv.data() + (c.batchedB ? g : 0) * c.k * c.n;
    for (int64_t j = 0; j < c.n; ++j)
      for (int64_t k = 0; k < c.k; ++k)
        bt[size_t(j * c.k + k)] = c.transposeB ? bg[j * c.k + k] : bg[k * c.n + j];
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < c.n; ++j) {
        double ref = 0, absSum = 0;
        const float* ai = ag.data() + i * c.k;
        const double* bj = bt.data() + j * c.k;
        for (int64_t k = 0; k < c.k; ++k) {
          const double p = double(ai[k]) * bj[k];
          ref += p;
          absSum += std::abs(p);
        }
        const double got = out[size_t((g * c.m + i) * c.n + j)];
        const double err = std::abs(got - ref);
        const double bound =
            1.01 * (gamma * absSum + uOut * (std::abs(ref) + gamma * absSum)) + 1e-30;
        e.maxOverBound = std::max(e.maxOverBound, err / bound);
        if (std::abs(ref) >= 1e-3) e.maxRel = std::max(e.maxRel, err / std::abs(ref));
        if (absSum > 0) e.maxNormalized = std::max(e.maxNormalized, err / absSum);
        e.maxAbs = std::max(e.maxAbs, err);
        e.maxRef = std::max(e.maxRef, std::abs(ref));
        if (err > bound && reported++ < 5)
          ADD_FAILURE() << "out[" << g << ", " << i << ", " << j << "] = " << got << ", expected "
                        << ref << " (bound " << bound << ")";
      }
    }
  }
  return e;
}

const int64_t kSizes[] = {1, 5, 127, 128, 129, 300, 513};

// Each of M, K, N over the odd sizes with the other two fixed, on both chips: trn2 transposes A
// by DMA (kAuto), trn1 on TensorE (it has no DMA transpose).
TEST(MatmulABKernel, OddShapesBf16) {
  for (const char* chip : {"trn2", "trn1"}) {
    for (int64_t v : kSizes) {
      runCase(mnk(chip, v, 129, 300));
      runCase(mnk(chip, 129, v, 127));
      runCase(mnk(chip, 127, 300, v));
    }
  }
}

TEST(MatmulABKernel, OddShapesTensorEngineTransposeOnTrn2) {
  for (int64_t v : kSizes) {
    runCase(mnk("trn2", v, 300, 129).tiled({.transpose = Transpose::kTensorEngine}));
    runCase(mnk("trn2", 300, v, 5).tiled({.transpose = Transpose::kTensorEngine}));
  }
}

TEST(MatmulABKernel, OddShapesFp32) {
  for (const char* chip : {"trn2", "trn1"}) {
    for (int64_t v : {int64_t(1), int64_t(127), int64_t(129), int64_t(513)}) {
      runCase(mnk(chip, v, 300, 129).dtypes(DType::kFP32));
      runCase(mnk(chip, 129, v, 300).dtypes(DType::kFP32));
    }
  }
}

TEST(MatmulABKernel, BatchedAndSharedB) {
  for (const char* chip : {"trn2", "trn1"}) {
    for (bool batchedB : {false, true}) {
      runCase(mnk(chip, 129, 300, 127).batched(3, batchedB));
      runCase(mnk(chip, 5, 513, 129).batched(3, batchedB).dtypes(DType::kFP32));
    }
  }
}

TEST(MatmulABKernel, TransposedB) {
  for (const char* chip : {"trn2", "trn1"}) {
    runCase(mnk(chip, 300, 129, 513).bT());
    runCase(mnk(chip, 1, 513, 5).bT().dtypes(DType::kFP32));
    runCase(mnk(chip, 127, 300, 129).batched(3, true).bT());
    runCase(mnk(chip, 129, 128, 300).batched(3).bT().dtypes(DType::kBF16, DType::kBF16));
  }
  runCase(mnk("trn2", 300, 513, 129).bT().tiled({.transpose = Transpose::kTensorEngine}));
}

// Small forced blocks: several M, N and K blocks with ragged last blocks, fp32 partial sums
// across K blocks, and the transposes of later blocks interleaved with the matmuls.
TEST(MatmulABKernel, ForcedSmallBlocks) {
  const kernels::MatmulTiling one{.tilesInBlockM = 1, .tilesInBlockN = 1, .tilesInBlockK = 1};
  for (const char* chip : {"trn2", "trn1"}) {
    runCase(mnk(chip, 300, 300, 1100).tiled(one));
    runCase(mnk(chip, 513, 129, 600).bT().tiled(one));
    runCase(mnk(chip, 129, 513, 513)
                .batched(3, true)
                .dtypes(DType::kBF16, DType::kBF16)
                .tiled({.tilesInBlockM = 1, .tilesInBlockN = 2, .tilesInBlockK = 2}));
  }
  runCase(mnk("trn2", 300, 700, 520)
              .bT()
              .tiled({.tilesInBlockM = 2,
                      .tilesInBlockN = 1,
                      .tilesInBlockK = 3,
                      .transpose = Transpose::kTensorEngine}));
  // K in one block: A^T kept for all N blocks of an M block; B (B^T) kept across M blocks when
  // N is one block, reloaded per batch when b is batched.
  for (const char* chip : {"trn2", "trn1"}) {
    runCase(mnk(chip, 300, 300, 1100).tiled({.tilesInBlockM = 1, .tilesInBlockN = 1}));
    runCase(mnk(chip, 300, 200, 300).batched(3, true).bT().tiled({.tilesInBlockM = 1}));
  }
}

// With 24 KiB of SBUF per partition left, the blocks shrink and K is accumulated over several
// blocks in fp32; with too little the kernel says so.
TEST(MatmulABKernel, FitsTheFreeSbuf) {
  for (const char* chip : {"trn2", "trn1"}) {
    runCase(mnk(chip, 200, 1100, 520).dtypes(DType::kFP32).sbufFree(24 * 1024));
    runCase(mnk(chip, 130, 900, 600).bT().sbufFree(24 * 1024));
  }
  const auto cfg = kernels::testing::chip("trn2");
  // The fp32 partial sums are folded with tensor_tensor adds: K spans several blocks.
  const Case c = mnk("trn2", 200, 1100, 520).dtypes(DType::kFP32).sbufFree(24 * 1024);
  auto prog = buildProgram(cfg, c, {c.m, c.k}, {c.k, c.n});
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  EXPECT_TRUE(std::any_of(prog->instructions.begin(), prog->instructions.end(),
                          [](const auto& i) { return i.opcode == isa::Opcode::kTensorTensor; }));
  isa::KernelBuilder b(cfg, "full");
  (void)b.sbuf("taken", DType::kFP32, {128, int64_t(cfg.mem.sbufBytesPerPartition / 4) - 256});
  auto a = b.hbm("a", DType::kBF16, {128, 128}, isa::TensorKind::kInput);
  auto w = b.hbm("w", DType::kBF16, {128, 512}, isa::TensorKind::kInput);
  auto o = b.hbm("o", DType::kBF16, {128, 512}, isa::TensorKind::kOutput);
  EXPECT_EQ(kernels::emitMatmulAB(b, a, w, o).code(), ErrorCode::kCapacity);
}

TEST(MatmulABKernel, Fp16AndFp8Inputs) {
  runCase(mnk("trn2", 129, 300, 127).dtypes(DType::kFP16, DType::kFP16));
  runCase(mnk("trn1", 129, 300, 127).bT().dtypes(DType::kFP16));
  // fp8 has no DMA transpose (1-byte elements): TensorE on both chips.
  runCase(mnk("trn2", 129, 300, 127).bT().dtypes(DType::kFP8E4M3));
  runCase(mnk("trn1", 5, 129, 513).dtypes(DType::kFP8E5M2));
}

// a [..., K, M] (a weight gradient's X^T) is loaded as stored: every shape class of the cases
// above (odd sizes, batches with shared and batched B, b^T too, several K blocks, little SBUF),
// against the host loop on A = a^T.
TEST(MatmulABKernel, TransposedA) {
  const kernels::MatmulTiling one{.tilesInBlockM = 1, .tilesInBlockN = 1, .tilesInBlockK = 1};
  for (const char* chip : {"trn2", "trn1"}) {
    for (int64_t v : kSizes) {
      runCase(mnk(chip, v, 129, 300).aT());
      runCase(mnk(chip, 129, v, 127).aT());
      runCase(mnk(chip, 127, 300, v).aT());
    }
    for (int64_t v : {int64_t(1), int64_t(129), int64_t(513)})
      runCase(mnk(chip, v, 300, 129).aT().dtypes(DType::kFP32));
    for (bool batchedB : {false, true}) {
      runCase(mnk(chip, 129, 300, 127).batched(3, batchedB).aT());
      runCase(mnk(chip, 5, 513, 129).batched(3, batchedB).aT().bT().dtypes(DType::kFP32));
    }
    runCase(mnk(chip, 300, 129, 513).aT().bT());
    runCase(mnk(chip, 300, 300, 1100).aT().dtypes(DType::kBF16, DType::kBF16).tiled(one));
    // A shared B over batches of A^T with several N and K blocks: B reloaded per batch.
    runCase(mnk(chip, 129, 513, 600).batched(2).aT().bT().tiled(one));
    runCase(mnk(chip, 200, 1100, 520).aT().dtypes(DType::kFP32).sbufFree(24 * 1024));
  }
  runCase(mnk("trn2", 129, 300, 127).aT().dtypes(DType::kFP8E4M3));
}

// With a^T and b as stored nothing is transposed: no dma_transpose, no TensorE transpose, just
// loads and matmuls (the TensorE-transposed A of the default layout needs both elsewhere).
TEST(MatmulABKernel, TransposedAIsNotTransposedOnChip) {
  for (const char* chip : {"trn2", "trn1"}) {
    const auto cfg = kernels::testing::chip(chip);
    for (bool transposeA : {true, false}) {
      auto prog = kernels::matmulABProgram(
          cfg, transposeA ? std::vector<int64_t>{300, 200} : std::vector<int64_t>{200, 300},
          {300, 520}, DType::kBF16, DType::kBF16, {.transposeA = transposeA});
      ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
      const auto transposes =
          std::count_if(prog->instructions.begin(), prog->instructions.end(), [](const auto& i) {
            return i.opcode == isa::Opcode::kDmaTranspose || i.opcode == isa::Opcode::kNcTranspose;
          });
      if (transposeA)
        EXPECT_EQ(transposes, 0) << chip;
      else
        EXPECT_GT(transposes, 0) << chip;
    }
  }
  // The shapes are read in the transposed layout: a [K, M] with K = 32 against b [32, 16].
  auto prog = kernels::matmulABProgram(kernels::testing::chip("trn2"), {32, 64}, {31, 16},
                                       DType::kBF16, DType::kBF16, {.transposeA = true});
  ASSERT_FALSE(prog.hasValue());
  EXPECT_EQ(prog.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(prog.status().message().find("[..., K, M]"), std::string::npos)
      << prog.status().toString();
}

// fp32 operands are not rounded by the simulated TensorE (sim/functional_matmul.cpp): fp32
// products, fp32 sums in increasing k (in 4x the bf16 time). At K = 256 the error against
// double precision is that of fp32 accumulation, where a bf16 (tf32) rounding of the operands
// would leave ~2^-9 (2^-12) of sum |a b|.
TEST(MatmulABKernel, Fp32OperandsKeepFp32Precision) {
  for (const char* chip : {"trn2", "trn1"}) {
    const Errors e = runCase(mnk(chip, 128, 256, 512).dtypes(DType::kFP32));
    std::printf(
        "%s fp32 128x256x512 (inputs uniform in [-1, 1)): max |err| = %.3g = %.3g of "
        "max |ref|; max |err| / sum_k |a b| = %.3g; max |err| / |ref| = %.3g over "
        "|ref| >= 1e-3 (cancellation)\n",
        chip, e.maxAbs, e.maxAbs / e.maxRef, e.maxNormalized, e.maxRel);
    RecordProperty(std::string(chip) + "_fp32_max_error_over_sum_abs",
                   std::to_string(e.maxNormalized));
    EXPECT_LT(e.maxNormalized, 1e-6);
  }
}

TEST(MatmulABKernel, RejectsBadOperands) {
  const auto cfg = kernels::testing::chip("trn2");
  auto prog = kernels::matmulABProgram(cfg, {3, 64, 32}, {2, 32, 16});  // batch 3 vs 2
  ASSERT_FALSE(prog.hasValue());
  EXPECT_EQ(prog.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(prog.status().message().find("'b'"), std::string::npos);
  prog = kernels::matmulABProgram(cfg, {64, 32}, {31, 16});  // K 32 vs 31
  ASSERT_FALSE(prog.hasValue());
  EXPECT_EQ(prog.status().code(), ErrorCode::kInvalidArgument);
  prog = kernels::matmulABProgram(kernels::testing::chip("trn1"), {64, 32}, {32, 16}, DType::kBF16,
                                  DType::kBF16, {}, {.transpose = Transpose::kDma});
  ASSERT_FALSE(prog.hasValue());
  EXPECT_EQ(prog.status().code(), ErrorCode::kUnsupported);
  {
    isa::KernelBuilder b(cfg, "mixed");
    auto a = b.hbm("a", DType::kFP32, {64, 32}, isa::TensorKind::kInput);
    auto w = b.hbm("w", DType::kBF16, {32, 16}, isa::TensorKind::kInput);
    auto o = b.hbm("o", DType::kFP32, {64, 16}, isa::TensorKind::kOutput);
    const Status s = kernels::emitMatmulAB(b, a, w, o);
    EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  }
}

// The operands may be HBM views: here slices of one packed input buffer, at element offsets.
TEST(MatmulABKernel, OperandsMayBeHbmViews) {
  const auto cfg = kernels::testing::chip("trn1");
  const int64_t M = 130, K = 70, N = 40;
  isa::KernelBuilder b(cfg, "views");
  auto packed = b.hbm("packed", DType::kFP32, {7 + M * K + K * N}, isa::TensorKind::kInput);
  auto a = b.hbmView(packed, "a_view", DType::kFP32, {M, K}, 7);
  auto w = b.hbmView(packed, "w_view", DType::kFP32, {N, K}, 7 + M * K);  // a weight [N, K]
  auto out = b.hbm("out", DType::kFP32, {M, N}, isa::TensorKind::kOutput);
  ASSERT_TRUE(b.status().isOk()) << b.status().toString();
  ASSERT_TRUE(kernels::emitMatmulAB(b, a, w, out, {.transposeB = true}).isOk())
      << b.status().toString();
  auto prog = b.finish();
  ASSERT_TRUE(prog.hasValue()) << prog.status().toString();
  auto data = randomIn(size_t(7 + M * K + K * N), 5, DType::kFP32);
  (void)kernels::testing::runTiming(cfg, *prog);  // the timing model takes the views too
  auto got = kernels::testing::runFunctional(cfg, *prog, {{"packed", &data}}, "out");
  ASSERT_EQ(got.size(), size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0, absSum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(data[size_t(7 + i * K + k)]) * data[size_t(7 + M * K + j * K + k)];
        ref += p;
        absSum += std::abs(p);
      }
      ASSERT_NEAR(got[size_t(i * N + j)], ref, double(K + 2) * std::ldexp(1.0, -24) * absSum)
          << i << "," << j;
    }
}

struct Timed {
  double us = 0, utilization = 0;
};

Timed timeProgram(const arch::ChipConfig& cfg, Expected<isa::Program> prog, double flops) {
  EXPECT_TRUE(prog.hasValue()) << prog.status().toString();
  if (!prog.hasValue()) return {};
  auto run = kernels::testing::runTiming(cfg, std::move(*prog));
  return {run.simulatedNs * 1e-3, flops / (cfg.peakBf16FlopsPerCore() * run.simulatedNs * 1e-9)};
}

// 1024^3 bf16 on one trn2 core, timing only: emitMatmulAB with A transposed by DMA (the default
// there) and on TensorE, next to emitMatmul, which is handed A^T already in HBM.
TEST(MatmulABKernelTiming, Trn2Bf16Square1024) {
  const int64_t S = 1024;
  const double flops = 2.0 * S * S * S;
  const auto cfg = kernels::testing::chip("trn2");
  const Timed ref = timeProgram(cfg, kernels::matmulProgram(cfg, S, S, S), flops);
  const Timed viaDma = timeProgram(cfg, kernels::matmulABProgram(cfg, {S, S}, {S, S}), flops);
  const Timed viaPe =
      timeProgram(cfg,
                  kernels::matmulABProgram(cfg, {S, S}, {S, S}, DType::kBF16, DType::kBF16, {},
                                           {.transpose = Transpose::kTensorEngine}),
                  flops);
  std::printf(
      "trn2 1024^3 bf16: emitMatmul %.1f us (%.1f%% of TensorE peak); emitMatmulAB "
      "dma_transpose %.1f us (%.1f%%), TensorE transposes %.1f us (%.1f%%)\n",
      ref.us, 100 * ref.utilization, viaDma.us, 100 * viaDma.utilization, viaPe.us,
      100 * viaPe.utilization);
  RecordProperty("emit_matmul_pe_utilization", std::to_string(ref.utilization));
  RecordProperty("pe_utilization", std::to_string(viaDma.utilization));
  RecordProperty("pe_utilization_tensor_engine_transposes", std::to_string(viaPe.utilization));
  // Pipeline fill and drain (~1.3 us DMA latency each way) weigh on a 27 us problem; the
  // kernel must still beat emitMatmul, which waits for whole K blocks before its first matmul.
  EXPECT_GE(viaDma.utilization, 0.72);
  EXPECT_GE(viaPe.utilization, 0.65);
  EXPECT_GT(viaDma.utilization, ref.utilization);
}

// Larger shapes for docs/kernels.md: square 4096^3 and a linear layer (x [2048, 4096] @ W^T with
// W [11264, 4096]) on trn2, and trn1 (TensorE transposes only) at 4096 x 8192 x 8192; both with
// a given as A^T (transposeA: nothing to transpose).
TEST(MatmulABKernelTiming, LargerShapes) {
  struct Shape {
    const char* chip;
    int64_t m, k, n;
    bool transposeB;
    Transpose transpose;
    bool transposeA = false;
  };
  const Shape shapes[] = {
      {"trn2", 4096, 4096, 4096, false, Transpose::kAuto},
      {"trn2", 4096, 4096, 4096, false, Transpose::kTensorEngine},
      {"trn2", 2048, 4096, 11264, true, Transpose::kAuto},
      {"trn2", 2048, 4096, 11264, true, Transpose::kTensorEngine},
      {"trn1", 4096, 8192, 8192, false, Transpose::kAuto},
      {"trn1", 4096, 8192, 8192, true, Transpose::kAuto},
      {"trn2", 4096, 4096, 4096, false, Transpose::kAuto, true},
      {"trn1", 4096, 8192, 8192, false, Transpose::kAuto, true},
  };
  for (const Shape& s : shapes) {
    const auto cfg = kernels::testing::chip(s.chip);
    const Timed t = timeProgram(
        cfg,
        kernels::matmulABProgram(
            cfg, s.transposeA ? std::vector<int64_t>{s.k, s.m} : std::vector<int64_t>{s.m, s.k},
            s.transposeB ? std::vector<int64_t>{s.n, s.k} : std::vector<int64_t>{s.k, s.n},
            DType::kBF16, DType::kBF16, {.transposeA = s.transposeA, .transposeB = s.transposeB},
            {.transpose = s.transpose}),
        2.0 * double(s.m) * double(s.k) * double(s.n));
    const bool viaDma = s.transpose == Transpose::kAuto && cfg.dma.supportsTranspose();
    std::printf("%s %ldx%ldx%ld bf16%s%s, %s: %.1f us, %.1f%% of TensorE peak\n", s.chip, long(s.m),
                long(s.k), long(s.n), s.transposeA ? " (a transposed)" : "",
                s.transposeB ? " (b transposed)" : "",
                s.transposeA ? "no transposes"
                : viaDma     ? "dma_transpose"
                             : "TensorE transposes",
                t.us, 100 * t.utilization);
    EXPECT_GE(t.utilization, s.transposeB && !viaDma ? 0.80 : 0.88) << s.chip << " " << s.m;
  }
}

}  // namespace
}  // namespace trnsim
