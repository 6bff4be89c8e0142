// AVX2 + FMA + F16C kernels (x86-64). Compiled with -mavx2 -mfma -mf16c; includes only
// intrinsics, so nothing compiled here can be picked up by code that runs on older CPUs.
#include <immintrin.h>

#include "simd.h"
#include "simd_x86_pair.h"

namespace evokernel {
namespace simd {
namespace {

// One query against 4 gathered rows (a tag filter skipped some), 16-float block by block:
// each block of the query is loaded once for the 4 rows, and the 4 rows' misses are in flight
// together. Meanwhile the line of each of the 4 rows xn[r] (a later tile) that the same block
// will need is prefetched, one prefetch per line, unless xn is null. pair_acc's arithmetic.
template <typename T>
inline void gathered_x1(const float* q, const T* const* x, const T* const* xn, std::size_t pdim,
                        float* out) {
  constexpr std::size_t kPerLine = 64 / (16 * sizeof(T));  // 16-float blocks per line
  __m256 a0[4], a1[4];
  for (int r = 0; r < 4; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  for (std::size_t d = 0; d < pdim; d += 16) {
    const __m256 q0 = _mm256_loadu_ps(q + d);
    const __m256 q1 = _mm256_loadu_ps(q + d + 8);
    const bool fetch = xn != nullptr && (d / 16) % kPerLine == 0;
    for (int r = 0; r < 4; ++r) {
      if (fetch) _mm_prefetch(reinterpret_cast<const char*>(xn[r] + d), _MM_HINT_T1);
      a0[r] = _mm256_fmadd_ps(load8(x[r] + d), q0, a0[r]);
      a1[r] = _mm256_fmadd_ps(load8(x[r] + d + 8), q1, a1[r]);
    }
  }
  _mm_storeu_ps(out, reduce4(_mm256_add_ps(a0[0], a1[0]), _mm256_add_ps(a0[1], a1[1]),
                             _mm256_add_ps(a0[2], a1[2]), _mm256_add_ps(a0[3], a1[3])));
}

// Three queries against two rows (x[1] may repeat x[0]); writes the first R rows' results.
template <int R, typename T>
inline void rows2_x3(const float* q, std::size_t pdim, const T* const* x, float* out,
                     std::size_t count) {
  __m256 acc[2][3][2];
  for (int r = 0; r < 2; ++r)
    for (int j = 0; j < 3; ++j) acc[r][j][0] = acc[r][j][1] = _mm256_setzero_ps();
  for (std::size_t d = 0; d < pdim; d += 16) {
    for (int h = 0; h < 2; ++h) {
      const __m256 x0 = load8(x[0] + d + 8 * h);
      const __m256 x1 = load8(x[1] + d + 8 * h);
      for (int j = 0; j < 3; ++j) {
        const __m256 qv = _mm256_loadu_ps(q + j * pdim + d + 8 * h);
        acc[0][j][h] = _mm256_fmadd_ps(x0, qv, acc[0][j][h]);
        acc[1][j][h] = _mm256_fmadd_ps(x1, qv, acc[1][j][h]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(16) float tmp[4];
    _mm_store_ps(tmp, reduce4(_mm256_add_ps(acc[r][0][0], acc[r][0][1]),
                              _mm256_add_ps(acc[r][1][0], acc[r][1][1]),
                              _mm256_add_ps(acc[r][2][0], acc[r][2][1]), _mm256_setzero_ps()));
    for (int j = 0; j < 3; ++j) out[j * count + r] = tmp[j];
  }
}

template <typename T>
void dot_impl(const float* queries, std::size_t nq, const T* base, std::size_t pdim,
              const std::uint32_t* rows, std::size_t count, float* out) {
  std::size_t qi = 0;
  for (; qi + 3 <= nq; qi += 3) {
    const float* q = queries + qi * pdim;
    float* o = out + qi * count;
    std::size_t i = 0;
    for (; i + 2 <= count; i += 2) {
      const T* x[2] = {base + rows[i] * pdim, base + rows[i + 1] * pdim};
      rows2_x3<2>(q, pdim, x, o + i, count);
    }
    if (i < count) {
      const T* x[2] = {base + rows[i] * pdim, base + rows[i] * pdim};
      rows2_x3<1>(q, pdim, x, o + i, count);
    }
  }
  for (; qi < nq; ++qi) {
    const float* q = queries + qi * pdim;
    float* o = out + qi * count;
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4) {
      const T* x[4] = {base + rows[i] * pdim, base + rows[i + 1] * pdim,
                       base + rows[i + 2] * pdim, base + rows[i + 3] * pdim};
      if (rows[i + 3] - rows[i] == 3) {
        rows_x1<4>(q, x, pdim, o + i);  // consecutive rows: left to the hardware prefetcher
        continue;
      }
      // Gathered rows: prefetch the tile kAhead rows ahead while computing this one.
      const T* xn[4] = {nullptr, nullptr, nullptr, nullptr};
      const bool ahead = i + kAhead + 4 <= count;
      for (std::size_t r = 0; ahead && r < 4; ++r) xn[r] = base + rows[i + kAhead + r] * pdim;
      gathered_x1(q, x, ahead ? xn : nullptr, pdim, o + i);
    }
    const std::size_t left = count - i;
    if (left > 0) {
      const T* x[4] = {base + rows[i] * pdim, base + rows[i] * pdim, base + rows[i] * pdim,
                       base + rows[i] * pdim};
      for (std::size_t r = 1; r < left; ++r) x[r] = base + rows[i + r] * pdim;
      if (left == 1) rows_x1<1>(q, x, pdim, o + i);
      if (left == 2) rows_x1<2>(q, x, pdim, o + i);
      if (left == 3) rows_x1<3>(q, x, pdim, o + i);
    }
  }
}

void dot_f32_avx2(const float* queries, std::size_t nq, const float* base, std::size_t pdim,
                  const std::uint32_t* rows, std::size_t count, float* out) {
  dot_impl(queries, nq, base, pdim, rows, count, out);
}

void dot_f16_avx2(const float* queries, std::size_t nq, const std::uint16_t* base,
                  std::size_t pdim, const std::uint32_t* rows, std::size_t count, float* out) {
  dot_impl(queries, nq, base, pdim, rows, count, out);
}

void half_to_float_avx2(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8(in + i));
  for (; i < n; ++i) out[i] = half_to_float(in[i]);
}

double sum_f32_avx2(const float* data, std::size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(data + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(data + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(data + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(data + i + 24));
  }
  alignas(16) float tmp[4];
  _mm_store_ps(tmp, reduce4(a0, a1, a2, a3));
  double total = static_cast<double>(tmp[0]) + tmp[1] + tmp[2] + tmp[3];
  for (; i < n; ++i) total += data[i];
  return total;
}

// Compaction with a permutation table: 8 tags per step. The table is a compile-time
// constant: no code from this file may run at load time (it could meet a CPU without AVX2).
struct CompressTable {
  std::uint32_t perm[256][8];
  constexpr CompressTable() : perm{} {
    for (int bits = 0; bits < 256; ++bits) {
      int n = 0;
      for (int i = 0; i < 8; ++i) {
        if (bits & (1 << i)) perm[bits][n++] = static_cast<std::uint32_t>(i);
      }
    }
  }
};
constexpr CompressTable kCompress{};

std::size_t filter_avx2(const std::uint32_t* tags, std::size_t begin, std::size_t end,
                        std::uint32_t mask, std::uint32_t value, std::uint32_t* idx,
                        std::size_t max, std::size_t* stop) {
  const __m256i vm = _mm256_set1_epi32(static_cast<int>(mask));
  const __m256i vv = _mm256_set1_epi32(static_cast<int>(value));
  const __m256i step = _mm256_set1_epi32(8);
  __m256i rows = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(begin)),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  std::size_t m = 0;
  std::size_t r = begin;
  for (; r + 8 <= end && m + 8 <= max; r += 8) {
    const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tags + r));
    const __m256i hit = _mm256_cmpeq_epi32(_mm256_and_si256(t, vm), vv);
    const int bits = _mm256_movemask_ps(_mm256_castsi256_ps(hit));
    const __m256i perm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kCompress.perm[bits]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + m),
                        _mm256_permutevar8x32_epi32(rows, perm));
    m += static_cast<std::size_t>(__builtin_popcount(static_cast<unsigned>(bits)));
    rows = _mm256_add_epi32(rows, step);
  }
  std::size_t tail_stop;
  m += filter_scalar(tags, r, end, mask, value, idx + m, max - m, &tail_stop);
  *stop = tail_stop;
  return m;
}

}  // namespace

const Kernels kAvx2Kernels = {Level::Avx2,   "avx2",         dot_f32_avx2,
                              dot_f16_avx2,  half_to_float_avx2, sum_f32_avx2,
                              filter_avx2};

}  // namespace simd
}  // namespace evokernel
