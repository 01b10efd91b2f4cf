// Data (fabric::Cluster, cluster_internal.h): what each firing collective computes, and the
// exchange of the members' sent bytes between MPI processes.

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <span>

#include "trnsim/fabric/cluster_internal.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/sim/reduce.h"
#include "trnsim/support/parallel.h"

namespace trnsim::fabric {

using detail::operandDType;
using detail::operandElements;
using isa::Opcode;

namespace {

constexpr size_t kChunkElems = size_t(1) << 16;

/// acc[i] = op(acc[i], in[i]) in fp32 (kBypass: acc = in), in chunks over host threads, with
/// the engines' arithmetic (sim::reduceInto: max and min propagate NaN); the result per element
/// does not depend on the chunking.
void combineInto(std::vector<float>& acc, std::span<const std::byte> in, numerics::DType dt,
                 isa::AluOp op, uint32_t threads) {
  const size_t es = numerics::dtypeSize(dt);
  const size_t count = acc.size();
  support::parallelFor((count + kChunkElems - 1) / kChunkElems, threads, [&](size_t c) {
    const size_t b = c * kChunkElems, e = std::min(count, b + kChunkElems);
    float* a = acc.data() + b;
    if (op == isa::AluOp::kBypass) {
      numerics::convertToFloat(dt, in.data() + b * es, a, e - b);
      return;
    }
    std::vector<float> tmp(e - b);
    numerics::convertToFloat(dt, in.data() + b * es, tmp.data(), e - b);
    sim::reduceInto(op, std::span<float>(a, e - b), tmp);
  });
}

/// acc[first, first + count) rounded (RNE) to dt into out.
void toDType(const std::vector<float>& acc, size_t first, size_t count, numerics::DType dt,
             std::byte* out, uint32_t threads) {
  const size_t es = numerics::dtypeSize(dt);
  support::parallelFor((count + kChunkElems - 1) / kChunkElems, threads, [&](size_t c) {
    const size_t b = c * kChunkElems, e = std::min(count, b + kChunkElems);
    numerics::convertFromFloat(dt, acc.data() + first + b, out + b * es, e - b);
  });
}

}  // namespace

Expected<uint64_t> Cluster::Impl::moveData(const std::vector<Firing>& firings,
                                           const std::vector<RankInfo>& ranks,
                                           const std::vector<sim::RunOptions>& ropts) {
  const uint32_t nthreads = threads();
  const bool multi = transport->processes() > 1;
  uint64_t bytesReduced = 0;
  // Per firing, the members' sent bytes: read locally, exchanged under MPI.
  std::vector<std::vector<std::vector<std::byte>>> sent(firings.size());
  Status readError;
  for (size_t fi = 0; fi < firings.size() && readError.isOk(); ++fi) {
    const Firing& f = firings[fi];
    sent[fi].resize(f.members.size());
    if (f.op == Opcode::kCoreBarrier) continue;
    // One process reduces straight from the chips, one member at a time (memory).
    if (!multi && (f.op == Opcode::kAllReduce || f.op == Opcode::kReduceScatter)) continue;
    for (size_t k = 0; k < f.members.size(); ++k) {
      const uint32_t m = f.members[k];
      if (!isLocal(m)) continue;
      if (f.op == Opcode::kCollectivePermute) {
        bool sends = false;
        for (auto [s, t] : f.pairs) sends = sends || s == m;
        if (!sends) continue;
      }
      auto b = chips[m]->readOperand(*programs[m], 0, ranks[m].pc, 1, ropts[m]);
      if (!b.hasValue()) {
        readError = b.status().withContext(fmt::format("rank {}", m));
        break;
      }
      sent[fi][k] = std::move(*b);
    }
  }
  if (multi) {
    WireWriter w;
    w.status(readError);
    for (size_t fi = 0; fi < firings.size(); ++fi)
      for (size_t k = 0; k < firings[fi].members.size(); ++k) {
        const uint32_t m = firings[fi].members[k];
        if (!isLocal(m) || sent[fi][k].empty()) continue;
        w.u64(fi);
        w.u64(k);
        w.u64(sent[fi][k].size());
        w.raw(sent[fi][k].data(), sent[fi][k].size());
      }
    TRNSIM_ASSIGN_OR_RETURN(auto all, transport->allGather(w.bytes()));
    for (const auto& buf : all) {
      WireReader rd(buf);
      Status theirs = rd.status();
      if (!rd.ok())
        return Status(ErrorCode::kCorrupt, "malformed collective data from another process");
      if (!theirs.isOk() && readError.isOk()) readError = std::move(theirs);
      while (rd.ok() && !rd.atEnd()) {
        const uint64_t fi = rd.u64(), k = rd.u64(), n = rd.u64();
        auto bytes = rd.bytes(n);
        if (!rd.ok() || fi >= firings.size() || k >= firings[fi].members.size())
          return Status(ErrorCode::kCorrupt, "malformed collective data from another process");
        sent[fi][k].assign(bytes.begin(), bytes.end());
      }
    }
  }
  if (!readError.isOk()) return readError;

  for (size_t fi = 0; fi < firings.size(); ++fi) {
    const Firing& f = firings[fi];
    if (f.op == Opcode::kCoreBarrier) continue;
    const size_t n = f.members.size();
    const uint32_t r0 = f.members[0];
    const Program& p0 = *programs[r0];
    const isa::Instruction& in0 = p0.instructions[ranks[r0].pc];
    const numerics::DType dt = operandDType(p0, ranks[r0].pc, 1);
    const size_t es = numerics::dtypeSize(dt);
    std::vector<std::span<const std::byte>> inputs(n);
    for (size_t k = 0; k < n; ++k) inputs[k] = sent[fi][k];
    auto deliver = [&](uint32_t m, std::span<const std::byte> data) -> Status {
      if (!isLocal(m)) return {};
      return chips[m]->writeOperand(*programs[m], 0, ranks[m].pc, 0, data, ropts[m]);
    };
    switch (f.op) {
      case Opcode::kAllReduce:
      case Opcode::kReduceScatter: {
        // fp32 accumulation in list order, member by member (the order of every element's
        // sum is the list order, whatever the chunking over threads).
        const size_t total = size_t(operandElements(p0, ranks[r0].pc, 1));
        std::vector<float> acc(total);
        std::vector<std::byte> owned;
        for (size_t k = 0; k < n; ++k) {
          std::span<const std::byte> in = inputs[k];
          if (in.empty() && total > 0) {
            // In place when the operand is contiguous (no copy), else a copy.
            const uint32_t m = f.members[k];
            auto direct = chips[m]->operandBytesInPlace(*programs[m], 0, ranks[m].pc, 1, ropts[m]);
            if (!direct.hasValue()) return direct.status().withContext(fmt::format("rank {}", m));
            in = *direct;
            if (in.empty()) {
              auto b = chips[m]->readOperand(*programs[m], 0, ranks[m].pc, 1, ropts[m]);
              if (!b.hasValue()) return b.status().withContext(fmt::format("rank {}", m));
              owned = std::move(*b);
              in = owned;
            }
          }
          combineInto(acc, in, dt, k == 0 ? isa::AluOp::kBypass : in0.reduceOp, nthreads);
        }
        owned = {};
        bytesReduced += total * es * n;
        if (f.op == Opcode::kAllReduce) {
          std::vector<std::byte> out(total * es);
          toDType(acc, 0, total, dt, out.data(), nthreads);
          for (uint32_t m : f.members) TRNSIM_RETURN_IF_ERROR(deliver(m, out));
        } else {
          const size_t chunk = total / n;
          std::vector<std::byte> out(chunk * es);
          for (size_t k = 0; k < n; ++k) {
            if (!isLocal(f.members[k])) continue;
            toDType(acc, k * chunk, chunk, dt, out.data(), nthreads);
            TRNSIM_RETURN_IF_ERROR(deliver(f.members[k], out));
          }
        }
        break;
      }
      case Opcode::kAllGather: {
        std::vector<std::byte> out;
        out.reserve(inputs[0].size() * n);
        for (const auto& in : inputs) out.insert(out.end(), in.begin(), in.end());
        for (uint32_t m : f.members) TRNSIM_RETURN_IF_ERROR(deliver(m, out));
        break;
      }
      case Opcode::kAllToAll: {
        const size_t chunk = inputs[0].size() / n;
        for (size_t k = 0; k < n; ++k) {
          std::vector<std::byte> out(inputs[0].size());
          for (size_t j = 0; j < n; ++j)
            std::memcpy(out.data() + j * chunk, inputs[j].data() + k * chunk, chunk);
          TRNSIM_RETURN_IF_ERROR(deliver(f.members[k], out));
        }
        break;
      }
      case Opcode::kCollectivePermute:
        for (auto [s, t] : f.pairs) TRNSIM_RETURN_IF_ERROR(deliver(t, inputs[s]));
        break;
      case Opcode::kSendRecv:
        for (size_t k = 0; k < n; ++k) {
          const uint32_t m = f.members[k];
          const uint32_t from = uint32_t(programs[m]->instructions[ranks[m].pc].iarg[1]);
          const size_t kf =
              size_t(std::find(f.members.begin(), f.members.end(), from) - f.members.begin());
          TRNSIM_RETURN_IF_ERROR(deliver(m, inputs[kf]));
        }
        break;
      default:
        break;
    }
  }
  return bytesReduced;
}

}  // namespace trnsim::fabric
