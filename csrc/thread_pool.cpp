// Process-wide worker pool (see thread_pool.h).
//
// Hand-off. A scan of a few hundred kilobytes takes tens of microseconds, about what it takes
// to wake a thread sleeping in the kernel (more on a virtual machine). So a worker that finds
// no job spins for a short while (kWorkerSpin) watching a counter that every new job bumps,
// and only then sleeps on the condition variable; the owner of a job likewise spins briefly
// (kOwnerSpin) for its helpers to finish before it sleeps. A burst of jobs (a loop of queries)
// is then picked up in about a microsecond, while an idle pool costs no CPU once its workers
// are asleep. The spin pauses the CPU between checks (PAUSE / YIELD) and reads the clock only
// every kSpinCheck checks.
#include "thread_pool.h"

#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace evokernel {
namespace {

constexpr std::size_t kMaxAutoThreads = 8;
constexpr std::size_t kMaxWorkers = 63;
// How long an idle worker keeps looking for a new job before it sleeps, and how long the owner
// of a job waits for its helpers before it sleeps.
constexpr std::chrono::microseconds kWorkerSpin{100};
constexpr std::chrono::microseconds kOwnerSpin{200};
constexpr int kSpinCheck = 32;  // checks between two readings of the clock

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// Spins until done() or `limit` has passed; returns done().
template <typename Done>
bool spin_until(Done done, std::chrono::microseconds limit) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + limit;
  for (;;) {
    for (int i = 0; i < kSpinCheck; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (Clock::now() >= deadline) return done();
  }
}

struct Job {
  const std::function<void(std::size_t, std::size_t)>* fn = nullptr;
  std::size_t chunks = 0;
  std::size_t max_slots = 1;
  std::atomic<std::size_t> next{0};
  std::size_t slots_taken = 1;       // guarded by the pool mutex; the caller holds slot 0
  std::atomic<std::size_t> active{0};  // workers inside work(); changed under the pool mutex
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
    std::size_t wake = 0;
    bool wake_all = false;
    if (shared) {
      std::lock_guard<std::mutex> lock(mutex_);
      ensure_workers(job.max_slots - 1);
      shared = !workers_.empty();
      if (shared) {
        jobs_.push_back(&job);
        posted_.fetch_add(1, std::memory_order_release);  // spinning workers look now
        // Sleeping workers to wake: as many as the job can use beyond the spinning ones.
        const std::size_t helpers = std::min(chunks, job.max_slots) - 1;
        wake = std::min(sleepers_, helpers - std::min(spinners_, helpers));
        wake_all = wake == sleepers_;
      }
    }
    if (wake_all && wake > 0) {
      work_cv_.notify_all();
    } else {
      for (std::size_t i = 0; i < wake; ++i) work_cv_.notify_one();
    }
    job.work(0);
    if (shared) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));  // no new helpers
      }
      // Helpers decrement `active` under the mutex and never touch the job afterwards.
      auto finished = [&] { return job.active.load(std::memory_order_acquire) == 0; };
      if (!spin_until(finished, kOwnerSpin)) {
        std::unique_lock<std::mutex> lock(mutex_);
        ++done_waiters_;
        done_cv_.wait(lock, finished);
        --done_waiters_;
      }
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
      Job* job = find_job();
      if (job == nullptr) {
        // Spin (without the mutex) until a job is posted or kWorkerSpin has passed, then look
        // again; sleep only if there is still nothing to do. `seen` is read under the mutex,
        // after find_job, so a job posted since then always changes posted_.
        const std::uint64_t seen = posted_.load(std::memory_order_relaxed);
        ++spinners_;
        lock.unlock();
        const bool posted = spin_until(
            [&] { return posted_.load(std::memory_order_acquire) != seen; }, kWorkerSpin);
        lock.lock();
        --spinners_;
        if (posted) continue;
        ++sleepers_;
        work_cv_.wait(lock, [&] { return (job = find_job()) != nullptr; });
        --sleepers_;
      }
      const std::size_t slot = job->slots_taken++;
      job->active.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      job->work(slot);
      lock.lock();
      // The job's owner may return (and free it) as soon as this reaches 0.
      job->active.fetch_sub(1, std::memory_order_release);
      if (done_waiters_ > 0) done_cv_.notify_all();
    }
  }

  const pid_t pid_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::vector<Job*> jobs_;
  std::atomic<std::uint64_t> posted_{0};  // bumped (under mutex_) whenever a job is posted
  std::size_t spinners_ = 0;              // workers spinning for a job; guarded by mutex_
  std::size_t sleepers_ = 0;              // workers waiting on work_cv_; guarded by mutex_
  std::size_t done_waiters_ = 0;          // owners waiting on done_cv_; guarded by mutex_
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
