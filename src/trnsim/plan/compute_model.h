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
  /// false: materialized (two batched matmuls over the whole square, the scores through HBM
  /// for scale, mask, softmax and dropout); plan/estimate.h AttentionImpl.
  bool flash = true;
  bool dropout = false;  ///< materialized: the probabilities go through dropout
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

/// Materialized attention (AttentionShape::flash false) composed from a model's own matmuls
/// and memory-bound passes: the score and context matmuls over the whole square (twice each in
/// the backward), and the scores' passes through HBM for scale, mask, softmax and dropout.
double materializedAttentionSeconds(const ComputeModel& c, const AttentionShape& s, Precision p,
                                    bool backward);

/// The compute model for a system: simulated when accel.simChip names a trnsim chip,
/// a roofline otherwise.
Expected<std::unique_ptr<ComputeModel>> makeComputeModel(const arch::SystemConfig& system);
/// Roofline with size-dependent efficiency (compute_roofline.cpp), for any system.
Expected<std::unique_ptr<ComputeModel>> makeRooflineComputeModel(const arch::SystemConfig& system);
/// What the roofline assumes of the software stack rather than the chip.
struct RooflineOptions {
  /// JSON text replacing the built-in configs/plan/roofline.json (what-if studies, fitting);
  /// empty = the built-in constants.
  std::string paramsJson;
};
Expected<std::unique_ptr<ComputeModel>> makeRooflineComputeModel(const arch::SystemConfig& system,
                                                                 const RooflineOptions& options);
/// Timed by the trnsim simulator (compute_sim.cpp); needs accel.simChip.
Expected<std::unique_ptr<ComputeModel>> makeSimulatedComputeModel(const arch::SystemConfig& system);

}  // namespace trnsim::plan
