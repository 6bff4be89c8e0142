// The (query, row) arithmetic shared by the AVX2 and AVX-512 levels, so that both return
// bit-identical similarities by construction. Included only by simd_avx2.cpp and
// simd_avx512.cpp, each compiled with its own -m flags; everything here has internal linkage
// (an anonymous namespace), so no symbol compiled for one level can be used by the other.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace evokernel {
namespace simd {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const std::uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Sums of four accumulators, each by the same tree: ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 t0 = _mm256_hadd_ps(a, b);
  const __m256 t1 = _mm256_hadd_ps(c, d);
  const __m256 t2 = _mm256_hadd_ps(t0, t1);
  return _mm_add_ps(_mm256_castps256_ps128(t2), _mm256_extractf128_ps(t2, 1));
}

// Rows ahead of the current tile whose lines a gathered scan prefetches.
constexpr std::size_t kAhead = 8;

// One (query, row) pair: two 8-lane accumulators over the even and the odd 8-float blocks,
// each in dimension order (two chains halve the FMA latency per row), then even + odd; the
// caller finishes with the reduce4 tree.
template <typename T>
inline __m256 pair_acc(const float* q, const T* x, std::size_t pdim) {
  __m256 a0 = _mm256_setzero_ps();
  __m256 a1 = _mm256_setzero_ps();
  for (std::size_t d = 0; d < pdim; d += 16) {
    a0 = _mm256_fmadd_ps(load8(x + d), _mm256_loadu_ps(q + d), a0);
    a1 = _mm256_fmadd_ps(load8(x + d + 8), _mm256_loadu_ps(q + d + 8), a1);
  }
  return _mm256_add_ps(a0, a1);
}

// One query against R (1..4) rows, row after row (sequential addresses keep the hardware
// prefetcher streaming; out-of-order execution overlaps the rows' independent chains).
template <int R, typename T>
inline void rows_x1(const float* q, const T* const* x, std::size_t pdim, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int r = 0; r < R; ++r) acc[r] = pair_acc(q, x[r], pdim);
  const __m128 s = reduce4(acc[0], acc[1], acc[2], acc[3]);
  if (R == 4) {
    _mm_storeu_ps(out, s);
  } else {
    alignas(16) float tmp[4];
    _mm_store_ps(tmp, s);
    for (int r = 0; r < R; ++r) out[r] = tmp[r];
  }
}

}  // namespace
}  // namespace simd
}  // namespace evokernel
