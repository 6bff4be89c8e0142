// AVX-512F kernels (x86-64). Compiled with -mavx512f (plus AVX2/FMA/F16C, which every AVX-512
// CPU has); includes only intrinsics.
//
// Every (query, row) pair is computed with exactly the arithmetic of the AVX2 level (8 lanes
// accumulated in dimension order, the same reduction tree), so the two x86 levels return
// bit-identical similarities. What AVX-512 adds is the batch kernel: a zmm register holds the
// same 8 lanes of two rows side by side, which with 32 registers gives a 4-row x 4-query tile
// with two accumulators per pair; and, for rows of up to 256 floats, a single-query kernel
// that keeps the query in 16 zmm registers: a zmm accumulator over 16-float blocks holds the
// even-block lanes in its low half and the odd-block lanes in its high half, which is the
// AVX2 pair's two accumulators, and a row then costs half the loads.
// Streaming rows from memory with 512-bit loads measured slower than with 256-bit loads on
// the CPUs we tried, so contiguous rows are still loaded in 256-bit halves.
#include <immintrin.h>

#include "simd.h"
#include "simd_x86_pair.h"

namespace evokernel {
namespace simd {
namespace {

// 8 lanes of row a in the low half, 8 lanes of row b in the high half.
inline __m512 load_pair(const float* a, const float* b) {
  const __m512d lo = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(a)));
  return _mm512_castpd_ps(_mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(b)), 1));
}
inline __m512 load_pair(const std::uint16_t* a, const std::uint16_t* b) {
  const __m256i h = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  return _mm512_cvtph_ps(h);
}

// The same 8 query lanes in both halves.
inline __m512 broadcast8(const float* q) {
  return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(q))));
}

inline __m256 low8(__m512 v) { return _mm512_castps512_ps256(v); }
inline __m256 high8(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

inline void prefetch_row(const void* p, std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T1);
}

// 16 floats of a row. Contiguous runs load them as two 256-bit halves: streaming rows from
// memory with 512-bit loads measured slower than with 256-bit loads on the CPUs we tried
// (as for the batch kernel); for gathered rows (tag-filtered, mostly from cache) full 512-bit
// loads measured faster.
inline __m512 load16(const float* p) { return load_pair(p, p + 8); }
inline __m512 load16(const std::uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load16_gathered(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16_gathered(const std::uint16_t* p) { return load16(p); }

// pair_acc's even + odd, from one zmm accumulator over 16-float blocks: its low half holds the
// even-block lanes and its high half the odd-block lanes, each summed in dimension order.
inline __m256 fold(__m512 v) { return _mm256_add_ps(low8(v), high8(v)); }

// One query of NB 16-float blocks (pdim = 16 * NB <= 256) held in registers, against one row:
// pair_acc's arithmetic as a single zmm chain, and no query loads (a row costs NB loads).
template <int NB, typename T>
inline __m512 row_acc(const __m512* qr, const T* x) {
  __m512 a = _mm512_setzero_ps();
  for (int b = 0; b < NB; ++b) a = _mm512_fmadd_ps(load16(x + 16 * b), qr[b], a);
  return a;
}

// row_acc for 8 gathered rows x[r] at once, block by block, so that 8 rows' misses are in
// flight together; meanwhile the line of each of the next 8 rows xn[r] that the same block
// will need is prefetched (one prefetch per line, spread among the loads), unless xn is null.
template <int NB, typename T>
inline void rows8_acc(const __m512* qr, const T* const* x, const T* const* xn, __m512* acc) {
  constexpr int kPerLine = static_cast<int>(64 / (16 * sizeof(T)));  // blocks per line
  for (int r = 0; r < 8; ++r) acc[r] = _mm512_setzero_ps();
  for (int b = 0; b < NB; ++b) {
    for (int r = 0; r < 8; ++r) {
      if (xn != nullptr && b % kPerLine == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(xn[r] + 16 * b), _MM_HINT_T1);
      }
      acc[r] = _mm512_fmadd_ps(load16_gathered(x[r] + 16 * b), qr[b], acc[r]);
    }
  }
}

// The single-query scan for pdim = 16 * NB <= 256: the query stays in registers, 8 rows per
// step. A run of 8 consecutive rows is read row after row (sequential addresses keep the
// hardware prefetcher streaming; out-of-order execution overlaps the rows' independent
// chains); 8 gathered rows go through rows8_acc, which prefetches the next 8.
template <int NB, typename T>
void scan_qreg(const float* q, const T* base, const std::uint32_t* rows, std::size_t count,
               float* out) {
  constexpr std::size_t pdim = 16 * NB;
  __m512 qr[NB];
  for (int b = 0; b < NB; ++b) qr[b] = _mm512_loadu_ps(q + 16 * b);
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m512 a[8];
    if (rows[i + 7] - rows[i] == 7) {
      const T* x = base + rows[i] * pdim;
      for (int r = 0; r < 8; ++r) a[r] = row_acc<NB>(qr, x + r * pdim);
    } else {
      const T* x[8];
      const T* xn[8];
      const bool ahead = i + 16 <= count;
      for (int r = 0; r < 8; ++r) {
        x[r] = base + rows[i + r] * pdim;
        xn[r] = ahead ? base + rows[i + 8 + r] * pdim : nullptr;
      }
      rows8_acc<NB>(qr, x, ahead ? xn : nullptr, a);
    }
    _mm_storeu_ps(out + i, reduce4(fold(a[0]), fold(a[1]), fold(a[2]), fold(a[3])));
    _mm_storeu_ps(out + i + 4, reduce4(fold(a[4]), fold(a[5]), fold(a[6]), fold(a[7])));
  }
  for (; i < count; i += 4) {
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    const std::size_t n = count - i < 4 ? count - i : 4;
    for (std::size_t r = 0; r < n; ++r) a[r] = row_acc<NB>(qr, base + rows[i + r] * pdim);
    alignas(16) float tmp[4];
    _mm_store_ps(tmp, reduce4(fold(a[0]), fold(a[1]), fold(a[2]), fold(a[3])));
    for (std::size_t r = 0; r < n; ++r) out[i + r] = tmp[r];
  }
}

template <typename T>
using ScanFn = void (*)(const float*, const T*, const std::uint32_t*, std::size_t, float*);

// scan_qreg for pdim = 16 * nb, nb = 1..16; nullptr for wider rows (which take rows_x1).
template <typename T>
ScanFn<T> scan_qreg_for(std::size_t nb) {
  static constexpr ScanFn<T> table[17] = {
      nullptr,           scan_qreg<1, T>,  scan_qreg<2, T>,  scan_qreg<3, T>,
      scan_qreg<4, T>,   scan_qreg<5, T>,  scan_qreg<6, T>,  scan_qreg<7, T>,
      scan_qreg<8, T>,   scan_qreg<9, T>,  scan_qreg<10, T>, scan_qreg<11, T>,
      scan_qreg<12, T>,  scan_qreg<13, T>, scan_qreg<14, T>, scan_qreg<15, T>,
      scan_qreg<16, T>};
  return nb <= 16 ? table[nb] : nullptr;
}

// Four queries against four rows (x holds 4 row pointers; unused ones repeat a valid row).
// acc[p][j][h]: rows 2p (low half) and 2p+1 (high half), query j, even (h=0) or odd blocks.
// Writes the first R rows' results.
template <int R, typename T>
inline void rows4_x4(const float* q, std::size_t pdim, const T* const* x, float* out,
                     std::size_t count) {
  __m512 acc[2][4][2];
  for (int p = 0; p < 2; ++p)
    for (int j = 0; j < 4; ++j) acc[p][j][0] = acc[p][j][1] = _mm512_setzero_ps();
  for (std::size_t d = 0; d < pdim; d += 16) {
    for (int h = 0; h < 2; ++h) {
      const std::size_t off = d + 8 * h;
      const __m512 x01 = load_pair(x[0] + off, x[1] + off);
      const __m512 x23 = load_pair(x[2] + off, x[3] + off);
      for (int j = 0; j < 4; ++j) {
        const __m512 qv = broadcast8(q + j * pdim + off);
        acc[0][j][h] = _mm512_fmadd_ps(x01, qv, acc[0][j][h]);
        acc[1][j][h] = _mm512_fmadd_ps(x23, qv, acc[1][j][h]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) {
      const __m512 e = acc[r >> 1][j][0];
      const __m512 o = acc[r >> 1][j][1];
      v[j] = (r & 1) ? _mm256_add_ps(high8(e), high8(o)) : _mm256_add_ps(low8(e), low8(o));
    }
    alignas(16) float tmp[4];
    _mm_store_ps(tmp, reduce4(v[0], v[1], v[2], v[3]));
    for (int j = 0; j < 4; ++j) out[j * count + r] = tmp[j];
  }
}

template <typename T>
void dot_impl(const float* queries, std::size_t nq, const T* base, std::size_t pdim,
              const std::uint32_t* rows, std::size_t count, float* out) {
  const std::size_t row_bytes = pdim * sizeof(T);
  std::size_t qi = 0;
  for (; qi + 4 <= nq; qi += 4) {
    const float* q = queries + qi * pdim;
    float* o = out + qi * count;
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4) {
      const T* x[4] = {base + rows[i] * pdim, base + rows[i + 1] * pdim,
                       base + rows[i + 2] * pdim, base + rows[i + 3] * pdim};
      rows4_x4<4>(q, pdim, x, o + i, count);
    }
    const std::size_t left = count - i;
    if (left > 0) {
      const T* x[4] = {base + rows[i] * pdim, base + rows[i] * pdim, base + rows[i] * pdim,
                       base + rows[i] * pdim};
      for (std::size_t r = 1; r < left; ++r) x[r] = base + rows[i + r] * pdim;
      if (left == 1) rows4_x4<1>(q, pdim, x, o + i, count);
      if (left == 2) rows4_x4<2>(q, pdim, x, o + i, count);
      if (left == 3) rows4_x4<3>(q, pdim, x, o + i, count);
    }
  }
  if (qi < nq) {
    if (const ScanFn<T> scan = scan_qreg_for<T>(pdim / 16)) {
      for (; qi < nq; ++qi) scan(queries + qi * pdim, base, rows, count, out + qi * count);
      return;
    }
  }
  for (; qi < nq; ++qi) {
    const float* q = queries + qi * pdim;
    float* o = out + qi * count;
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4) {
      // Gathered rows (a tag filter skipped some): fetch the next tile's rows ahead; runs of
      // consecutive rows are left to the hardware prefetcher.
      if (i + kAhead + 4 <= count && rows[i + kAhead + 3] - rows[i + kAhead] != 3) {
        for (std::size_t r = kAhead; r < kAhead + 4; ++r) {
          prefetch_row(base + rows[i + r] * pdim, row_bytes);
        }
      }
      const T* x[4] = {base + rows[i] * pdim, base + rows[i + 1] * pdim,
                       base + rows[i + 2] * pdim, base + rows[i + 3] * pdim};
      rows_x1<4>(q, x, pdim, o + i);
    }
    const std::size_t left = count - i;
    if (left > 0) {
      const T* x[4] = {base + rows[i] * pdim, nullptr, nullptr, nullptr};
      for (std::size_t r = 1; r < left; ++r) x[r] = base + rows[i + r] * pdim;
      if (left == 1) rows_x1<1>(q, x, pdim, o + i);
      if (left == 2) rows_x1<2>(q, x, pdim, o + i);
      if (left == 3) rows_x1<3>(q, x, pdim, o + i);
    }
  }
}

void dot_f32_avx512(const float* queries, std::size_t nq, const float* base, std::size_t pdim,
                    const std::uint32_t* rows, std::size_t count, float* out) {
  dot_impl(queries, nq, base, pdim, rows, count, out);
}

void dot_f16_avx512(const float* queries, std::size_t nq, const std::uint16_t* base,
                    std::size_t pdim, const std::uint32_t* rows, std::size_t count, float* out) {
  dot_impl(queries, nq, base, pdim, rows, count, out);
}

void half_to_float_avx512(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(out + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
  }
  for (; i < n; ++i) out[i] = half_to_float(in[i]);
}

double sum_f32_avx512(const float* data, std::size_t n) {
  // The benchmark's read floor: 256-bit loads, like the single-query scan.
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

// Compaction with VPCOMPRESSD: 16 tags per step (writes up to 16 entries; max - m >= 16).
std::size_t filter_avx512(const std::uint32_t* tags, std::size_t begin, std::size_t end,
                          std::uint32_t mask, std::uint32_t value, std::uint32_t* idx,
                          std::size_t max, std::size_t* stop) {
  const __m512i vm = _mm512_set1_epi32(static_cast<int>(mask));
  const __m512i vv = _mm512_set1_epi32(static_cast<int>(value));
  const __m512i step = _mm512_set1_epi32(16);
  __m512i rows = _mm512_add_epi32(
      _mm512_set1_epi32(static_cast<int>(begin)),
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  std::size_t m = 0;
  std::size_t r = begin;
  for (; r + 16 <= end && m + 16 <= max; r += 16) {
    const __m512i t = _mm512_loadu_si512(tags + r);
    const __mmask16 hit = _mm512_cmpeq_epi32_mask(_mm512_and_si512(t, vm), vv);
    // Compress in a register, then a plain store (a compressing store is slow on some CPUs).
    _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(hit, rows));
    m += static_cast<std::size_t>(__builtin_popcount(static_cast<unsigned>(hit)));
    rows = _mm512_add_epi32(rows, step);
  }
  std::size_t tail_stop;
  m += filter_scalar(tags, r, end, mask, value, idx + m, max - m, &tail_stop);
  *stop = tail_stop;
  return m;
}

}  // namespace

const Kernels kAvx512Kernels = {Level::Avx512,   "avx512",         dot_f32_avx512,
                                dot_f16_avx512,  half_to_float_avx512, sum_f32_avx512,
                                filter_avx512};

}  // namespace simd
}  // namespace evokernel
