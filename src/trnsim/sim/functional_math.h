#pragma once
// Scalar semantics shared by the functional interpreter: ALU operations on fp32 and on
// integers, activation functions, and the fp32 matmul kernel. Internal to the sim layer.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "trnsim/isa/instruction.h"
#include "trnsim/numerics/dtype.h"

namespace trnsim::sim::detail {

using isa::ActFunc;
using isa::AluOp;

/// True for the operators that work on bit patterns (bitwise and shifts).
inline bool isBitvecOp(AluOp op) {
  switch (op) {
    case AluOp::kBitwiseAnd:
    case AluOp::kBitwiseOr:
    case AluOp::kBitwiseXor:
    case AluOp::kShiftLeft:
    case AluOp::kShiftRight:
    case AluOp::kLogicalShiftRight:
      return true;
    default:
      return false;
  }
}

/// NaN-propagating max/min (numpy.maximum/minimum semantics).
inline float maxNan(float a, float b) { return (std::isnan(a) || a >= b) ? a : b; }
inline float minNan(float a, float b) { return (std::isnan(a) || a <= b) ? a : b; }

/// `a op b` in fp32. Comparison and logical operators give 1.0 or 0.0; bitwise operators on
/// this path act on the values converted to int32 (the integer path is used for integer tiles).
inline float aluF(AluOp op, float a, float b) {
  switch (op) {
    case AluOp::kBypass: return a;
    case AluOp::kAdd: return a + b;
    case AluOp::kSubtract: return a - b;
    case AluOp::kMultiply: return a * b;
    case AluOp::kDivide: return a / b;
    case AluOp::kMax: return maxNan(a, b);
    case AluOp::kMin: return minNan(a, b);
    case AluOp::kPow: return std::pow(a, b);
    case AluOp::kMod: {
      // numpy.mod: the result has the sign of the divisor.
      float r = std::fmod(a, b);
      if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
      return r;
    }
    case AluOp::kAbsMax: return maxNan(std::fabs(a), std::fabs(b));
    case AluOp::kAbsMin: return minNan(std::fabs(a), std::fabs(b));
    case AluOp::kIsEqual: return a == b ? 1.0f : 0.0f;
    case AluOp::kNotEqual: return a != b ? 1.0f : 0.0f;
    case AluOp::kIsGt: return a > b ? 1.0f : 0.0f;
    case AluOp::kIsGe: return a >= b ? 1.0f : 0.0f;
    case AluOp::kIsLt: return a < b ? 1.0f : 0.0f;
    case AluOp::kIsLe: return a <= b ? 1.0f : 0.0f;
    case AluOp::kLogicalAnd: return (a != 0.0f && b != 0.0f) ? 1.0f : 0.0f;
    case AluOp::kLogicalOr: return (a != 0.0f || b != 0.0f) ? 1.0f : 0.0f;
    case AluOp::kLogicalXor: return ((a != 0.0f) != (b != 0.0f)) ? 1.0f : 0.0f;
    case AluOp::kBitwiseAnd:
    case AluOp::kBitwiseOr:
    case AluOp::kBitwiseXor:
    case AluOp::kShiftLeft:
    case AluOp::kShiftRight:
    case AluOp::kLogicalShiftRight:
    case AluOp::kCount:
      break;
  }
  return std::numeric_limits<float>::quiet_NaN();
}

/// `a op b` on 64-bit integers holding the operands' values (signed types sign-extended,
/// unsigned zero-extended). `bits` is the width of the result type (for logical shifts).
inline int64_t aluI(AluOp op, int64_t a, int64_t b, int bits) {
  const uint64_t mask = bits >= 64 ? ~uint64_t(0) : ((uint64_t(1) << bits) - 1);
  const int sh = int(b & 63);
  switch (op) {
    case AluOp::kBypass: return a;
    case AluOp::kAdd: return int64_t(uint64_t(a) + uint64_t(b));
    case AluOp::kSubtract: return int64_t(uint64_t(a) - uint64_t(b));
    case AluOp::kMultiply: return int64_t(uint64_t(a) * uint64_t(b));
    case AluOp::kDivide: return b == 0 ? 0 : (a == INT64_MIN && b == -1 ? a : a / b);
    case AluOp::kMax: return a > b ? a : b;
    case AluOp::kMin: return a < b ? a : b;
    case AluOp::kPow: {
      int64_t r = 1;
      for (int64_t i = 0; i < b && i < 64; ++i) r = int64_t(uint64_t(r) * uint64_t(a));
      return b < 0 ? 0 : r;
    }
    case AluOp::kMod: {
      if (b == 0) return 0;
      int64_t r = (a == INT64_MIN && b == -1) ? 0 : a % b;
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    }
    case AluOp::kAbsMax: {
      const int64_t x = a < 0 ? -a : a, y = b < 0 ? -b : b;
      return x > y ? x : y;
    }
    case AluOp::kAbsMin: {
      const int64_t x = a < 0 ? -a : a, y = b < 0 ? -b : b;
      return x < y ? x : y;
    }
    case AluOp::kIsEqual: return a == b;
    case AluOp::kNotEqual: return a != b;
    case AluOp::kIsGt: return a > b;
    case AluOp::kIsGe: return a >= b;
    case AluOp::kIsLt: return a < b;
    case AluOp::kIsLe: return a <= b;
    case AluOp::kBitwiseAnd: return a & b;
    case AluOp::kBitwiseOr: return a | b;
    case AluOp::kBitwiseXor: return a ^ b;
    case AluOp::kLogicalAnd: return (a != 0 && b != 0) ? 1 : 0;
    case AluOp::kLogicalOr: return (a != 0 || b != 0) ? 1 : 0;
    case AluOp::kLogicalXor: return ((a != 0) != (b != 0)) ? 1 : 0;
    case AluOp::kShiftLeft: return b < 0 || b >= 64 ? 0 : int64_t(uint64_t(a) << sh);
    case AluOp::kShiftRight: return b < 0 || b >= 64 ? (a < 0 ? -1 : 0) : (a >> sh);
    case AluOp::kLogicalShiftRight:
      return b < 0 || b >= 64 ? 0 : int64_t((uint64_t(a) & mask) >> sh);
    case AluOp::kCount: break;
  }
  return 0;
}

/// Standard normal density and distribution, for gelu and its derivative.
inline float normPdf(float x) { return 0.3989422804014327f * std::exp(-0.5f * x * x); }
inline float normCdf(float x) { return 0.5f * (1.0f + std::erf(x * 0.70710678118654752f)); }

inline float sigmoidF(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float softplusF(float x) {
  // log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
  return std::fmax(x, 0.0f) + std::log1p(std::exp(-std::fabs(x)));
}

/// The ScalarE activation functions, in fp32.
inline float activate(ActFunc f, float x) {
  switch (f) {
    case ActFunc::kIdentity:
    case ActFunc::kCopy: return x;
    case ActFunc::kExp: return std::exp(x);
    case ActFunc::kLog: return std::log(x);
    case ActFunc::kTanh: return std::tanh(x);
    case ActFunc::kSigmoid: return sigmoidF(x);
    case ActFunc::kRelu: return std::isnan(x) ? x : (x > 0.0f ? x : 0.0f);
    case ActFunc::kGelu: return x * normCdf(x);
    case ActFunc::kGeluApproxTanh: {
      const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
      return 0.5f * x * (1.0f + std::tanh(inner));
    }
    case ActFunc::kSilu: return x * sigmoidF(x);
    case ActFunc::kSqrt: return std::sqrt(x);
    case ActFunc::kRsqrt: return 1.0f / std::sqrt(x);
    case ActFunc::kReciprocal: return 1.0f / x;
    case ActFunc::kSquare: return x * x;
    case ActFunc::kSin: return std::sin(x);
    case ActFunc::kCos: return std::cos(x);
    case ActFunc::kArctan: return std::atan(x);
    case ActFunc::kAbs: return std::fabs(x);
    case ActFunc::kSign: return std::isnan(x) ? x : (x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f));
    case ActFunc::kSoftplus: return softplusF(x);
    case ActFunc::kErf: return std::erf(x);
    case ActFunc::kMish: return x * std::tanh(softplusF(x));
    case ActFunc::kGeluDx: return normCdf(x) + x * normPdf(x);
    case ActFunc::kSiluDx: {
      const float s = sigmoidF(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case ActFunc::kCount: break;
  }
  return std::numeric_limits<float>::quiet_NaN();
}

/// One operand of matmulF32: rows of contiguous elements of `dtype`, row k starting at
/// `data + k * rowStride` bytes (a view of simulated memory, or a gathered fp32 array).
struct MatmulInput {
  const std::byte* data = nullptr;
  int64_t rowStride = 0;  ///< bytes
  numerics::DType dtype = numerics::DType::kFP32;
};

/// c[m * ldc + n] = sum_k a[k][m] * b[k][n] for k = 0..K-1 in increasing order, in fp32 (the
/// inputs converted from their dtypes), each product rounded before its add, so every host
/// gives the same bits; `accumulate`: c[m * ldc + n] + that sum instead. `skipZeroB`: terms
/// whose b is exactly zero are skipped (bit-accurate transpose through an identity matrix).
/// `threads`: host threads for the columns (0 = one per host core); the bits do not depend on
/// it. `c` must not overlap the inputs.
void matmulF32(const MatmulInput& a, const MatmulInput& b, float* c, int64_t ldc, int K, int M,
               int N, bool skipZeroB, bool accumulate, uint32_t threads = 1);

}  // namespace trnsim::sim::detail
