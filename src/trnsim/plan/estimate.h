#pragma once
// One training step of a model on a system: the execution model (parallelism, schedule,
// memory) composed from the compute model (per-operation times) and the fabric's collective
// model (per-collective times). Everything in seconds, bytes and FLOPs; nothing in "cycles".

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trnsim/arch/system_config.h"
#include "trnsim/plan/compute_compiled.h"
#include "trnsim/plan/compute_model.h"
#include "trnsim/plan/confidence.h"
#include "trnsim/plan/model_config.h"
#include "trnsim/support/status.h"

namespace trnsim::plan {

enum class Recompute : uint8_t { kNone, kSelective, kFull };

/// How the attention core runs: one fused flash kernel (scores stay on chip, the causal half is
/// skipped), or materialized (scores [S, S] written to HBM, then scale, mask, softmax, dropout
/// and the context matmul as separate passes, the whole square computed): Megatron-LM 2021 and
/// NeMo Megatron on Trn1 (neuronx-nemo-megatron's GPT recipes).
enum class AttentionImpl : uint8_t { kFlash, kMaterialized };

/// Degrees count ranks (on Trainium a rank is a logical NeuronCore), so
/// tp * pp * dp * cp == chips * ranksPerChip. ep divides dp * cp (experts are spread over the
/// data-parallel ranks, as in Megatron); zero 0..3 shards optimizer state (1), gradients (2)
/// and weights (3, FSDP) over dp.
struct Parallelism {
  uint32_t tp = 1, pp = 1, dp = 1, cp = 1, ep = 1;
  uint32_t vpp = 1;         ///< interleaved pipeline stages per rank (1 = plain 1F1B)
  uint32_t microbatch = 1;  ///< sequences per micro-batch
  bool sequenceParallel = true;
  uint32_t zero = 1;
  Recompute recompute = Recompute::kSelective;
  Precision precision = Precision::kBf16;
  /// The recipe's software choices (the search keeps them as given).
  AttentionImpl attention = AttentionImpl::kFlash;
  double dropout = 0;  ///< hidden and attention dropout probability (GPT-3-era recipes: 0.1)
};

struct Workload {
  ModelConfig model;
  uint64_t globalBatch = 0;  ///< sequences per step
  uint32_t seq = 0;          ///< tokens per sequence
};

/// Seconds of one step, by part. compute + recompute + exposed comm + bubble + optimizer
/// (+ other) == step time; overlapped communication is reported but costs nothing.
struct StepBreakdown {
  double compute = 0;      ///< forward + backward without recomputation
  double recompute = 0;    ///< extra forward work of activation recomputation
  double tpExposed = 0;    ///< tensor/sequence-parallel collectives on the critical path
  double cpExposed = 0;
  double epExposed = 0;    ///< MoE all-to-all
  double dpExposed = 0;    ///< gradient reduce-scatter/all-reduce, ZeRO-3 gathers
  double ppExposed = 0;    ///< pipeline send/recv
  double bubble = 0;       ///< pipeline fill and drain
  double optimizer = 0;
  double other = 0;           ///< fixed per-step overhead (data loading, logging, launch)
  double overlappedComm = 0;  ///< communication hidden under compute
};

struct MemoryBreakdown {  ///< bytes per chip
  double weights = 0, gradients = 0, optimizer = 0, activations = 0, buffers = 0;
  double total() const { return weights + gradients + optimizer + activations + buffers; }
};

struct StepEstimate {
  Parallelism parallelism;
  double stepTimeS = 0;
  double tokensPerS = 0;
  double modelTflopsPerChip = 0;     ///< model FLOPs (no recomputation) / step time / chips
  double hardwareTflopsPerChip = 0;  ///< recomputation included
  double mfu = 0, hfu = 0;
  double memoryPerChipGib = 0;
  double memoryCapacityGib = 0;
  bool fits = false;
  std::string why;  ///< when !fits or invalid: what does not fit / divide, and what to change
  MemoryBreakdown memory;
  StepBreakdown breakdown;
  /// Which compute model timed the step: "compiled" (compiled layer graphs), "kernels" (the
  /// per-kernel composition) or "roofline" (GPUs, TPUs).
  std::string computeModel;
  /// What the compute model did not cover (MoE experts, fp8 matmuls on the kernel model).
  std::string computeNote;
  /// The published runs behind this compute model on this system, and what is assumed.
  Confidence confidence;
};

/// Tunable constants of the execution model that are not hardware facts (calibrated only
/// against the published runs of docs/sources.md and our own measurements; see docs/plan.md).
struct PlanTuning {
  double stepOverheadS = 0;  ///< per step: data loading, logging, launch
};

/// How a Planner times compute.
struct PlannerOptions {
  /// Trainium-class systems (accel.sim_chip): compiled layer graphs or the kernel composition.
  /// Other systems always use the roofline.
  ComputeModelKind computeModel = ComputeModelKind::kCompiled;
  CompiledComputeOptions compiled;
  /// search() ranks every candidate with the kernel composition (fast) and re-times this many
  /// of the best with compiled layers before picking (docs/plan_compute.md, "Speed").
  size_t compiledRerank = 8;
};

class Planner {
 public:
  /// `chips` chips of `system`; builds the compute and collective models once. Trainium-class
  /// systems are timed with compiled layers (PlannerOptions' default).
  static Expected<Planner> create(const arch::SystemConfig& system, uint64_t chips);
  static Expected<Planner> create(const arch::SystemConfig& system, uint64_t chips,
                                  const PlannerOptions& options);
  /// As above with a given compute model (e.g. a roofline with RooflineOptions) and tuning;
  /// `compute` null = makeComputeModel(system). Composes per-operation times (no compiled
  /// layers).
  static Expected<Planner> create(const arch::SystemConfig& system, uint64_t chips,
                                  std::unique_ptr<ComputeModel> compute,
                                  const PlanTuning& tuning);
  ~Planner();
  Planner(Planner&&) noexcept;
  Planner& operator=(Planner&&) noexcept;

  const arch::SystemConfig& system() const;
  uint64_t chips() const;
  /// What estimate() uses: kCompiled only when the system is simulated and compiled layers were
  /// asked for.
  ComputeModelKind computeModel() const;
  const PlannerOptions& options() const;
  /// The compiled-layer model (null unless computeModel() is kCompiled).
  const CompiledComputeModel* compiledModel() const;

  /// One step with the given parallelism. Invalid degrees (not dividing, not matching the
  /// rank count) give an error naming the degree; a configuration that does not fit in memory
  /// gives an estimate with fits = false and `why`.
  Expected<StepEstimate> estimate(const Workload& w, const Parallelism& p) const;
  /// The same with a given compute model (kCompiled on a planner without compiled layers gives
  /// the kernel composition, or the roofline).
  Expected<StepEstimate> estimate(const Workload& w, const Parallelism& p,
                                  ComputeModelKind kind) const;

 private:
  struct Impl;
  explicit Planner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The FLOPs of one step: model FLOPs (forward + backward = 3x forward) and hardware FLOPs
/// (plus recomputation). Dense layers use 2 * params-per-token-per-matmul; attention adds the
/// score and context matmuls (causal counted whole, as Megatron's formula does).
struct StepFlops {
  double model = 0;
  double hardware = 0;
};
StepFlops stepFlops(const Workload& w, Recompute recompute);

}  // namespace trnsim::plan
