#pragma once
// Random programs for round-trip tests: every opcode, random engines, attributes, flags and
// access patterns, awkward tensor names and float bit patterns (NaN payloads, -0, subnormals).
// They are structurally sound (indices in range, slots in order) but not hardware-valid.

#include <bit>
#include <random>
#include <string>

#include "trnsim/isa/instruction.h"

namespace trnsim::isa::testing {

inline Program randomProgram(uint64_t seed, int numInstructions = 60) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  Program p;
  p.name = seed % 3 == 0 ? "kernel \"q\" \\ \n\t\x01 ü" : "rand_" + std::to_string(seed);
  p.target = seed % 2 ? "trn2" : "";
  static const char* const kNames[] = {"x", "acc", "w.T", "", "a b", "%#1", "dup", "dup",
                                       "ünï", "_t9", "#hash", "1abc"};
  int numTensors = int(pick(1, 12));
  for (int i = 0; i < numTensors; ++i) {
    TensorDecl t;
    t.name = kNames[pick(0, 11)];
    if (pick(0, 3) == 0) t.name += std::to_string(i);
    t.space = static_cast<MemSpace>(pick(0, 2));
    t.dtype = static_cast<DType>(pick(0, numerics::kNumDTypes - 1));
    t.kind = static_cast<TensorKind>(pick(0, 3));
    int rank = int(pick(0, 4));
    for (int d = 0; d < rank; ++d) t.shape.push_back(pick(-2, 4096));
    t.partitionStart = uint32_t(pick(0, 200));
    t.byteOffset = uint64_t(pick(0, INT64_MAX));
    if (pick(0, 3) == 0) {
      int64_t target = pick(0, numTensors - 1);
      if (target != i) t.aliasOf = uint32_t(target);
    }
    p.tensors.push_back(std::move(t));
  }
  int numLocs = int(pick(0, 4));
  if (pick(0, 4) == 0) p.locations[0] = {"zero.py", 7};
  for (int i = 0; i < numLocs; ++i)
    p.locations.push_back({i % 2 ? "kernel.py" : "dir/with \"quote\".py", uint32_t(pick(0, 1 << 30))});

  auto randomFloat = [&]() -> float {
    switch (pick(0, 7)) {
      case 0: return 0.0f;
      case 1: return -0.0f;
      case 2: return std::bit_cast<float>(uint32_t(pick(1, 0x007fffff)));         // subnormal
      case 3: return std::bit_cast<float>(uint32_t(0x7f800001u + pick(0, 1000))); // NaN payload
      case 4: return pick(0, 1) ? INFINITY : -INFINITY;
      case 5: return float(pick(-1000, 1000)) / 8.0f;
      default: return std::bit_cast<float>(uint32_t(pick(0, UINT32_MAX)));
    }
  };
  for (int i = 0; i < numInstructions; ++i) {
    Instruction in;
    in.opcode = static_cast<Opcode>(i < kNumOpcodes ? i : pick(0, kNumOpcodes - 1));
    const OpInfo& info = opInfo(in.opcode);
    in.engine = static_cast<Engine>(pick(0, arch::kNumEngines - 1));
    in.alu0 = static_cast<AluOp>(pick(0, int(AluOp::kCount) - 1));
    in.alu1 = static_cast<AluOp>(pick(0, int(AluOp::kCount) - 1));
    in.reduceOp = static_cast<AluOp>(pick(0, int(AluOp::kCount) - 1));
    in.act = static_cast<ActFunc>(pick(0, int(ActFunc::kCount) - 1));
    in.flags = uint16_t(pick(0, 3) == 0 ? pick(0, 0xffff) : info.flagMask & pick(0, 0xffff));
    in.queue = uint16_t(pick(0, 2) == 0 ? 0 : pick(0, 0xffff));
    in.loc = uint32_t(pick(0, int64_t(p.locations.size()) - 1));
    for (float& v : in.imm) v = randomFloat();
    for (int64_t& v : in.iarg) v = pick(0, 3) == 0 ? pick(INT64_MIN, INT64_MAX) : pick(-9, 9);
    for (uint8_t s = 0; s < info.numOperands; ++s) {
      if (info.operands[s].optional && pick(0, 1) == 0) continue;
      AccessPattern a;
      a.tensor = uint32_t(pick(0, numTensors - 1));
      a.partitionOffset = uint32_t(pick(0, 1) ? pick(0, 128) : pick(0, UINT32_MAX));
      a.partitions = uint32_t(pick(0, 1) ? pick(0, 128) : pick(0, UINT32_MAX));
      a.partitionStride = pick(0, 1) ? 1 : pick(INT64_MIN, INT64_MAX);
      a.offset = pick(0, 1) ? pick(-100, 100) : pick(INT64_MIN, INT64_MAX);
      a.numFree = uint8_t(pick(0, kMaxFreeDims));
      for (int k = 0; k < a.numFree; ++k)
        a.free[size_t(k)] = Dim{pick(-1000, 1000), pick(0, 1) ? pick(0, 512) : pick(INT64_MIN, INT64_MAX)};
      in.operands.push_back(Operand{s, a});
    }
    p.instructions.push_back(std::move(in));
  }
  return p;
}

}  // namespace trnsim::isa::testing
