// ExperienceIndex implementation. See experience_index.h for the contract of each method and
// docs/architecture.md for the retrieval steps.
#include "experience_index.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>

#include "errors.h"
#include "index_file.h"
#include "simd.h"
#include "thread_pool.h"

namespace evokernel {
namespace {

constexpr std::size_t kMaxRows = 0xFFFFFFFFu;  // rows are addressed by uint32 in the scans
// Scans below this many bytes run on the calling thread alone; above it, one more thread per
// kBytesPerThread (up to num_threads), with a few chunks per thread so that late-waking
// workers still take a share.
constexpr std::size_t kParallelMinBytes = std::size_t(1) << 20;
constexpr std::size_t kBytesPerThread = std::size_t(512) << 10;
constexpr std::size_t kChunksPerThread = 4;
constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;
// Rows per scan block: about 128 KiB of rows, so a block stays in L2 across a query batch.
constexpr std::size_t kBlockBytes = std::size_t(128) << 10;

std::string id_str(std::int64_t id) { return std::to_string(id); }

void check_stage(int stage) {
  if (stage != kDraft && stage != kRefine) {
    throw std::invalid_argument("stage must be DRAFT (0) or REFINE (1), got " +
                                std::to_string(stage));
  }
}

[[noreturn]] void missing_id(std::int64_t id) {
  throw KeyError("id " + id_str(id) + " is not in the index");
}

// Sum of squares of a row in double; NaN/inf when the row is not finite.
double sum_squares(const float* v, std::size_t dim) {
  double s = 0.0;
  for (std::size_t d = 0; d < dim; ++d) {
    const double x = v[d];
    s += x * x;
  }
  return s;
}

// SplitMix64: the seeded generator of select's epsilon slots. u = (next() >> 11) * 2^-53.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

// The items of an ordered list that are still to be picked, with "take the j-th remaining
// item" in O(log m) (a Fenwick tree of 0/1 counts), so that filling many slots stays cheap.
class Remaining {
 public:
  explicit Remaining(std::size_t m) : tree_(m + 1, 0), m_(m) {
    for (std::size_t i = 1; i <= m; ++i) {
      tree_[i] += 1;
      const std::size_t parent = i + (i & (~i + 1));
      if (parent <= m) tree_[parent] += tree_[i];
    }
    top_ = 1;
    while (top_ * 2 <= m) top_ *= 2;
  }

  // Position (0-based) of the j-th remaining item; removes it.
  std::size_t take(std::size_t j) {
    std::size_t pos = 0;
    std::size_t rank = j + 1;
    for (std::size_t step = m_ ? top_ : 0; step > 0; step >>= 1) {
      if (pos + step <= m_ && tree_[pos + step] < rank) {
        pos += step;
        rank -= tree_[pos];
      }
    }
    for (std::size_t i = pos + 1; i <= m_; i += i & (~i + 1)) tree_[i] -= 1;
    return pos;
  }

 private:
  std::vector<std::size_t> tree_;
  std::size_t m_;
  std::size_t top_ = 0;
};

// z[i] = (x[i] - mean) / std over the n values (population std); all values equal -> 0.
void zscores(const double* x, std::size_t n, double* z) {
  std::fill(z, z + n, 0.0);
  if (n == 0) return;
  const auto mm = std::minmax_element(x, x + n);
  if (*mm.first == *mm.second) return;
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double ss = 0.0;
  for (std::size_t i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n));
  if (!(sd > 0.0)) return;
  for (std::size_t i = 0; i < n; ++i) z[i] = (x[i] - mean) / sd;
}

// Rows r < rows with (tags[r] & mask) == value: exact up to kCountExactRows rows, else
// estimated from kCountWindows evenly spaced windows of kCountWindow rows. It only sizes a
// scan's thread count (which never changes results), so an estimate is enough and its cost
// stays bounded (a few thousand tags) whatever the index size.
constexpr std::size_t kCountWindow = 256;
constexpr std::size_t kCountWindows = 16;
constexpr std::size_t kCountExactRows = kCountWindow * kCountWindows;

// Per-thread buffers of the scans (row numbers and similarities of one block), kept between
// calls: the pool's threads and the callers' threads scan again and again, and a scan of a
// small index should not pay for allocations. Buffers above kKeepScratchBytes (batches of
// many queries) are given back at the next call.
struct ScanScratch {
  std::vector<std::uint32_t> idx;
  std::vector<float> sims;
};
constexpr std::size_t kKeepScratchBytes = std::size_t(1) << 20;

ScanScratch& scan_scratch(std::size_t idx_size, std::size_t sims_size) {
  thread_local ScanScratch scratch;
  if (scratch.sims.capacity() * sizeof(float) > kKeepScratchBytes &&
      sims_size * sizeof(float) <= kKeepScratchBytes) {
    std::vector<float>().swap(scratch.sims);
  }
  if (scratch.idx.size() < idx_size) scratch.idx.resize(idx_size);
  if (scratch.sims.size() < sims_size) scratch.sims.resize(sims_size);
  return scratch;
}

std::size_t count_passing(const std::uint32_t* tags, std::size_t begin, std::size_t end,
                          std::uint32_t mask, std::uint32_t value) {
  std::size_t n = 0;
  for (std::size_t r = begin; r < end; ++r) n += (tags[r] & mask) == value;
  return n;
}

std::size_t estimate_passing(const std::uint32_t* tags, std::size_t rows, std::uint32_t mask,
                             std::uint32_t value) {
  if (mask == 0) return rows;
  if (rows <= kCountExactRows) return count_passing(tags, 0, rows, mask, value);
  std::size_t hits = 0;
  for (std::size_t w = 0; w < kCountWindows; ++w) {
    const std::size_t begin = (rows - kCountWindow) / (kCountWindows - 1) * w;
    hits += count_passing(tags, begin, begin + kCountWindow, mask, value);
  }
  // Round up so that a filter passing a few rows is not taken for one passing none.
  return (hits * rows + kCountExactRows - 1) / kCountExactRows;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AlignedBuffer

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

void AlignedBuffer::reserve(std::size_t bytes, std::size_t used) {
  if (bytes <= capacity_) return;
  // Large buffers are aligned to 2 MiB and offered huge pages: scans then touch far fewer
  // TLB entries (rows gathered by a tag filter especially).
  const bool huge = bytes >= kHugePageBytes;
  const std::size_t align = huge ? kHugePageBytes : 64;
  const std::size_t rounded = (bytes + align - 1) / align * align;
  void* p = nullptr;
  if (posix_memalign(&p, align, rounded) != 0 || p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // advice only; failure is harmless
#endif
  if (used > 0) std::memcpy(p, data_, used);
  std::free(data_);
  data_ = static_cast<unsigned char*>(p);
  capacity_ = rounded;
}

// ---------------------------------------------------------------------------------------------
// TopK: the k best hits (sim descending, ties by id ascending) seen so far.

class ExperienceIndex::TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k); }

  static bool better(const Hit& a, const Hit& b) {
    return a.sim > b.sim || (a.sim == b.sim && a.id < b.id);
  }

  // Hits with sim below this can be skipped without a full comparison.
  float threshold() const { return threshold_; }

  void push(const Hit& h) {
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), better);  // root = worst kept hit
      if (heap_.size() == k_) threshold_ = heap_.front().sim;
    } else if (better(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), better);
      threshold_ = heap_.front().sim;
    }
  }

  const std::vector<Hit>& items() const { return heap_; }

  std::vector<Hit> sorted() && {
    std::sort(heap_.begin(), heap_.end(), better);
    return std::move(heap_);
  }

 private:
  std::size_t k_;
  std::vector<Hit> heap_;
  float threshold_ = -std::numeric_limits<float>::infinity();
};

// ---------------------------------------------------------------------------------------------
// Construction and small accessors

ExperienceIndex::ExperienceIndex(const IndexOptions& o)
    : dim_(o.dim),
      pdim_((o.dim + 15) / 16 * 16),
      fp16_(o.fp16),
      reward_beta_(o.reward_beta),
      reward_std_floor_(o.reward_std_floor),
      reward_warmup_(o.reward_warmup) {
  if (o.dim == 0 || o.dim > format::kMaxDim) {
    throw std::invalid_argument("dim must be between 1 and " + std::to_string(format::kMaxDim) +
                                ", got " + std::to_string(o.dim));
  }
  if (!(o.reward_beta > 0.0 && o.reward_beta <= 1.0)) {
    throw std::invalid_argument("reward_beta must be in (0, 1], got " +
                                std::to_string(o.reward_beta));
  }
  if (!(o.reward_std_floor > 0.0) || !std::isfinite(o.reward_std_floor)) {
    throw std::invalid_argument("reward_std_floor must be a positive number, got " +
                                std::to_string(o.reward_std_floor));
  }
  if (o.reward_warmup < 0) {
    throw std::invalid_argument("reward_warmup must be >= 0, got " +
                                std::to_string(o.reward_warmup));
  }
}

std::size_t ExperienceIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return size_;
}

bool ExperienceIndex::contains(std::int64_t id) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return id_to_row_.contains(id);
}

std::vector<std::int64_t> ExperienceIndex::ids() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return ids_;
}

std::uint64_t ExperienceIndex::row_of(std::int64_t id) const {
  std::uint64_t row;
  if (!id_to_row_.find(id, &row)) missing_id(id);
  return row;
}

std::uint32_t ExperienceIndex::tag(std::int64_t id) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return tags_[row_of(id)];
}

std::vector<float> ExperienceIndex::vector(std::int64_t id) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const std::uint64_t row = row_of(id);
  std::vector<float> out(dim_);
  if (fp16_) {
    simd::active().half_to_float(reinterpret_cast<const std::uint16_t*>(row_ptr(row)),
                                 out.data(), dim_);
  } else {
    std::memcpy(out.data(), row_ptr(row), dim_ * sizeof(float));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writers

void ExperienceIndex::encode_rows(const float* vectors, std::size_t n, unsigned char* out) const {
  const std::size_t rb = row_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    const float* v = vectors + i * dim_;
    const double ss = sum_squares(v, dim_);
    if (!std::isfinite(ss)) {
      throw std::invalid_argument("vectors[" + std::to_string(i) +
                                  "] contains NaN or inf; pass finite values");
    }
    if (!(ss > 0.0)) {
      throw std::invalid_argument("vectors[" + std::to_string(i) +
                                  "] is all zeros and cannot be L2-normalised");
    }
    const double norm = std::sqrt(ss);
    unsigned char* dst = out + i * rb;
    std::memset(dst, 0, rb);
    if (fp16_) {
      std::uint16_t* h = reinterpret_cast<std::uint16_t*>(dst);
      for (std::size_t d = 0; d < dim_; ++d) {
        h[d] = simd::float_to_half(static_cast<float>(v[d] / norm));
      }
    } else {
      float* f = reinterpret_cast<float*>(dst);
      for (std::size_t d = 0; d < dim_; ++d) f[d] = static_cast<float>(v[d] / norm);
    }
  }
}

void ExperienceIndex::encode_query(const float* query, float* out, std::size_t index) const {
  const double ss = sum_squares(query, dim_);
  if (!std::isfinite(ss)) {
    throw std::invalid_argument("queries[" + std::to_string(index) +
                                "] contains NaN or inf; pass finite values");
  }
  if (!(ss > 0.0)) {
    throw std::invalid_argument("queries[" + std::to_string(index) +
                                "] is all zeros; cosine similarity is undefined");
  }
  const double norm = std::sqrt(ss);
  for (std::size_t d = 0; d < dim_; ++d) out[d] = static_cast<float>(query[d] / norm);
  for (std::size_t d = dim_; d < pdim_; ++d) out[d] = 0.0f;
}

void ExperienceIndex::reserve_rows(std::size_t rows) {
  if (rows <= capacity_) return;
  const std::size_t cap = std::max({rows, capacity_ + capacity_ / 2, std::size_t(16)});
  rows_.reserve(cap * row_bytes(), size_ * row_bytes());
  ids_.reserve(cap);
  tags_.reserve(cap);
  values_.reserve(cap);
  capacity_ = cap;
}

void ExperienceIndex::add(const std::int64_t* ids, const float* vectors,
                          const std::uint32_t* tags, std::uint32_t tag, std::size_t n) {
  if (n == 0) return;
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] < 0) {
      throw std::invalid_argument("ids must be >= 0; ids[" + std::to_string(i) + "] is " +
                                  id_str(ids[i]));
    }
  }
  {
    std::vector<std::int64_t> sorted(ids, ids + n);
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) {
      throw std::invalid_argument("duplicate id " + id_str(*dup) + " in ids; ids must be unique");
    }
  }
  // Normalise before taking the lock: readers keep running meanwhile.
  const std::size_t rb = row_bytes();
  std::vector<unsigned char> encoded(n * rb);
  encode_rows(vectors, n, encoded.data());

  std::unique_lock<std::shared_mutex> lock(mutex_);
  for (std::size_t i = 0; i < n; ++i) {
    if (id_to_row_.contains(ids[i])) {
      throw std::invalid_argument("id " + id_str(ids[i]) +
                                  " is already in the index; use update_vector to change it");
    }
  }
  if (n > kMaxRows - size_) {
    throw std::invalid_argument("the index cannot hold more than " + std::to_string(kMaxRows) +
                                " rows");
  }
  reserve_rows(size_ + n);
  id_to_row_.reserve(size_ + n);
  std::memcpy(row_ptr(size_), encoded.data(), n * rb);
  for (std::size_t i = 0; i < n; ++i) {
    ids_.push_back(ids[i]);
    tags_.push_back(tags != nullptr ? tags[i] : tag);
    values_.push_back(RowValues{{0.0, 0.0}, {0, 0}});
    id_to_row_.insert(ids[i], size_ + i);
  }
  size_ += n;
}

void ExperienceIndex::update_vector(std::int64_t id, const float* vector) {
  std::vector<unsigned char> encoded(row_bytes());
  encode_rows(vector, 1, encoded.data());
  std::unique_lock<std::shared_mutex> lock(mutex_);
  const std::uint64_t row = row_of(id);
  std::memcpy(row_ptr(row), encoded.data(), row_bytes());
}

void ExperienceIndex::set_tag(std::int64_t id, std::uint32_t tag) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  tags_[row_of(id)] = tag;
}

std::size_t ExperienceIndex::remove(const std::int64_t* ids, std::size_t n) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  std::size_t removed = 0;
  const std::size_t rb = row_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t row;
    if (!id_to_row_.find(ids[i], &row)) continue;
    const std::size_t last = size_ - 1;
    if (row != last) {
      std::memcpy(row_ptr(row), row_ptr(last), rb);
      ids_[row] = ids_[last];
      tags_[row] = tags_[last];
      values_[row] = values_[last];
      id_to_row_.assign(ids_[row], row);
    }
    id_to_row_.erase(ids[i]);
    ids_.pop_back();
    tags_.pop_back();
    values_.pop_back();
    --size_;
    ++removed;
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Scans

std::size_t ExperienceIndex::threads_for(std::size_t rows, std::size_t passing,
                                         std::size_t nq) const {
  std::size_t threads = num_threads();
  if (threads == 0) threads = default_threads();
  if (threads <= 1) return 1;
  // Work in "bytes streamed": the rows that pass the filter (a batch re-reads each block once
  // per 4 queries from cache), plus the tags the filter reads when not every row passes.
  const std::size_t work = passing * row_bytes() * (1 + (nq - 1) / 4) +
                           (passing < rows ? rows * sizeof(std::uint32_t) : 0);
  if (work < kParallelMinBytes) return 1;
  return std::max<std::size_t>(1, std::min(threads, work / kBytesPerThread));
}

std::size_t ExperienceIndex::scan_threads_locked(std::size_t nq, std::uint32_t tag_mask,
                                                 std::uint32_t tag_value) const {
  const std::size_t rows = size_;
  if (nq == 0 || rows == 0 || (tag_value & ~tag_mask) != 0) return 1;
  return threads_for(rows, estimate_passing(tags_.data(), rows, tag_mask, tag_value), nq);
}

std::size_t ExperienceIndex::scan_threads(std::size_t nq, std::uint32_t tag_mask,
                                          std::uint32_t tag_value) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return scan_threads_locked(nq, tag_mask, tag_value);
}

void ExperienceIndex::scan(const float* queries, std::size_t nq, std::size_t k,
                           std::uint32_t tag_mask, std::uint32_t tag_value,
                           const std::vector<std::uint32_t>& excluded,
                           std::vector<std::vector<Hit>>* out) const {
  out->assign(nq, {});
  const std::size_t rows = size_;
  if (nq == 0 || k == 0 || rows == 0) return;
  if ((tag_value & ~tag_mask) != 0) return;  // no tag can match
  const bool all_pass = tag_mask == 0;
  const simd::Kernels& kern = simd::active();
  const std::size_t block = std::max<std::size_t>(16, kBlockBytes / row_bytes());
  const std::size_t threads = scan_threads_locked(nq, tag_mask, tag_value);
  const std::size_t keep = std::min(k, rows);

  // Contiguous row ranges in whole blocks; each participating thread (slot) keeps its own
  // heaps across the chunks it runs. The merged top-k is the same whoever ran which chunk.
  const std::size_t blocks = (rows + block - 1) / block;
  const std::size_t chunks = threads == 1 ? 1 : std::min(blocks, threads * kChunksPerThread);
  const std::size_t blocks_per_chunk = (blocks + chunks - 1) / chunks;
  struct Partial {
    std::vector<TopK> heaps;
  };
  std::vector<Partial> partial(threads);

  parallel_chunks(chunks, threads, [&](std::size_t chunk, std::size_t slot) {
    const std::size_t begin = std::min(rows, chunk * blocks_per_chunk * block);
    const std::size_t end = std::min(rows, (chunk + 1) * blocks_per_chunk * block);
    Partial& part = partial[slot];
    if (part.heaps.empty()) {
      part.heaps.reserve(nq);
      for (std::size_t qi = 0; qi < nq; ++qi) part.heaps.emplace_back(keep);
    }
    ScanScratch& scratch = scan_scratch(block, nq * block);
    std::uint32_t* idx = scratch.idx.data();
    float* sims = scratch.sims.data();
    const std::uint32_t* tags = tags_.data();
    const std::int64_t* ids = ids_.data();
    std::size_t r = begin;
    while (r < end) {
      // Gather up to `block` passing rows.
      std::size_t m = 0;
      if (all_pass) {
        const std::size_t e = std::min(end, r + block);
        for (; r < e; ++r) idx[m++] = static_cast<std::uint32_t>(r);
      } else {
        m = kern.filter(tags, r, end, tag_mask, tag_value, idx, block, &r);
      }
      if (m == 0) continue;
      if (fp16_) {
        kern.dot_f16(queries, nq, reinterpret_cast<const std::uint16_t*>(rows_.data()), pdim_,
                     idx, m, sims);
      } else {
        kern.dot_f32(queries, nq, reinterpret_cast<const float*>(rows_.data()), pdim_, idx, m,
                     sims);
      }
      for (std::size_t qi = 0; qi < nq; ++qi) {
        TopK& heap = part.heaps[qi];
        const float* s = sims + qi * m;
        float threshold = heap.threshold();
        for (std::size_t i = 0; i < m; ++i) {
          if (s[i] < threshold) continue;
          const std::uint32_t row = idx[i];
          if (!excluded.empty() && std::binary_search(excluded.begin(), excluded.end(), row)) {
            continue;
          }
          heap.push(Hit{s[i], ids[row], row});
          threshold = heap.threshold();
        }
      }
    }
  });

  for (std::size_t qi = 0; qi < nq; ++qi) {
    if (threads == 1) {
      (*out)[qi] = std::move(partial[0].heaps[qi]).sorted();
      continue;
    }
    TopK merged(keep);
    for (const Partial& part : partial) {
      if (part.heaps.empty()) continue;
      for (const Hit& h : part.heaps[qi].items()) merged.push(h);
    }
    (*out)[qi] = std::move(merged).sorted();
  }
}

void ExperienceIndex::search(const float* queries, std::size_t nq, std::size_t k,
                             std::uint32_t tag_mask, std::uint32_t tag_value,
                             std::int64_t* out_ids, float* out_sims) const {
  if (nq == 0 || k == 0) return;
  std::vector<float> padded(nq * pdim_);
  for (std::size_t qi = 0; qi < nq; ++qi) {
    encode_query(queries + qi * dim_, padded.data() + qi * pdim_, qi);
  }
  std::vector<std::vector<Hit>> hits;
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    scan(padded.data(), nq, k, tag_mask, tag_value, {}, &hits);
  }
  for (std::size_t qi = 0; qi < nq; ++qi) {
    const std::vector<Hit>& h = hits[qi];
    for (std::size_t j = 0; j < k; ++j) {
      if (j < h.size()) {
        out_ids[qi * k + j] = h[j].id;
        out_sims[qi * k + j] = h[j].sim;
      } else {
        out_ids[qi * k + j] = -1;
        out_sims[qi * k + j] = -std::numeric_limits<float>::infinity();
      }
    }
  }
}

double ExperienceIndex::read_floor() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const std::size_t floats = size_ * row_bytes() / sizeof(float);
  if (floats == 0) return 0.0;
  const std::size_t threads = threads_for(size_, size_, 1);
  const std::size_t chunks = threads == 1 ? 1 : threads * kChunksPerThread;
  const std::size_t per_chunk = (floats / chunks + 15) / 16 * 16;
  std::vector<double> sums(chunks, 0.0);
  const simd::Kernels& kern = simd::active();
  const float* data = reinterpret_cast<const float*>(rows_.data());
  parallel_chunks(chunks, threads, [&](std::size_t c, std::size_t) {
    const std::size_t begin = std::min(floats, c * per_chunk);
    const std::size_t end = c + 1 == chunks ? floats : std::min(floats, begin + per_chunk);
    sums[c] = kern.sum_f32(data + begin, end - begin);
  });
  double total = 0.0;
  for (double s : sums) total += s;
  return total;
}

// ---------------------------------------------------------------------------------------------
// select

SelectResult ExperienceIndex::select(const float* query, const SelectOptions& o) const {
  check_stage(o.stage);
  if (!(o.pool_factor > 0.0) || !std::isfinite(o.pool_factor)) {
    throw std::invalid_argument("pool_factor must be a positive number");
  }
  if (!(o.epsilon >= 0.0 && o.epsilon <= 1.0)) {
    throw std::invalid_argument("epsilon must be in [0, 1]");
  }
  if (!std::isfinite(o.w_sim) || !std::isfinite(o.w_q)) {
    throw std::invalid_argument("w_sim and w_q must be finite numbers");
  }
  if (std::isnan(o.q_floor)) throw std::invalid_argument("q_floor must not be NaN");

  SelectResult result;
  if (o.n == 0) return result;
  std::vector<float> q(pdim_);
  encode_query(query, q.data(), 0);

  // 1-2. candidates and pool (top K by sim, ties by id), with their Q values.
  std::vector<Hit> pool;
  std::vector<double> qv;
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    std::vector<std::uint32_t> excluded;
    for (std::size_t i = 0; i < o.n_exclude; ++i) {
      std::uint64_t row;
      if (id_to_row_.find(o.exclude[i], &row)) excluded.push_back(static_cast<std::uint32_t>(row));
    }
    std::sort(excluded.begin(), excluded.end());
    excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
    const double want = std::ceil(o.pool_factor * static_cast<double>(o.n));
    const std::size_t k =
        want >= static_cast<double>(size_) ? size_ : static_cast<std::size_t>(want);
    std::vector<std::vector<Hit>> hits;
    scan(q.data(), 1, k, o.tag_mask, o.tag_value, excluded, &hits);
    pool = std::move(hits[0]);
    qv.reserve(pool.size());
    for (const Hit& h : pool) qv.push_back(values_[h.row].q[o.stage]);
  }
  const std::size_t p = pool.size();
  if (p == 0) return result;

  // 3. z-score fusion over the pool (one buffer: sims, z(sim), z(Q), score).
  std::vector<double> buf(4 * p);
  double* const sims = buf.data();
  double* const zs = sims + p;
  double* const zq = zs + p;
  double* const score = zq + p;
  for (std::size_t i = 0; i < p; ++i) sims[i] = pool[i].sim;
  zscores(sims, p, zs);
  zscores(qv.data(), p, zq);
  for (std::size_t i = 0; i < p; ++i) score[i] = o.w_sim * zs[i] + o.w_q * zq[i];

  // 4. drop Q < q_floor, lowest Q first (ties: id asc), while more than n remain.
  std::vector<std::size_t> order;  // first the dropped candidates, then the ranking
  order.reserve(p);
  std::vector<char> alive(p, 1);
  std::size_t remaining = p;
  if (remaining > o.n) {
    for (std::size_t i = 0; i < p; ++i) {
      if (qv[i] < o.q_floor) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return qv[a] < qv[b] || (qv[a] == qv[b] && pool[a].id < pool[b].id);
    });
    for (std::size_t i : order) {
      if (remaining <= o.n) break;
      alive[i] = 0;
      --remaining;
    }
    order.clear();
  }

  // 5. order by score desc (ties: sim desc, id asc), then fill n slots epsilon-greedily.
  for (std::size_t i = 0; i < p; ++i) {
    if (alive[i]) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (score[a] != score[b]) return score[a] > score[b];
    if (pool[a].sim != pool[b].sim) return pool[a].sim > pool[b].sim;
    return pool[a].id < pool[b].id;
  });
  const std::size_t r = std::min(o.n, order.size());
  SplitMix64 rng(o.seed);
  result.ids.reserve(r);
  result.sims.reserve(r);
  result.scores.reserve(r);
  Remaining left(order.size());
  for (std::size_t slot = 0; slot < r; ++slot) {
    std::size_t j = 0;  // the best remaining item, unless exploring
    if (rng.uniform() < o.epsilon) {
      j = static_cast<std::size_t>(rng.uniform() * static_cast<double>(order.size() - slot));
    }
    const std::size_t i = order[left.take(j)];
    result.ids.push_back(pool[i].id);
    result.sims.push_back(pool[i].sim);
    result.scores.push_back(static_cast<float>(score[i]));
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Q values

void ExperienceIndex::get_q(const std::int64_t* ids, std::size_t n, int stage,
                            double* out) const {
  check_stage(stage);
  std::shared_lock<std::shared_mutex> lock(mutex_);
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 8 < n) id_to_row_.prefetch(ids[i + 8]);
    out[i] = values_[row_of(ids[i])].q[stage];
  }
}

void ExperienceIndex::get_visits(const std::int64_t* ids, std::size_t n, int stage,
                                 std::int64_t* out) const {
  check_stage(stage);
  std::shared_lock<std::shared_mutex> lock(mutex_);
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 8 < n) id_to_row_.prefetch(ids[i + 8]);
    out[i] = values_[row_of(ids[i])].visits[stage];
  }
}

void ExperienceIndex::set_q(const std::int64_t* ids, std::size_t n, int stage, const double* q,
                            const std::int64_t* visits) {
  check_stage(stage);
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(q[i])) {
      throw std::invalid_argument("q[" + std::to_string(i) + "] is not finite");
    }
    if (visits[i] < 0) {
      throw std::invalid_argument("visits[" + std::to_string(i) + "] is negative");
    }
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  std::vector<std::uint64_t> rows(n);
  for (std::size_t i = 0; i < n; ++i) rows[i] = row_of(ids[i]);
  for (std::size_t i = 0; i < n; ++i) {
    values_[rows[i]].q[stage] = q[i];
    values_[rows[i]].visits[stage] = visits[i];
  }
}

void ExperienceIndex::update_q(const std::int64_t* ids, std::size_t n, int stage,
                               const double* rewards, std::size_t reward_stride, double alpha,
                               double* out) {
  check_stage(stage);
  if (!(alpha >= 0.0 && alpha <= 1.0)) throw std::invalid_argument("alpha must be in [0, 1]");
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(rewards[i * reward_stride])) {
      throw std::invalid_argument("rewards must be finite; rewards[" + std::to_string(i) +
                                  "] is not");
    }
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  // Look every id up first (prefetching ahead) so that a missing id changes nothing.
  std::vector<std::uint32_t> rows(n);
  constexpr std::size_t kAhead = 16;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) id_to_row_.prefetch(ids[i + kAhead]);
    rows[i] = static_cast<std::uint32_t>(row_of(ids[i]));
  }
  RowValues* values = values_.data();
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(values + rows[i + kAhead], 1);
    RowValues& v = values[rows[i]];
    const double r = rewards[i * reward_stride];
    v.q[stage] += alpha * (r - v.q[stage]);
    v.visits[stage] += 1;
    out[i] = v.q[stage];
  }
}

// ---------------------------------------------------------------------------------------------
// Reward statistics

double ExperienceIndex::normalize_reward(int stage, double reward) {
  check_stage(stage);
  if (!std::isfinite(reward)) throw std::invalid_argument("reward must be a finite number");
  std::unique_lock<std::shared_mutex> lock(mutex_);
  StageStats& s = stats_[stage];
  s.count += 1;
  const double beta = std::max(reward_beta_, 1.0 / static_cast<double>(s.count));
  s.mean = (1.0 - beta) * s.mean + beta * reward;
  s.sq = (1.0 - beta) * s.sq + beta * reward * reward;
  if (s.count < reward_warmup_) return reward;
  const double var = std::max(s.sq - s.mean * s.mean, 0.0);
  return (reward - s.mean) / std::max(std::sqrt(var), reward_std_floor_);
}

RewardStats ExperienceIndex::reward_stats(int stage) const {
  check_stage(stage);
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const StageStats& s = stats_[stage];
  return RewardStats{s.count, s.mean, std::max(s.sq - s.mean * s.mean, 0.0)};
}

void ExperienceIndex::set_reward_stats(int stage, std::int64_t count, double mean, double var) {
  check_stage(stage);
  if (count < 0) throw std::invalid_argument("count must be >= 0");
  if (!std::isfinite(mean)) throw std::invalid_argument("mean must be finite");
  if (!(var >= 0.0) || !std::isfinite(var)) {
    throw std::invalid_argument("var must be a finite number >= 0");
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  stats_[stage] = StageStats{count, mean, var + mean * mean};
}

// ---------------------------------------------------------------------------------------------
// Save / load

void ExperienceIndex::save(const std::string& path) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  format::Writer w(path);
  format::Header h;
  h.flags = fp16_ ? format::kFlagFp16 : 0u;
  h.dim = static_cast<std::uint32_t>(dim_);
  h.n = size_;
  h.reward_beta = reward_beta_;
  h.reward_std_floor = reward_std_floor_;
  h.reward_warmup = reward_warmup_;
  for (int s = 0; s < kStages; ++s) {
    h.stats[s] = format::StageStats{stats_[s].count, stats_[s].mean, stats_[s].sq};
  }
  w.write_header(h);
  w.write(ids_.data(), size_ * sizeof(std::int64_t));
  w.write(tags_.data(), size_ * sizeof(std::uint32_t));
  std::vector<double> q(size_);
  std::vector<std::int64_t> visits(size_);
  for (int s = 0; s < kStages; ++s) {
    for (std::size_t i = 0; i < size_; ++i) q[i] = values_[i].q[s];
    w.write(q.data(), size_ * sizeof(double));
  }
  for (int s = 0; s < kStages; ++s) {
    for (std::size_t i = 0; i < size_; ++i) visits[i] = values_[i].visits[s];
    w.write(visits.data(), size_ * sizeof(std::int64_t));
  }
  const std::size_t elem = fp16_ ? 2 : 4;
  if (dim_ == pdim_) {
    w.write(rows_.data(), size_ * row_bytes());
  } else {
    for (std::size_t i = 0; i < size_; ++i) w.write(row_ptr(i), dim_ * elem);
  }
  w.commit();
}

std::unique_ptr<ExperienceIndex> ExperienceIndex::load(const std::string& path) {
  format::Reader r(path);
  const format::Header h = r.read_header();
  if (!(h.reward_beta > 0.0 && h.reward_beta <= 1.0) || !(h.reward_std_floor > 0.0) ||
      !std::isfinite(h.reward_std_floor) || h.reward_warmup < 0) {
    r.fail("the file is corrupted (invalid reward settings)");
  }
  IndexOptions o;
  o.dim = h.dim;
  o.fp16 = h.fp16();
  o.reward_beta = h.reward_beta;
  o.reward_std_floor = h.reward_std_floor;
  o.reward_warmup = h.reward_warmup;
  auto index = std::make_unique<ExperienceIndex>(o);
  ExperienceIndex& x = *index;  // not yet shared: no lock needed
  const std::size_t n = static_cast<std::size_t>(h.n);
  x.reserve_rows(n);
  x.ids_.resize(n);
  x.tags_.resize(n);
  x.values_.resize(n);
  r.read(x.ids_.data(), n * sizeof(std::int64_t));
  r.read(x.tags_.data(), n * sizeof(std::uint32_t));
  std::vector<double> q(n);
  std::vector<std::int64_t> visits(n);
  for (int s = 0; s < kStages; ++s) {
    r.read(q.data(), n * sizeof(double));
    for (std::size_t i = 0; i < n; ++i) x.values_[i].q[s] = q[i];
  }
  for (int s = 0; s < kStages; ++s) {
    r.read(visits.data(), n * sizeof(std::int64_t));
    for (std::size_t i = 0; i < n; ++i) x.values_[i].visits[s] = visits[i];
  }
  const std::size_t elem = x.fp16_ ? 2 : 4;
  if (x.dim_ == x.pdim_) {
    r.read(x.rows_.data(), n * x.row_bytes());
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      unsigned char* dst = x.row_ptr(i);
      std::memset(dst, 0, x.row_bytes());
      r.read(dst, x.dim_ * elem);
    }
  }
  r.verify_checksum();

  // The checksum matched; still refuse values the index could not have written.
  for (int s = 0; s < kStages; ++s) {
    const format::StageStats& st = h.stats[s];
    if (st.count < 0 || !std::isfinite(st.mean) || !std::isfinite(st.sq)) {
      r.fail("the file is corrupted (invalid reward statistics)");
    }
    x.stats_[s] = StageStats{st.count, st.mean, st.sq};
  }
  x.id_to_row_.reserve(n);
  std::vector<float> row(x.dim_);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t id = x.ids_[i];
    if (id < 0 || x.id_to_row_.contains(id)) r.fail("the file is corrupted (invalid ids)");
    x.id_to_row_.insert(id, i);
    for (int s = 0; s < kStages; ++s) {
      if (!std::isfinite(x.values_[i].q[s]) || x.values_[i].visits[s] < 0) {
        r.fail("the file is corrupted (invalid Q values or visit counts)");
      }
    }
    const float* v = reinterpret_cast<const float*>(x.row_ptr(i));
    if (x.fp16_) {
      for (std::size_t d = 0; d < x.dim_; ++d) {
        row[d] = simd::half_to_float(reinterpret_cast<const std::uint16_t*>(x.row_ptr(i))[d]);
      }
      v = row.data();
    }
    const double ss = sum_squares(v, x.dim_);
    if (!(std::fabs(ss - 1.0) < 0.02)) r.fail("the file is corrupted (invalid vectors)");
  }
  x.size_ = n;
  return index;
}

}  // namespace evokernel
