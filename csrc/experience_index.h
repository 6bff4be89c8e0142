// ExperienceIndex: the value-driven memory's compiled core (plain C++, no Python).
//
// Rows hold an L2-normalised embedding (float32, or IEEE half when fp16), a caller-chosen id
// (int64 >= 0), a uint32 tag for filtering, and per stage (DRAFT = 0, REFINE = 1) a Q value and
// a visit count. Per stage the index also keeps running reward statistics.
//
// Thread safety: every method may be called from any thread. Methods marked [reader] take the
// index's shared lock and run in parallel with each other; methods marked [writer] take it
// exclusively. No method calls back into its caller while holding the lock.
//
// Errors: invalid arguments throw std::invalid_argument, unknown ids throw evokernel::KeyError,
// operating-system file errors throw evokernel::FileError. A throwing method changes nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "id_map.h"

namespace evokernel {

constexpr int kDraft = 0;
constexpr int kRefine = 1;
constexpr int kStages = 2;

struct IndexOptions {
  std::size_t dim = 0;
  bool fp16 = false;
  double reward_beta = 0.05;
  double reward_std_floor = 0.1;
  std::int64_t reward_warmup = 8;
};

struct SelectOptions {
  std::size_t n = 4;
  int stage = kDraft;
  double pool_factor = 3.0;
  double w_sim = 0.5;
  double w_q = 0.5;
  double q_floor = -0.8;
  double epsilon = 0.1;
  std::uint64_t seed = 0;
  std::uint32_t tag_mask = 0;
  std::uint32_t tag_value = 0;
  const std::int64_t* exclude = nullptr;  // ids left out of the candidates (unknown ids ignored)
  std::size_t n_exclude = 0;
};

struct SelectResult {
  std::vector<std::int64_t> ids;
  std::vector<float> sims;
  std::vector<float> scores;
};

struct RewardStats {
  std::int64_t count = 0;
  double mean = 0.0;
  double var = 0.0;
};

// 64-byte aligned, growable byte storage for the embedding rows.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  unsigned char* data() { return data_; }
  const unsigned char* data() const { return data_; }
  std::size_t capacity() const { return capacity_; }
  // Grow to at least `bytes`, keeping the first `used` bytes.
  void reserve(std::size_t bytes, std::size_t used);

 private:
  unsigned char* data_ = nullptr;
  std::size_t capacity_ = 0;
};

class ExperienceIndex {
 public:
  explicit ExperienceIndex(const IndexOptions& options);
  ExperienceIndex(const ExperienceIndex&) = delete;
  ExperienceIndex& operator=(const ExperienceIndex&) = delete;

  // Immutable after construction; no lock.
  std::size_t dim() const { return dim_; }
  bool fp16() const { return fp16_; }
  double reward_beta() const { return reward_beta_; }
  double reward_std_floor() const { return reward_std_floor_; }
  std::int64_t reward_warmup() const { return reward_warmup_; }

  // Threads a large scan may use (0 = automatic: the hardware threads, at most 8). Atomic.
  std::size_t num_threads() const { return num_threads_.load(std::memory_order_relaxed); }
  void set_num_threads(std::size_t threads) {
    num_threads_.store(threads, std::memory_order_relaxed);
  }

  // [reader] Number of rows.
  std::size_t size() const;
  // [reader]
  bool contains(std::int64_t id) const;
  // [reader] All ids in row order.
  std::vector<std::int64_t> ids() const;
  // [reader] Tag of `id` (KeyError when absent).
  std::uint32_t tag(std::int64_t id) const;
  // [reader] Stored (normalised, dequantised) vector of `id` (KeyError when absent).
  std::vector<float> vector(std::int64_t id) const;

  // [writer] Append n rows. tags == nullptr gives every row `tag`. Ids must be >= 0, unique in
  // the batch and absent from the index; vectors finite and non-zero. All or nothing.
  void add(const std::int64_t* ids, const float* vectors, const std::uint32_t* tags,
           std::uint32_t tag, std::size_t n);
  // [writer] Replace the vector of `id` (KeyError when absent).
  void update_vector(std::int64_t id, const float* vector);
  // [writer] (KeyError when absent).
  void set_tag(std::int64_t id, std::uint32_t tag);
  // [writer] Remove rows (swap with the last row); unknown ids are ignored. Returns the count.
  std::size_t remove(const std::int64_t* ids, std::size_t n);

  // [reader] Exact top-k cosine for nq queries (row-major, dim floats each) among rows with
  // (tag & tag_mask) == tag_value. Writes out_ids/out_sims [nq, k]: sim descending, ties by id
  // ascending, padded with id -1 and sim -inf.
  void search(const float* queries, std::size_t nq, std::size_t k, std::uint32_t tag_mask,
              std::uint32_t tag_value, std::int64_t* out_ids, float* out_sims) const;

  // [reader] The value-driven retrieval (steps in docs/architecture.md).
  SelectResult select(const float* query, const SelectOptions& options) const;

  // [reader] Q values / visit counts of `ids` for `stage` (KeyError when any is absent).
  void get_q(const std::int64_t* ids, std::size_t n, int stage, double* out) const;
  void get_visits(const std::int64_t* ids, std::size_t n, int stage, std::int64_t* out) const;
  // [writer] Overwrite Q values and visit counts (used when rebuilding from the store).
  void set_q(const std::int64_t* ids, std::size_t n, int stage, const double* q,
             const std::int64_t* visits);
  // [writer] Q <- Q + alpha * (r - Q), visits += 1, in list order (a repeated id is updated
  // again). rewards[i * reward_stride]; stride 0 broadcasts one reward. out[i] = Q of ids[i]
  // right after its update.
  void update_q(const std::int64_t* ids, std::size_t n, int stage, const double* rewards,
                std::size_t reward_stride, double alpha, double* out);

  // [writer] Update the stage's running statistics with r, then return r while count < warmup,
  // else (r - mean) / max(std, std_floor).
  double normalize_reward(int stage, double reward);
  // [reader]
  RewardStats reward_stats(int stage) const;
  // [writer]
  void set_reward_stats(int stage, std::int64_t count, double mean, double var);

  // [reader] Write the index to `path` (format in index_file.h), atomically via a temp file.
  void save(const std::string& path) const;
  // Read an index saved by any supported format version (std::invalid_argument when the file
  // is not one, is truncated or corrupted).
  static std::unique_ptr<ExperienceIndex> load(const std::string& path);

  // [reader] Benchmark helper: read every stored vector byte once with the scan's threads and
  // return the sum (the memory-read floor of a full scan).
  double read_floor() const;
  // [reader] Diagnostic: threads a scan of nq queries with this tag filter would use now.
  std::size_t scan_threads(std::size_t nq, std::uint32_t tag_mask, std::uint32_t tag_value) const;

 private:
  struct RowValues {
    double q[kStages];
    std::int64_t visits[kStages];
  };
  struct Hit {
    float sim;
    std::int64_t id;
    std::uint32_t row;
  };
  class TopK;

  std::size_t row_bytes() const { return pdim_ * (fp16_ ? 2 : 4); }
  const unsigned char* row_ptr(std::size_t row) const { return rows_.data() + row * row_bytes(); }
  unsigned char* row_ptr(std::size_t row) { return rows_.data() + row * row_bytes(); }
  std::uint64_t row_of(std::int64_t id) const;  // KeyError when absent; caller holds a lock
  // Normalise `n` input rows into storage-format padded rows (no lock needed).
  void encode_rows(const float* vectors, std::size_t n, unsigned char* out) const;
  // Normalise one query into a padded float row.
  void encode_query(const float* query, float* out, std::size_t index) const;
  // Threads for a scan of `rows` rows of which about `passing` pass the tag filter, nq queries.
  std::size_t threads_for(std::size_t rows, std::size_t passing, std::size_t nq) const;
  std::size_t scan_threads_locked(std::size_t nq, std::uint32_t tag_mask,
                                  std::uint32_t tag_value) const;  // caller holds a lock
  // Top-k of each query over the rows passing the filter, minus `excluded` (sorted rows).
  void scan(const float* queries, std::size_t nq, std::size_t k, std::uint32_t tag_mask,
            std::uint32_t tag_value, const std::vector<std::uint32_t>& excluded,
            std::vector<std::vector<Hit>>* out) const;
  void reserve_rows(std::size_t rows);

  const std::size_t dim_;
  const std::size_t pdim_;  // dim rounded up to a multiple of 16 (rows zero-padded)
  const bool fp16_;
  const double reward_beta_;
  const double reward_std_floor_;
  const std::int64_t reward_warmup_;
  std::atomic<std::size_t> num_threads_{0};

  mutable std::shared_mutex mutex_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  AlignedBuffer rows_;
  std::vector<std::int64_t> ids_;
  std::vector<std::uint32_t> tags_;
  std::vector<RowValues> values_;
  IdMap id_to_row_;
  struct StageStats {
    std::int64_t count = 0;
    double mean = 0.0;
    double sq = 0.0;
  };
  StageStats stats_[kStages];
};

}  // namespace evokernel
