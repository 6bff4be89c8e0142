// A small process-wide pool of worker threads for the index's scans.
//
// run() splits work into chunks that the calling thread starts on at once; idle workers join
// and claim chunks as they wake, so a call never waits for a thread to start and is never
// slower than running alone. Each participant gets a slot number (0 = the caller) so it can
// keep its own partial results. Calls from several threads at once are fine. In a child
// process after fork() the pool is not used (the caller runs every chunk).
#pragma once

#include <cstddef>
#include <functional>

namespace evokernel {

// Default number of threads for a scan: the hardware threads, at most 8 (computed once).
std::size_t default_threads();

// Runs fn(chunk, slot) for every chunk in [0, chunks) on the calling thread (slot 0) plus up to
// max_threads - 1 pool workers (slots 1 .. max_threads - 1). Returns when all chunks are done;
// the first exception thrown by any chunk is rethrown (remaining chunks still run).
void parallel_chunks(std::size_t chunks, std::size_t max_threads,
                     const std::function<void(std::size_t chunk, std::size_t slot)>& fn);

}  // namespace evokernel
