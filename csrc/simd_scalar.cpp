// Portable kernels: the reference every other level is tested against, and the fallback on any
// CPU. Written as 8 independent lanes so a compiler vectorises them at the baseline ISA.
#include <cstring>

#include "simd.h"

namespace evokernel {
namespace simd {
namespace {

constexpr std::size_t kLanes = 8;

inline float reduce_lanes(const float* acc) {
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

inline float dot_pair_f32(const float* q, const float* x, std::size_t pdim) {
  float acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (std::size_t d = 0; d < pdim; d += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) acc[j] += q[d + j] * x[d + j];
  }
  return reduce_lanes(acc);
}

void dot_f32_scalar(const float* queries, std::size_t nq, const float* base, std::size_t pdim,
                    const std::uint32_t* rows, std::size_t count, float* out) {
  for (std::size_t i = 0; i < count; ++i) {
    const float* x = base + static_cast<std::size_t>(rows[i]) * pdim;
    for (std::size_t qi = 0; qi < nq; ++qi) {
      out[qi * count + i] = dot_pair_f32(queries + qi * pdim, x, pdim);
    }
  }
}

void half_to_float_scalar(const std::uint16_t* in, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(in[i]);
}

void dot_f16_scalar(const float* queries, std::size_t nq, const std::uint16_t* base,
                    std::size_t pdim, const std::uint32_t* rows, std::size_t count, float* out) {
  // Convert one row at a time into a small stack buffer, then reuse the float kernel.
  constexpr std::size_t kChunk = 1024;
  float buf[kChunk];
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint16_t* x = base + static_cast<std::size_t>(rows[i]) * pdim;
    for (std::size_t qi = 0; qi < nq; ++qi) {
      const float* q = queries + qi * pdim;
      float acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (std::size_t start = 0; start < pdim; start += kChunk) {
        const std::size_t len = pdim - start < kChunk ? pdim - start : kChunk;
        half_to_float_scalar(x + start, buf, len);
        for (std::size_t d = 0; d < len; d += kLanes) {
          for (std::size_t j = 0; j < kLanes; ++j) acc[j] += q[start + d + j] * buf[d + j];
        }
      }
      out[qi * count + i] = reduce_lanes(acc);
    }
  }
}

double sum_f32_scalar(const float* data, std::size_t n) {
  float acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) acc[j] += data[i + j];
  }
  double total = reduce_lanes(acc);
  for (; i < n; ++i) total += data[i];
  return total;
}

inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

std::size_t filter_scalar(const std::uint32_t* tags, std::size_t begin, std::size_t end,
                          std::uint32_t mask, std::uint32_t value, std::uint32_t* idx,
                          std::size_t max, std::size_t* stop) {
  std::size_t m = 0;
  std::size_t r = begin;
  for (; r < end && m < max; ++r) {  // branch-free compaction
    idx[m] = static_cast<std::uint32_t>(r);
    m += (tags[r] & mask) == value;
  }
  *stop = r;
  return m;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // zero or subnormal: mant * 2^-24, exact in float
    const float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return bits_float(float_bits(mag) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

std::uint16_t float_to_half(float value) {
  std::uint32_t x = float_bits(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (x >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (x < 0x38800000u) {                                                    // half subnormal
    if (x <= 0x33000000u) return sign;  // at most 2^-25: rounds to (even) zero
    const std::uint32_t e = x >> 23;
    const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;
    std::uint32_t r = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
  }
  std::uint32_t r = x - 0x38000000u;  // rebias the exponent from 127 to 15
  r += 0xfffu + ((r >> 13) & 1u);     // round to nearest even on the 13 dropped bits
  return static_cast<std::uint16_t>(sign | (r >> 13));
}

const Kernels kScalarKernels = {Level::Scalar,   "scalar",       dot_f32_scalar,
                                dot_f16_scalar,  half_to_float_scalar, sum_f32_scalar,
                                filter_scalar};

}  // namespace simd
}  // namespace evokernel
