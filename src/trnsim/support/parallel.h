#pragma once
// The one parallel loop of trnsim: n independent tasks over up to `threads` host threads, the
// calling thread included, handed out one index at a time (tasks may differ in cost). Callers
// that need results in a fixed order write them by index, or keep one accumulator per worker
// and merge them in worker order.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace trnsim::support {

/// Threads to use for `n` tasks when `threads` were asked for (0 = one per host core).
inline uint32_t workersFor(size_t n, uint32_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<uint32_t>(std::clamp<size_t>(n, 1, threads));
}

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
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) call(0, i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&](uint32_t worker) {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed))
      call(worker, i);
  };
  std::vector<std::jthread> pool;
  pool.reserve(workers - 1);
  for (uint32_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
}

}  // namespace trnsim::support
