#include "trnsim/sim/timing_fluid.h"

#include <algorithm>
#include <limits>

namespace trnsim::sim::detail {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
/// Bytes below which a transfer counts as finished (absorbs floating-point dust).
constexpr double kDoneBytes = 1e-6;
}  // namespace

void FluidDma::init(uint32_t cores, double coreGbps, double hbmGbps) {
  now_ = 0;
  coreGbps_ = coreGbps;
  hbmGbps_ = hbmGbps;
  active_.clear();
  coreUsed_.assign(cores, 0);
  coreOpen_.assign(cores, 0);
}

void FluidDma::advanceTo(double t) {
  if (t <= now_) return;
  const double dt = t - now_;
  for (Transfer& tr : active_) tr.remainingBytes -= tr.rateGbps * dt;
  now_ = t;
}

double FluidDma::nextCompletionNs() const {
  double best = kInf;
  for (const Transfer& tr : active_) {
    if (tr.remainingBytes <= kDoneBytes) return now_;
    if (tr.rateGbps > 0) best = std::min(best, now_ + tr.remainingBytes / tr.rateGbps);
  }
  return best;
}

void FluidDma::takeFinished(std::vector<Transfer>& done) {
  // The transfer that defined nextCompletionNs() may keep a little residue from rounding:
  // treat anything that would finish within a picosecond as finished. So is anything whose
  // remaining time the current time cannot resolve (now + left == now): far out in time a
  // double's step exceeds a picosecond, advanceTo() cannot move, and without this the event
  // loop would spin for ever on the same instant. (Below about 1e13 ns, hours of simulated
  // time, a double resolves a picosecond, so this never changes a time the picosecond rule
  // gives.)
  size_t keep = 0;
  for (size_t i = 0; i < active_.size(); ++i) {
    const Transfer& tr = active_[i];
    const double leftNs = tr.rateGbps > 0 ? tr.remainingBytes / tr.rateGbps : kInf;
    bool finished = tr.remainingBytes <= kDoneBytes || leftNs <= 1e-3 || now_ + leftNs <= now_;
    if (finished) {
      done.push_back(tr);
    } else {
      active_[keep++] = tr;
    }
  }
  active_.resize(keep);
}

void FluidDma::recomputeRates() {
  const size_t n = active_.size();
  if (n == 0) return;
  std::fill(coreUsed_.begin(), coreUsed_.end(), 0.0);
  std::fill(coreOpen_.begin(), coreOpen_.end(), 0u);
  double hbmUsed = 0;
  open_.clear();
  usedCores_.clear();
  for (size_t i = 0; i < n; ++i) {
    active_[i].rateGbps = 0;
    if (coreOpen_[active_[i].core]++ == 0) usedCores_.push_back(active_[i].core);
    open_.push_back(uint32_t(i));
  }
  // Progressive filling: raise every open transfer's rate together until some limit binds,
  // freeze the transfers behind that limit, repeat. Each round freezes at least one and
  // visits only the transfers (and cores) still open, in start order, so a round costs
  // O(open); rounds = distinct binding limits (usually one or two).
  while (!open_.empty()) {
    double step = kInf;
    double hbmWeight = 0;
    for (uint32_t i : open_) {
      step = std::min(step, active_[i].capGbps - active_[i].rateGbps);
      hbmWeight += active_[i].hbmPerMovedByte;
    }
    for (uint32_t c : usedCores_) {
      if (coreOpen_[c] > 0) step = std::min(step, (coreGbps_ - coreUsed_[c]) / coreOpen_[c]);
    }
    if (hbmWeight > 0) step = std::min(step, (hbmGbps_ - hbmUsed) / hbmWeight);
    step = std::max(step, 0.0);
    for (uint32_t i : open_) {
      active_[i].rateGbps += step;
      coreUsed_[active_[i].core] += step;
      hbmUsed += step * active_[i].hbmPerMovedByte;
    }
    const bool hbmFull = hbmUsed >= hbmGbps_ * (1 - 1e-12);
    size_t keep = 0;
    for (uint32_t i : open_) {
      const Transfer& tr = active_[i];
      bool stop = tr.rateGbps >= tr.capGbps * (1 - 1e-12) ||
                  coreUsed_[tr.core] >= coreGbps_ * (1 - 1e-12) ||
                  (hbmFull && tr.hbmPerMovedByte > 0);
      if (stop) {
        --coreOpen_[tr.core];
      } else {
        open_[keep++] = i;
      }
    }
    if (keep == open_.size()) break;  // cannot happen with positive limits; never loop forever
    open_.resize(keep);
  }
}

}  // namespace trnsim::sim::detail
