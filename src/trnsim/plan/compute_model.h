#pragma once
// How long one chip takes for the operations of a transformer layer. Trainium-class chips are
// timed by the trnsim simulator itself (the kernel library's programs, timing-only, cached);
// GPUs and TPUs by a roofline with a size-dependent efficiency. The planner only sees this
// interface.

#include <cstdint>
#include <memory>
#include <string>

#include "trnsim/arch/system_config.h"
#include "trnsim/support/status.h"

namespace trnsim::plan {

enum class Precision : uint8_t { kBf16, kFp8 };

/// One operation on ONE rank (on Trainium a rank is a logical NeuronCore; the time is the
/// rank's, with all ranks of the chip working at once and sharing its HBM).
struct MatmulShape {
  uint64_t m = 0, n = 0, k = 0;  ///< C[m,n] = A[m,k] @ B[k,n]
  uint64_t batch = 1;            ///< independent matmuls of this shape
};
struct AttentionShape {
  uint64_t batch = 1, heads = 1, kvHeads = 1, seqQ = 0, seqKv = 0, headDim = 0;
  bool causal = true;
};

class ComputeModel {
 public:
  virtual ~ComputeModel() = default;
  virtual std::string_view name() const = 0;
  virtual double matmulSeconds(const MatmulShape& s, Precision p) const = 0;
  /// Flash-attention forward (backward: ~2.5x the forward's work, the model's own figure).
  virtual double attentionForwardSeconds(const AttentionShape& s, Precision p) const = 0;
  virtual double attentionBackwardSeconds(const AttentionShape& s, Precision p) const = 0;
  /// A memory-bound pass (norm, activation, residual add, optimizer) moving `bytes` of HBM.
  virtual double memoryBoundSeconds(double bytes) const = 0;
  /// Peak dense FLOP/s of one chip at this precision (for MFU).
  virtual double peakFlopsPerChip(Precision p) const = 0;
};

/// The compute model for a system: simulated when accel.simChip names a trnsim chip,
/// a roofline otherwise.
Expected<std::unique_ptr<ComputeModel>> makeComputeModel(const arch::SystemConfig& system);
/// Roofline with size-dependent efficiency (compute_roofline.cpp), for any system.
Expected<std::unique_ptr<ComputeModel>> makeRooflineComputeModel(const arch::SystemConfig& system);
/// What the roofline assumes of the software stack rather than the chip.
struct RooflineOptions {
  /// true: attention is one fused flash-attention kernel (causal work halved, scores never in
  /// HBM); false: two batched matmuls with the scores materialized in HBM for softmax and
  /// dropout, as in Megatron-LM 2021 (the calibration set).
  bool flashAttention = true;
  /// JSON text replacing the built-in configs/plan/roofline.json (what-if studies, fitting);
  /// empty = the built-in constants.
  std::string paramsJson;
};
Expected<std::unique_ptr<ComputeModel>> makeRooflineComputeModel(const arch::SystemConfig& system,
                                                                 const RooflineOptions& options);
/// Timed by the trnsim simulator (compute_sim.cpp); needs accel.simChip.
Expected<std::unique_ptr<ComputeModel>> makeSimulatedComputeModel(const arch::SystemConfig& system);

}  // namespace trnsim::plan
