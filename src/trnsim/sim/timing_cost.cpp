#include "trnsim/sim/timing_cost.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/format.h>

namespace trnsim::sim::detail {
namespace {

using isa::AccessPattern;
using isa::AluOp;
using isa::Opcode;
using numerics::DType;

uint32_t elemBytes(const isa::Program& program, const AccessPattern& ap) {
  return uint32_t(numerics::dtypeSize(program.tensors[ap.tensor].dtype));
}

bool inPsum(const isa::Program& program, const AccessPattern& ap) {
  return program.tensors[ap.tensor].space == isa::MemSpace::kPsum;
}

bool isHbm(const isa::Program& program, const AccessPattern& ap) {
  return program.tensors[ap.tensor].space == isa::MemSpace::kHbm;
}

/// Contiguous elements at the start of every row of an access pattern: the innermost free
/// dims merged while they are dense (and, for HBM, the partition dim too).
int64_t contiguousElements(const isa::Program& program, const AccessPattern& ap) {
  int64_t run = 1;
  int i = ap.numFree - 1;
  for (; i >= 0; --i) {
    const isa::Dim& d = ap.free[i];
    if (d.count == 1) continue;
    if (d.stride != run) break;
    run *= d.count;
  }
  if (i < 0 && isHbm(program, ap) && (ap.partitions == 1 || ap.partitionStride == run)) {
    run *= ap.partitions;
  }
  return run;
}

}  // namespace

double streamCycles(const arch::ChipConfig& chip, const isa::Program& program,
                    const isa::Instruction& inst) {
  const arch::StreamEngineConfig& eng = chip.stream(inst.engine);
  // N: the largest free size among the operands (the streamed data); P: partitions in lanes.
  int64_t n = 1;
  uint32_t p = 1;
  uint32_t widest = 1;
  bool allBf16 = !inst.operands.empty();
  bool anyPsumInput = false;
  const isa::OpInfo& info = isa::opInfo(inst.opcode);
  for (const isa::Operand& o : inst.operands) {
    n = std::max(n, o.ap.freeSize());
    p = std::max(p, o.ap.partitions);
    widest = std::max(widest, elemBytes(program, o.ap));
    if (program.tensors[o.ap.tensor].dtype != DType::kBF16) allBf16 = false;
    if (info.operands[o.slot].access != isa::Access::kWrite && inPsum(program, o.ap)) {
      anyPsumInput = true;
    }
  }
  // Input streams per output element, following the nki.isa cost column (trainium.md §3).
  double perElem = 1;
  double extra = 0;
  auto fastAlu = [](AluOp op) {
    return op == AluOp::kAdd || op == AluOp::kSubtract || op == AluOp::kMultiply;
  };
  switch (inst.opcode) {
    case Opcode::kTensorTensor:
      perElem = (anyPsumInput || (allBf16 && fastAlu(inst.alu0))) ? 1 : 2;
      break;
    case Opcode::kScalarTensorTensor:
    case Opcode::kTensorCopyPredicated:
      perElem = allBf16 ? 1 : 2;
      break;
    case Opcode::kTensorTensorScan:
    case Opcode::kSelectReduce:
      perElem = 2;
      break;
    case Opcode::kReciprocal:
      perElem = 8;
      break;
    case Opcode::kBnAggr:
      perElem = 13.0 / 3.0;
      break;
    case Opcode::kTensorReduce:
      perElem = (allBf16 && (inst.alu0 == AluOp::kAdd || inst.alu0 == AluOp::kMax)) ? 0.5 : 1;
      break;
    case Opcode::kMemset:
      perElem = (allBf16 && inst.imm[0] == 0.0f) ? 0.5 : 1;
      break;
    case Opcode::kActivation:
      if (inst.reduceOp != AluOp::kBypass) extra = 64;  // ActReadAccumulator
      break;
    case Opcode::kSetRngSeed:
    case Opcode::kRandSetState:
      perElem = 0;  // a few words per partition: the initiation floor
      break;
    default:
      break;
  }
  double passes = std::ceil(double(p) / std::max<uint32_t>(1, eng.lanes));
  double streamed = double(n) * perElem / eng.elemsPerCycle(widest);
  return eng.fixedOverheadCycles + passes * std::max<double>(eng.minCycles, streamed) + extra;
}

TensorCost tensorCost(const arch::ChipConfig& chip, const isa::Program& program,
                      const isa::Instruction& inst) {
  const arch::TensorEngineConfig& pe = chip.pe;
  TensorCost c;
  double nsPerCycle = 1.0 / pe.clockGhz;
  if (inst.opcode == Opcode::kNcTranspose) {
    // PE transpose: max(P, min(64, F)) cycles (nki.isa cost column).
    const AccessPattern* data = inst.operand(1);
    double pp = data ? data->partitions : 1;
    double f = data ? double(data->freeSize()) : 1;
    double cycles = std::max(pp, std::min<double>(pe.mmMinCycles, f));
    c.mmNs = (cycles + pe.fixedOverheadCycles) * nsPerCycle;
    return c;
  }
  const AccessPattern* st = inst.operand(1);
  const AccessPattern* mv = inst.operand(2);
  double k = st ? st->partitions : 1;
  double m = st ? double(st->freeSize()) : 1;
  double n = mv ? double(mv->freeSize()) : 1;
  bool doubleRow = inst.has(isa::kFlagDoubleRow);
  if (doubleRow) {  // stationary [K, 2, M], moving [K, 2, N]: K doubles in the same time
    k *= 2;
    m /= 2;
    n /= 2;
  }
  bool fp32 = (st && elemBytes(program, *st) == 4 &&
               program.tensors[st->tensor].dtype == DType::kFP32) ||
              (mv && elemBytes(program, *mv) == 4 &&
               program.tensors[mv->tensor].dtype == DType::kFP32);
  double passes = fp32 ? pe.fp32Slowdown : 1;
  double mmCycles = std::max<double>(n, pe.mmMinCycles) * passes + pe.fixedOverheadCycles;
  double lsCycles = std::ceil(m / std::max<uint32_t>(1, pe.loadStationarySpeedup)) * passes;
  c.mmNs = mmCycles * nsPerCycle;
  c.lsNs = lsCycles * nsPerCycle;
  c.hasStationary = true;
  if (!inst.has(isa::kFlagIsTranspose)) {
    c.flops = 2.0 * k * m * n;
    double peak = fp32 ? chip.peakFp32FlopsPerCore()
                       : doubleRow ? chip.peakFp8FlopsPerCore() : chip.peakBf16FlopsPerCore();
    c.atPeakNs = c.flops / peak * 1e9;
  }
  return c;
}

double coreDmaGbps(const arch::ChipConfig& chip) {
  return std::min(chip.dma.sustainedGbpsPerCore, chip.dma.peakGbpsPerCore());
}

DmaCost dmaCost(const arch::ChipConfig& chip, const isa::Program& program,
                const isa::Instruction& inst) {
  DmaCost c;
  c.fixedNs = chip.dma.fixedLatencyNs;
  const AccessPattern* dst = inst.operand(0);
  const AccessPattern* src = inst.operand(1);
  if (!dst || !src) return c;
  // An indirect-destination DMA's dst view is the whole table its rows land in; what moves is
  // the source.
  const AccessPattern* moved = inst.has(isa::kFlagIndirectDst) ? src : dst;
  uint64_t elems = uint64_t(std::max<int64_t>(0, moved->numElements()));
  uint64_t srcBytes = elems * elemBytes(program, *src);
  uint64_t dstBytes = elems * elemBytes(program, *dst);
  c.movedBytes = std::max(srcBytes, dstBytes);
  c.hbmReadBytes = isHbm(program, *src) ? srcBytes : 0;
  c.hbmWriteBytes = isHbm(program, *dst) ? dstBytes : 0;
  if (c.movedBytes == 0) return c;
  c.hbmPerMovedByte = double(c.hbmReadBytes + c.hbmWriteBytes) / double(c.movedBytes);

  // Descriptors: one per contiguous run on both sides; each engine takes some of them.
  bool indirect = inst.has(isa::kFlagIndirectSrc) || inst.has(isa::kFlagIndirectDst);
  int64_t runElems = std::min(contiguousElements(program, *src), contiguousElements(program, *dst));
  if (indirect) runElems = std::min<int64_t>(runElems, std::max<int64_t>(1, dst->freeSize()));
  uint32_t runBytes = uint32_t(std::min<int64_t>(int64_t(1) << 30, runElems)) *
                      std::min(elemBytes(program, *src), elemBytes(program, *dst));
  double descriptors = std::ceil(double(elems) / double(std::max<int64_t>(1, runElems)));
  double engines = std::min<double>(chip.dma.enginesPerCore, std::max(1.0, descriptors));
  double efficiency = 1;
  if (inst.opcode == Opcode::kDmaTranspose) {
    efficiency = isHbm(program, *src) ? chip.dma.transposeEfficiency
                                      : chip.dma.sbufTransposeEfficiency;
  } else if (chip.dma.minEfficientBytes > 0 && runBytes < chip.dma.minEfficientBytes) {
    // Each descriptor costs its bytes plus an overhead worth minEfficientBytes / 8 bytes,
    // normalised so that runs of minEfficientBytes and more move at the full rate.
    double overhead = chip.dma.minEfficientBytes / 8.0;
    double atMin = chip.dma.minEfficientBytes / (chip.dma.minEfficientBytes + overhead);
    efficiency = (runBytes / (runBytes + overhead)) / atMin;
  }
  c.capGbps = std::min(coreDmaGbps(chip), chip.dma.engineGbps * engines) * efficiency;
  return c;
}

Status checkTimingConfig(const arch::ChipConfig& chip) {
  auto bad = [&](const char* key) {
    return Status(ErrorCode::kConfig,
                  fmt::format("timing model needs a positive {}", key), chip.sourceFile);
  };
  if (!(chip.pe.clockGhz > 0)) return bad("pe.clock_ghz");
  if (!(chip.vector.clockGhz > 0)) return bad("vector.clock_ghz");
  if (!(chip.scalar.clockGhz > 0)) return bad("scalar.clock_ghz");
  if (!(chip.gpsimd.clockGhz > 0)) return bad("gpsimd.clock_ghz");
  if (!(chip.sync.clockGhz > 0)) return bad("sync.clock_ghz");
  for (const arch::StreamEngineConfig* e : {&chip.vector, &chip.scalar, &chip.gpsimd, &chip.sync}) {
    if (!(e->elemsPerCycle32 > 0 && e->elemsPerCycle16 > 0 && e->elemsPerCycle8 > 0)) {
      return bad("elems_per_cycle_* of every streaming engine");
    }
  }
  if (!(chip.dma.engineGbps > 0)) return bad("dma.engine_gbps");
  if (!(chip.dma.sustainedGbpsPerCore > 0)) return bad("dma.sustained_gbps_per_core");
  if (chip.dma.enginesPerCore == 0) return bad("dma.engines_per_core");
  if (chip.dma.queuesPerEngine == 0) return bad("dma.queues_per_engine");
  if (!(chip.mem.hbmGbps > 0)) return bad("memory.hbm_gbps");
  if (chip.pe.throttle.enabled && !(chip.pe.throttle.startFraction > 0)) {
    return bad("pe.throttle.start_fraction");
  }
  return Status::ok();
}

Status checkTimingProgram(const arch::ChipConfig& chip, const isa::Program& program) {
  for (size_t i = 0; i < program.instructions.size(); ++i) {
    TRNSIM_RETURN_IF_ERROR(checkTimingInstruction(chip, program, i));
  }
  return Status::ok();
}

Status checkTimingInstruction(const arch::ChipConfig& chip, const isa::Program& program,
                              size_t i) {
  const uint32_t queues = chip.dma.enginesPerCore * chip.dma.queuesPerEngine;
  {
    const isa::Instruction& inst = program.instructions[i];
    auto fail = [&](const std::string& what) {
      return Status(ErrorCode::kInvalidArgument, what, program.instructionContext(i));
    };
    if (static_cast<int>(inst.opcode) >= isa::kNumOpcodes) return fail("unknown opcode");
    const isa::OpInfo& info = isa::opInfo(inst.opcode);
    if (static_cast<int>(inst.engine) >= arch::kNumEngines ||
        (info.engineMask & (1u << static_cast<unsigned>(inst.engine))) == 0) {
      return fail(fmt::format("{} cannot run on engine {}", info.name, arch::engineName(inst.engine)));
    }
    for (const isa::Operand& o : inst.operands) {
      if (o.slot >= info.numOperands) return fail(fmt::format("operand slot {} out of range", o.slot));
      if (o.ap.tensor >= program.tensors.size()) {
        return fail(fmt::format("operand {} names tensor {} of {}", info.operands[o.slot].name,
                                o.ap.tensor, program.tensors.size()));
      }
      if (o.ap.numFree > isa::kMaxFreeDims) return fail("more than 4 free dims");
      for (int d = 0; d < o.ap.numFree; ++d) {
        if (o.ap.free[d].count < 0) return fail("negative free-dim count");
      }
    }
    uint32_t present = 0;
    for (const isa::Operand& o : inst.operands) present |= 1u << o.slot;
    for (uint8_t s = 0; s < info.numOperands; ++s) {
      if (!info.operands[s].optional && (present & (1u << s)) == 0) {
        return fail(fmt::format("missing operand {}", info.operands[s].name));
      }
    }
    if (inst.engine == arch::Engine::kDma) {
      if (inst.queue >= queues) {
        return fail(fmt::format("DMA queue {} out of range (the chip has {} per core)", inst.queue,
                                queues));
      }
      if (inst.opcode == Opcode::kDmaTranspose) {
        const isa::AccessPattern* src = inst.operand(1);
        double eff = isHbm(program, *src) ? chip.dma.transposeEfficiency
                                          : chip.dma.sbufTransposeEfficiency;
        if (!(eff > 0)) {
          return Status(ErrorCode::kUnsupported,
                        fmt::format("{} has no DMA transpose from {}", chip.name,
                                    isHbm(program, *src) ? "HBM" : "SBUF"),
                        program.instructionContext(i));
        }
      }
    }
  }
  return Status::ok();
}

}  // namespace trnsim::sim::detail
