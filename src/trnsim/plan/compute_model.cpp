#include "trnsim/plan/compute_model.h"

namespace trnsim::plan {

Expected<std::unique_ptr<ComputeModel>> makeComputeModel(const arch::SystemConfig& system) {
  // Trainium-class chips are timed by the simulator; every other chip by the roofline.
  if (!system.accel.simChip.empty()) return makeSimulatedComputeModel(system);
  return makeRooflineComputeModel(system);
}

double materializedAttentionSeconds(const ComputeModel& c, const AttentionShape& s, Precision p,
                                    bool backward) {
  // Bytes of HBM per score element outside the matmuls (bf16 scores, a 1-byte dropout mask).
  // Forward: scale-mask-softmax reads and writes 2 + 2; dropout reads 2 and writes 2 plus the
  // mask. Backward: softmax's reads the gradient and the softmax output and writes 2;
  // dropout's reads the gradient and the mask and writes 2.
  const double scoreBytesFwd = 2 + 2 + (s.dropout ? 2 + 2 + 1 : 0);
  const double scoreBytesBwd = 2 + 2 + 2 + (s.dropout ? 2 + 1 + 2 : 0);
  const uint64_t bh = s.batch * s.heads;
  const MatmulShape scores{s.seqQ, s.seqKv, s.headDim, bh};
  const MatmulShape context{s.seqQ, s.headDim, s.seqKv, bh};
  const double elems = double(bh) * double(s.seqQ) * double(s.seqKv);
  // The backward: dP = dO V^T and dV = P^T dO (the context's shape), dQ = dS K and
  // dK = dS^T Q (the scores' shape).
  const double mats = c.matmulSeconds(scores, p) + c.matmulSeconds(context, p);
  return backward ? 2 * mats + c.memoryBoundSeconds(elems * scoreBytesBwd)
                  : mats + c.memoryBoundSeconds(elems * scoreBytesFwd);
}

}  // namespace trnsim::plan
