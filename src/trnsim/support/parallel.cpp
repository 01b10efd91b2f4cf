// The persistent thread pool behind support::parallelFor (parallel.h).

#include "trnsim/support/parallel.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace trnsim::support::detail {
namespace {

thread_local bool tIsPoolThread = false;
/// Set in the child of a fork(): the pool's threads did not come along (and its mutexes may be
/// held by one of them), so the child runs every loop on its calling thread.
std::atomic<bool> gForkedChild{false};
/// Where a forked child parks the parent's thread objects (reachable, so not a reported leak).
std::vector<std::thread>* gAbandoned = nullptr;

class Pool {
 public:
  Pool() { pthread_atfork(nullptr, nullptr, [] { gForkedChild = true; }); }
  ~Pool() {
    if (gForkedChild) {
      // Their threads are not in this process: joining would wait forever and destroying a
      // joinable std::thread terminates, so the child leaves them be.
      gAbandoned = new std::vector<std::thread>(std::move(threads_));
      return;
    }
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  bool run(uint32_t helpers, const std::function<void(uint32_t)>& work) {
    if (tIsPoolThread || gForkedChild) return false;
    std::unique_lock busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard lock(mutex_);
      while (threads_.size() < helpers) {
        const uint32_t id = uint32_t(threads_.size()) + 1;
        threads_.emplace_back([this, id] { loop(id); });
      }
      job_ = &work;
      helpers_ = helpers;
      pending_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    work(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
    return true;
  }

 private:
  void loop(uint32_t id) {
    tIsPoolThread = true;
    uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || (generation_ != seen && id <= helpers_); });
      if (stop_) return;
      seen = generation_;
      const std::function<void(uint32_t)>* job = job_;
      lock.unlock();
      (*job)(id);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex busy_;   ///< held by the one loop running on the pool
  std::mutex mutex_;  ///< guards everything below
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;  ///< thread i + 1 is helper i + 1
  const std::function<void(uint32_t)>* job_ = nullptr;
  uint32_t helpers_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace

bool runOnPool(uint32_t helpers, const std::function<void(uint32_t)>& work) {
  static Pool pool;
  return pool.run(helpers, work);
}

}  // namespace trnsim::support::detail
