// The saved-file format of ExperienceIndex. This layout is a contract: files written by every
// released version must keep loading (tests/core/data holds one per format version).
//
// Format version 1, all numbers little-endian:
//   offset  size  field
//        0     8  magic "EVKINDEX"
//        8     4  u32 format version (1)
//       12     4  u32 flags: bit 0 = vectors stored as IEEE half (fp16); other bits 0
//       16     4  u32 dim
//       20     4  u32 reserved, 0
//       24     8  u64 n (rows)
//       32     8  f64 reward_beta
//       40     8  f64 reward_std_floor
//       48     8  i64 reward_warmup
//       56    48  per stage (draft, refine): i64 count, f64 mean, f64 mean of squares
//      104        i64 ids[n]; u32 tags[n]; f64 q_draft[n]; f64 q_refine[n];
//                 i64 visits_draft[n]; i64 visits_refine[n];
//                 vectors[n][dim] (f32, or u16 half bits when fp16), L2-normalised
//      end-8   8  u64 checksum: XXH64 (seed 0) of every byte before it
//
// Any deviation (bad magic, newer version, wrong size, checksum mismatch, invalid values) makes
// the reader throw std::invalid_argument with a message naming the file and the problem.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace evokernel {
namespace format {

constexpr char kMagic[8] = {'E', 'V', 'K', 'I', 'N', 'D', 'E', 'X'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kFlagFp16 = 1u;
constexpr std::size_t kHeaderBytes = 104;
// Bytes per row besides the vector: id, tag, two Q values, two visit counts.
constexpr std::size_t kRowMetaBytes = 8 + 4 + 8 + 8 + 8 + 8;
constexpr std::uint32_t kMaxDim = 1u << 16;

struct StageStats {
  std::int64_t count = 0;
  double mean = 0.0;
  double sq = 0.0;
};

struct Header {
  std::uint32_t version = kVersion;
  std::uint32_t flags = 0;
  std::uint32_t dim = 0;
  std::uint64_t n = 0;
  double reward_beta = 0.0;
  double reward_std_floor = 0.0;
  std::int64_t reward_warmup = 0;
  StageStats stats[2];

  bool fp16() const { return (flags & kFlagFp16) != 0; }
  std::uint64_t file_bytes() const;  // total size implied by the header
};

// Streaming XXH64 (seed 0).
class Xxh64 {
 public:
  Xxh64();
  void update(const void* data, std::size_t len);
  std::uint64_t digest() const;

 private:
  std::uint64_t v_[4];
  std::uint64_t total_ = 0;
  unsigned char buf_[32];
  std::size_t buffered_ = 0;
};

// Writes to `path`.tmp, then renames over `path` on commit(); a failed save leaves any old file.
class Writer {
 public:
  explicit Writer(const std::string& path);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void write(const void* data, std::size_t len);
  void write_header(const Header& header);
  void commit();  // appends the checksum, flushes, closes, renames

 private:
  void flush_buffer();

  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  Xxh64 hash_;
  std::vector<unsigned char> buffer_;
  bool committed_ = false;
};

// Reads and checks a file; every read is bounds-checked against the size the header implies.
class Reader {
 public:
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Reads and validates the header (magic, version, flags, sizes against the file size).
  Header read_header();
  void read(void* data, std::size_t len);
  // Reads the trailing checksum and compares it with the hash of everything read before.
  void verify_checksum();
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t consumed_ = 0;
  Xxh64 hash_;
};

}  // namespace format
}  // namespace evokernel
