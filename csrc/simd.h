// SIMD kernels of the experience index, chosen at run time.
//
// Every level implements the same table of plain functions. The kernels in simd_avx2.cpp,
// simd_avx512.cpp and simd_neon.cpp are compiled with their own target flags; they include
// nothing but intrinsics headers, so no inline function compiled for a wide target can leak
// into code that runs on a narrower CPU. The level is picked once from the CPU's features
// (simd_dispatch.cpp); EVOKERNEL_SIMD=scalar|avx2|avx512|neon|auto overrides it.
//
// Layout the kernels rely on: a row holds `pdim` elements, pdim a multiple of 16, padded
// with zeros; queries are float32 with the same padded length. Row i of a block lives at
// base + rows[i] * pdim.
//
// Determinism: within one level, the similarity of a (query, row) pair does not depend on
// which kernel computed it (single query or batch), on the position of the row in a block or
// on threading: each level fixes one arithmetic per pair (its accumulators, their order, the
// reduction tree) and every kernel of the level follows it. AVX2 and AVX-512 share the same
// arithmetic, so x86 machines agree bit for bit; other levels agree to float32 rounding (the
// tests check each against scalar).
#pragma once

#include <cstddef>
#include <cstdint>

namespace evokernel {
namespace simd {

enum class Level : int { Scalar = 0, Neon = 1, Avx2 = 2, Avx512 = 3 };

// out[qi * count + i] = dot(queries[qi], row rows[i]) for qi < nq, i < count.
using DotF32Fn = void (*)(const float* queries, std::size_t nq, const float* base,
                          std::size_t pdim, const std::uint32_t* rows, std::size_t count,
                          float* out);
using DotF16Fn = void (*)(const float* queries, std::size_t nq, const std::uint16_t* base,
                          std::size_t pdim, const std::uint32_t* rows, std::size_t count,
                          float* out);
// Half (IEEE binary16 bits) to float32, n values; exact on every level.
using HalfToFloatFn = void (*)(const std::uint16_t* in, float* out, std::size_t n);
// Sum of n floats (the memory-read floor of the benchmark reads with this).
using SumFn = double (*)(const float* data, std::size_t n);
// Row numbers r in [begin, end) with (tags[r] & mask) == value, ascending, into idx, stopping
// once `max` are found; returns how many and sets *stop to the first row not examined.
using FilterFn = std::size_t (*)(const std::uint32_t* tags, std::size_t begin, std::size_t end,
                                 std::uint32_t mask, std::uint32_t value, std::uint32_t* idx,
                                 std::size_t max, std::size_t* stop);

struct Kernels {
  Level level;
  const char* name;
  DotF32Fn dot_f32;
  DotF16Fn dot_f16;
  HalfToFloatFn half_to_float;
  SumFn sum_f32;
  FilterFn filter;
};

// The table of one level; nullptr where this build or this CPU lacks the level.
const Kernels* kernels_for(Level level);
// The table in use (thread-safe to read; set once at start, changeable for tests).
const Kernels& active();
// Switch the table in use; returns false (and changes nothing) when the level is unavailable.
bool set_active(Level level);
// Best level this CPU supports in this build.
Level best_supported();
// Parse "scalar" | "neon" | "avx2" | "avx512"; returns false for anything else.
bool parse_level(const char* name, Level* out);
const char* level_name(Level level);

// Per-level tables (defined only where built).
extern const Kernels kScalarKernels;
#if defined(EVOKERNEL_HAVE_AVX2)
extern const Kernels kAvx2Kernels;
#endif
#if defined(EVOKERNEL_HAVE_AVX512)
extern const Kernels kAvx512Kernels;
#endif
#if defined(EVOKERNEL_HAVE_NEON)
extern const Kernels kNeonKernels;
#endif

// The portable filter loop (the scalar level's, and the tail of the others').
std::size_t filter_scalar(const std::uint32_t* tags, std::size_t begin, std::size_t end,
                          std::uint32_t mask, std::uint32_t value, std::uint32_t* idx,
                          std::size_t max, std::size_t* stop);

// Portable float <-> half conversions (round to nearest even), used on insert and load so that
// stored halves never depend on the SIMD level.
std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t bits);

}  // namespace simd
}  // namespace evokernel
