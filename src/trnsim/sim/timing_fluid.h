#pragma once
// A small fluid model of DMA bandwidth: active transfers share the DMA engines of their core
// and the chip's HBM by max-min fairness (progressive filling); rates are recomputed whenever
// a transfer starts or ends.

#include <cstdint>
#include <vector>

namespace trnsim::sim::detail {

class FluidDma {
 public:
  /// One transfer in flight. `remainingBytes` counts bytes the DMA engines still move.
  struct Transfer {
    uint32_t core = 0;
    uint32_t inst = 0;
    double remainingBytes = 0;
    double capGbps = 0;          ///< its own limit (engines it can use, efficiency), bytes/ns
    double hbmPerMovedByte = 0;  ///< HBM bytes per moved byte (0 for SBUF->SBUF)
    double rateGbps = 0;         ///< current share, bytes/ns
  };

  /// `coreGbps`: the DMA limit of each core; `hbmGbps`: the chip's HBM limit.
  void init(uint32_t cores, double coreGbps, double hbmGbps);
  double nowNs() const { return now_; }
  bool empty() const { return active_.empty(); }
  /// Starts a transfer at the current time (call recomputeRates() after a batch of changes).
  void add(const Transfer& t) { active_.push_back(t); }
  /// Moves time forward to `t`, draining every transfer at its current rate.
  void advanceTo(double t);
  /// Absolute time at which the next transfer finishes at current rates (+inf if none).
  double nextCompletionNs() const;
  /// Removes the transfers finished at the current time and appends them to `done`
  /// (in the order they were started, for determinism).
  void takeFinished(std::vector<Transfer>& done);
  /// Max-min fair shares under: each transfer's cap, each core's DMA limit, the HBM limit.
  /// O(active x rounds); a round ends when a limit binds (see timing_fluid.cpp).
  void recomputeRates();
  const std::vector<Transfer>& active() const { return active_; }

 private:
  double now_ = 0;
  double coreGbps_ = 0, hbmGbps_ = 0;
  std::vector<Transfer> active_;
  std::vector<double> coreUsed_;
  std::vector<uint32_t> coreOpen_;
  std::vector<uint32_t> open_;       ///< recomputeRates: transfers not frozen yet, in order
  std::vector<uint32_t> usedCores_;  ///< recomputeRates: cores with a transfer
};

}  // namespace trnsim::sim::detail
