#pragma once
// The one parallel loop of trnsim: n independent tasks over up to `threads` host threads, the
// calling thread included, handed out one index at a time (tasks may differ in cost). Callers
// that need results in a fixed order write them by index, or keep one accumulator per worker
// and merge them in worker order.
//
// The helper threads are persistent (one process-wide pool, started on first use and grown to
// the largest count asked for), so a loop costs a wake-up, not a thread start: small enough to
// use inside one simulated instruction. A loop started while the pool is busy (a nested loop,
// or a second caller thread) runs on its calling thread alone; tasks are independent, so the
// results are the same.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <type_traits>

namespace trnsim::support {

/// Threads to use for `n` tasks when `threads` were asked for (0 = one per host core).
inline uint32_t workersFor(size_t n, uint32_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<uint32_t>(std::clamp<size_t>(n, 1, threads));
}

namespace detail {
/// Runs work(0) on the calling thread and work(1) .. work(helpers) on pool threads, and returns
/// true when all have returned. Returns false without running anything when the pool is busy
/// or the caller is itself a pool thread.
bool runOnPool(uint32_t helpers, const std::function<void(uint32_t)>& work);
}  // namespace detail

/// Runs fn(i) for i in [0, n), or fn(worker, i) with worker in [0, workersFor(n, threads)),
/// and returns when all have run.
template <typename Fn>
void parallelFor(size_t n, uint32_t threads, Fn&& fn) {
  const uint32_t workers = workersFor(n, threads);
  auto call = [&](uint32_t worker, size_t i) {
    if constexpr (std::is_invocable_v<Fn&, uint32_t, size_t>) {
      fn(worker, i);
    } else {
      (void)worker;
      fn(i);
    }
  };
  auto serial = [&] {
    for (size_t i = 0; i < n; ++i) call(0, i);
  };
  if (workers <= 1) return serial();
  std::atomic<size_t> next{0};
  const std::function<void(uint32_t)> work = [&](uint32_t worker) {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed))
      call(worker, i);
  };
  if (!detail::runOnPool(workers - 1, work)) serial();
}

}  // namespace trnsim::support
