#pragma once
// Helpers for the functional multi-chip tests: one-collective programs, seeded inputs, and
// host references computed with plain loops (fp32 accumulation in rank-list order, one
// rounding to the dtype), independently of the cluster's code.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "trnsim/arch/chip_config.h"
#include "trnsim/fabric/cluster.h"
#include "trnsim/isa/builder.h"
#include "trnsim/numerics/dtype.h"

namespace trnsim::fabric::testing {

inline const arch::ChipConfig& trn2Config() {
  static const arch::ChipConfig c = [] {
    auto r = arch::loadChip("trn2");
    EXPECT_TRUE(r.hasValue()) << (r.hasValue() ? "" : r.status().toString());
    return r.hasValue() ? *r : arch::ChipConfig{};
  }();
  return c;
}

/// A program with HBM input x[srcElems], output y[dstElems] (kInOut, so a rank a permute does
/// not target keeps what the host wrote) and one collective y <- x.
inline isa::Program oneCollective(isa::Opcode op, numerics::DType dt, int64_t srcElems,
                                  int64_t dstElems, std::vector<std::vector<uint32_t>> lists,
                                  isa::AluOp reduce = isa::AluOp::kAdd, uint32_t sendTo = 0,
                                  uint32_t recvFrom = 0) {
  isa::KernelBuilder kb(trn2Config(), "one_collective");
  auto x = kb.hbm("x", dt, {srcElems}, isa::TensorKind::kInput);
  auto y = kb.hbm("y", dt, {dstElems}, isa::TensorKind::kInOut);
  Status s;
  switch (op) {
    case isa::Opcode::kAllReduce:
      s = kb.allReduce(y.ap(), x.ap(), reduce, kb.replicaGroup(lists));
      break;
    case isa::Opcode::kAllGather: s = kb.allGather(y.ap(), x.ap(), kb.replicaGroup(lists)); break;
    case isa::Opcode::kReduceScatter:
      s = kb.reduceScatter(y.ap(), x.ap(), reduce, kb.replicaGroup(lists));
      break;
    case isa::Opcode::kAllToAll: s = kb.allToAll(y.ap(), x.ap(), kb.replicaGroup(lists)); break;
    case isa::Opcode::kCollectivePermute: {
      std::vector<std::pair<uint32_t, uint32_t>> pairs;
      for (const auto& l : lists) pairs.emplace_back(l.at(0), l.at(1));
      s = kb.collectivePermute(y.ap(), x.ap(), kb.permutePairs(pairs));
      break;
    }
    case isa::Opcode::kSendRecv: s = kb.sendRecv(y.ap(), x.ap(), sendTo, recvFrom); break;
    default: ADD_FAILURE() << "not a data collective"; break;
  }
  EXPECT_TRUE(s.isOk()) << s.toString();
  auto p = kb.finish();
  EXPECT_TRUE(p.hasValue()) << (p.hasValue() ? "" : p.status().toString());
  return p.hasValue() ? *p : isa::Program{};
}

/// Seeded values of rank `rank`, already rounded to `dt` (as floats).
inline std::vector<float> inputValues(uint32_t rank, int64_t n, numerics::DType dt,
                                      uint64_t salt = 0) {
  std::mt19937_64 rng(1000003ull * rank + 17 + salt);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    std::byte b[4];
    numerics::storeFromFloat(dt, u(rng), b);
    x = numerics::loadAsFloat(dt, b);
  }
  return v;
}

inline std::vector<std::byte> toBytes(const std::vector<float>& v, numerics::DType dt) {
  std::vector<std::byte> b(v.size() * numerics::dtypeSize(dt));
  for (size_t i = 0; i < v.size(); ++i)
    numerics::storeFromFloat(dt, v[i], b.data() + i * numerics::dtypeSize(dt));
  return b;
}

inline std::vector<float> toFloats(const std::vector<std::byte>& b, numerics::DType dt) {
  const size_t es = numerics::dtypeSize(dt);
  std::vector<float> v(b.size() / es);
  for (size_t i = 0; i < v.size(); ++i) v[i] = numerics::loadAsFloat(dt, b.data() + i * es);
  return v;
}

/// Bit pattern of v rounded to dt (for exact comparisons that also hold for -0 and NaN).
inline std::vector<std::byte> rounded(const std::vector<float>& v, numerics::DType dt) {
  return toBytes(v, dt);
}

/// The reference reduction: acc = x[list[0]]; acc = op(acc, x[list[k]]) for k = 1.., in fp32.
inline std::vector<float> referenceReduce(const std::vector<std::vector<float>>& x,
                                          const std::vector<uint32_t>& list, isa::AluOp op,
                                          size_t first, size_t count) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) {
    float acc = x[list[0]][first + i];
    for (size_t k = 1; k < list.size(); ++k) {
      const float v = x[list[k]][first + i];
      if (op == isa::AluOp::kAdd) acc = acc + v;
      else if (op == isa::AluOp::kMax) acc = v > acc ? v : acc;
      else acc = v < acc ? v : acc;
    }
    out[i] = acc;
  }
  return out;
}

/// Every rank-list of `lists` (all ranks when empty).
inline std::vector<std::vector<uint32_t>> expandLists(std::vector<std::vector<uint32_t>> lists,
                                                      uint32_t n) {
  if (!lists.empty()) return lists;
  std::vector<uint32_t> all(n);
  for (uint32_t i = 0; i < n; ++i) all[i] = i;
  return {all};
}

}  // namespace trnsim::fabric::testing
