// Process-wide worker pool (see thread_pool.h).
#include "thread_pool.h"

#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace evokernel {
namespace {

constexpr std::size_t kMaxAutoThreads = 8;
constexpr std::size_t kMaxWorkers = 63;

struct Job {
  const std::function<void(std::size_t, std::size_t)>* fn = nullptr;
  std::size_t chunks = 0;
  std::size_t max_slots = 1;
  std::atomic<std::size_t> next{0};
  std::size_t slots_taken = 1;  // guarded by the pool mutex; the caller holds slot 0
  std::size_t active = 0;       // workers inside work(); guarded by the pool mutex
  std::mutex error_mutex;
  std::exception_ptr error;

  bool wants_help() const {
    return slots_taken < max_slots && next.load(std::memory_order_relaxed) < chunks;
  }

  void work(std::size_t slot) {
    for (;;) {
      const std::size_t chunk = next.fetch_add(1, std::memory_order_relaxed);
      if (chunk >= chunks) return;
      try {
        (*fn)(chunk, slot);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }
};

class Pool {
 public:
  Pool() : pid_(getpid()) {}

  void run(std::size_t chunks, std::size_t max_threads,
           const std::function<void(std::size_t, std::size_t)>& fn) {
    Job job;
    job.fn = &fn;
    job.chunks = chunks;
    job.max_slots = std::min(max_threads, kMaxWorkers + 1);
    bool shared = job.max_slots > 1 && chunks > 1 && getpid() == pid_;
    if (shared) {
      std::lock_guard<std::mutex> lock(mutex_);
      ensure_workers(job.max_slots - 1);
      shared = !workers_.empty();
      if (shared) jobs_.push_back(&job);
    }
    if (shared) work_cv_.notify_all();
    job.work(0);
    if (shared) {
      std::unique_lock<std::mutex> lock(mutex_);
      jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));
      done_cv_.wait(lock, [&] { return job.active == 0; });
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  // Caller holds mutex_. Starts workers up to `n` (fewer if the system refuses threads).
  void ensure_workers(std::size_t n) {
    while (workers_.size() < n) {
      try {
        workers_.emplace_back([this] { loop(); });
      } catch (const std::system_error&) {
        return;
      }
    }
  }

  Job* find_job() {
    for (Job* j : jobs_) {
      if (j->wants_help()) return j;
    }
    return nullptr;
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      Job* job = nullptr;
      work_cv_.wait(lock, [&] { return (job = find_job()) != nullptr; });
      const std::size_t slot = job->slots_taken++;
      ++job->active;
      lock.unlock();
      job->work(slot);
      lock.lock();
      --job->active;  // the job's owner may return (and free it) once this is 0
      done_cv_.notify_all();
    }
  }

  const pid_t pid_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::vector<Job*> jobs_;
  std::vector<std::thread> workers_;  // never joined: the pool lives until the process ends
};

Pool& pool() {
  static Pool* p = new Pool();  // deliberately leaked; see workers_
  return *p;
}

}  // namespace

std::size_t default_threads() {
  static const std::size_t n = [] {
    std::size_t cpus = std::thread::hardware_concurrency();
#if defined(__linux__)
    cpu_set_t set;  // the CPUs this process may run on (containers, taskset)
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
      cpus = static_cast<std::size_t>(CPU_COUNT(&set));
    }
#endif
    return std::min<std::size_t>(std::max<std::size_t>(1, cpus), kMaxAutoThreads);
  }();
  return n;
}

void parallel_chunks(std::size_t chunks, std::size_t max_threads,
                     const std::function<void(std::size_t, std::size_t)>& fn) {
  if (chunks == 0) return;
  if (max_threads <= 1 || chunks == 1) {
    std::exception_ptr error;
    for (std::size_t c = 0; c < chunks; ++c) {
      try {
        fn(c, 0);
      } catch (...) {
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
  pool().run(chunks, max_threads, fn);
}

}  // namespace evokernel
