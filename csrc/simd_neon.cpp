// NEON kernels (aarch64, where Advanced SIMD and half conversions are baseline).
#include <arm_neon.h>

#include "simd.h"

namespace evokernel {
namespace simd {
namespace {

inline float32x4_t load4(const float* p) { return vld1q_f32(p); }
inline float32x4_t load4(const std::uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

// Rows ahead of the current tile whose lines a gathered scan prefetches.
constexpr std::size_t kAhead = 8;

inline void prefetch_row(const void* p, std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 2);
}

// Sums of four accumulators, each by the same tree: (l0+l1)+(l2+l3).
inline float32x4_t reduce4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
  return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
}

// The arithmetic of one (query, row) pair: four 4-lane accumulators over 4-float blocks
// k = 0..3 (mod 4), each in dimension order (four chains hide the FMA latency), then
// (a0 + a1) + (a2 + a3), then the reduce4 tree.
template <typename T>
inline float32x4_t pair_acc(const float* q, const T* x, std::size_t pdim) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = vdupq_n_f32(0.f), a2 = vdupq_n_f32(0.f),
              a3 = vdupq_n_f32(0.f);
  for (std::size_t d = 0; d < pdim; d += 16) {
    a0 = vfmaq_f32(a0, load4(x + d), vld1q_f32(q + d));
    a1 = vfmaq_f32(a1, load4(x + d + 4), vld1q_f32(q + d + 4));
    a2 = vfmaq_f32(a2, load4(x + d + 8), vld1q_f32(q + d + 8));
    a3 = vfmaq_f32(a3, load4(x + d + 12), vld1q_f32(q + d + 12));
  }
  return vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3));
}

// One query against R (1..4) rows, row after row (sequential addresses for the prefetcher).
template <int R, typename T>
inline void rows_x1(const float* q, const T* const* x, std::size_t pdim, float* out) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int r = 0; r < R; ++r) acc[r] = pair_acc(q, x[r], pdim);
  const float32x4_t s = reduce4(acc[0], acc[1], acc[2], acc[3]);
  if (R == 4) {
    vst1q_f32(out, s);
  } else {
    float tmp[4];
    vst1q_f32(tmp, s);
    for (int r = 0; r < R; ++r) out[r] = tmp[r];
  }
}

// Two queries against two rows (x[1] may repeat x[0]); writes the first R rows' results.
template <int R, typename T>
inline void rows2_x2(const float* q, std::size_t pdim, const T* const* x, float* out,
                     std::size_t count) {
  float32x4_t acc[2][2][4];
  for (int r = 0; r < 2; ++r)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k) acc[r][j][k] = vdupq_n_f32(0.f);
  for (std::size_t d = 0; d < pdim; d += 16) {
    for (int k = 0; k < 4; ++k) {
      const std::size_t off = d + 4 * k;
      const float32x4_t x0 = load4(x[0] + off);
      const float32x4_t x1 = load4(x[1] + off);
      const float32x4_t q0 = vld1q_f32(q + off);
      const float32x4_t q1 = vld1q_f32(q + pdim + off);
      acc[0][0][k] = vfmaq_f32(acc[0][0][k], x0, q0);
      acc[0][1][k] = vfmaq_f32(acc[0][1][k], x0, q1);
      acc[1][0][k] = vfmaq_f32(acc[1][0][k], x1, q0);
      acc[1][1][k] = vfmaq_f32(acc[1][1][k], x1, q1);
    }
  }
  for (int r = 0; r < R; ++r) {
    float32x4_t v[2];
    for (int j = 0; j < 2; ++j) {
      v[j] = vaddq_f32(vaddq_f32(acc[r][j][0], acc[r][j][1]),
                       vaddq_f32(acc[r][j][2], acc[r][j][3]));
    }
    float tmp[4];
    vst1q_f32(tmp, reduce4(v[0], v[1], vdupq_n_f32(0.f), vdupq_n_f32(0.f)));
    out[r] = tmp[0];
    out[count + r] = tmp[1];
  }
}

template <typename T>
void dot_impl(const float* queries, std::size_t nq, const T* base, std::size_t pdim,
              const std::uint32_t* rows, std::size_t count, float* out) {
  std::size_t qi = 0;
  for (; qi + 2 <= nq; qi += 2) {
    const float* q = queries + qi * pdim;
    float* o = out + qi * count;
    std::size_t i = 0;
    for (; i + 2 <= count; i += 2) {
      const T* x[2] = {base + rows[i] * pdim, base + rows[i + 1] * pdim};
      rows2_x2<2>(q, pdim, x, o + i, count);
    }
    if (i < count) {
      const T* x[2] = {base + rows[i] * pdim, base + rows[i] * pdim};
      rows2_x2<1>(q, pdim, x, o + i, count);
    }
  }
  const std::size_t row_bytes = pdim * sizeof(T);
  for (; qi < nq; ++qi) {
    const float* q = queries + qi * pdim;
    float* o = out + qi * count;
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4) {
      // Gathered rows (a tag filter skipped some): fetch rows ahead; runs of consecutive rows
      // are left to the hardware prefetcher.
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

void dot_f32_neon(const float* queries, std::size_t nq, const float* base, std::size_t pdim,
                  const std::uint32_t* rows, std::size_t count, float* out) {
  dot_impl(queries, nq, base, pdim, rows, count, out);
}

void dot_f16_neon(const float* queries, std::size_t nq, const std::uint16_t* base,
                  std::size_t pdim, const std::uint32_t* rows, std::size_t count, float* out) {
  dot_impl(queries, nq, base, pdim, rows, count, out);
}

void half_to_float_neon(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load4(in + i));
  for (; i < n; ++i) out[i] = half_to_float(in[i]);
}

double sum_f32_neon(const float* data, std::size_t n) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = vdupq_n_f32(0.f), a2 = vdupq_n_f32(0.f),
              a3 = vdupq_n_f32(0.f);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = vaddq_f32(a0, vld1q_f32(data + i));
    a1 = vaddq_f32(a1, vld1q_f32(data + i + 4));
    a2 = vaddq_f32(a2, vld1q_f32(data + i + 8));
    a3 = vaddq_f32(a3, vld1q_f32(data + i + 12));
  }
  float tmp[4];
  vst1q_f32(tmp, reduce4(a0, a1, a2, a3));
  double total = static_cast<double>(tmp[0]) + tmp[1] + tmp[2] + tmp[3];
  for (; i < n; ++i) total += data[i];
  return total;
}

}  // namespace

const Kernels kNeonKernels = {Level::Neon,   "neon",         dot_f32_neon,
                              dot_f16_neon,  half_to_float_neon, sum_f32_neon,
                              filter_scalar};

}  // namespace simd
}  // namespace evokernel
