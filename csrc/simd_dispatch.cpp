// Run-time choice of the SIMD level: the widest the CPU and this build support, unless the
// environment variable EVOKERNEL_SIMD names another (scalar | neon | avx2 | avx512 | auto).
#include <atomic>
#include <initializer_list>
#include <cstdlib>
#include <cstring>

#include "simd.h"

namespace evokernel {
namespace simd {
namespace {

bool cpu_has(Level level) {
  switch (level) {
    case Level::Scalar:
      return true;
    case Level::Neon:
#if defined(EVOKERNEL_HAVE_NEON)
      return true;
#else
      return false;
#endif
    case Level::Avx2:
#if defined(EVOKERNEL_HAVE_AVX2)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
#else
      return false;
#endif
    case Level::Avx512:
#if defined(EVOKERNEL_HAVE_AVX512)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
      return false;
#endif
  }
  return false;
}

const Kernels* initial() {
  const Level best = best_supported();
  const char* env = std::getenv("EVOKERNEL_SIMD");
  Level wanted = best;
  if (env != nullptr && *env != '\0' && std::strcmp(env, "auto") != 0) {
    // An unknown or unsupported name falls back to the best level; the Python module warns.
    if (!parse_level(env, &wanted) || kernels_for(wanted) == nullptr) wanted = best;
  }
  return kernels_for(wanted);
}

std::atomic<const Kernels*>& active_slot() {
  static std::atomic<const Kernels*> slot{initial()};
  return slot;
}

}  // namespace

const Kernels* kernels_for(Level level) {
  if (!cpu_has(level)) return nullptr;
  switch (level) {
    case Level::Scalar:
      return &kScalarKernels;
#if defined(EVOKERNEL_HAVE_NEON)
    case Level::Neon:
      return &kNeonKernels;
#endif
#if defined(EVOKERNEL_HAVE_AVX2)
    case Level::Avx2:
      return &kAvx2Kernels;
#endif
#if defined(EVOKERNEL_HAVE_AVX512)
    case Level::Avx512:
      return &kAvx512Kernels;
#endif
    default:
      return nullptr;
  }
}

Level best_supported() {
  for (Level level : {Level::Avx512, Level::Avx2, Level::Neon}) {
    if (cpu_has(level)) return level;
  }
  return Level::Scalar;
}

const Kernels& active() { return *active_slot().load(std::memory_order_acquire); }

bool set_active(Level level) {
  const Kernels* table = kernels_for(level);
  if (table == nullptr) return false;
  active_slot().store(table, std::memory_order_release);
  return true;
}

bool parse_level(const char* name, Level* out) {
  struct Entry {
    const char* name;
    Level level;
  };
  static const Entry entries[] = {{"scalar", Level::Scalar},
                                  {"neon", Level::Neon},
                                  {"avx2", Level::Avx2},
                                  {"avx512", Level::Avx512}};
  for (const Entry& e : entries) {
    if (std::strcmp(name, e.name) == 0) {
      *out = e.level;
      return true;
    }
  }
  return false;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::Scalar:
      return "scalar";
    case Level::Neon:
      return "neon";
    case Level::Avx2:
      return "avx2";
    case Level::Avx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace simd
}  // namespace evokernel
