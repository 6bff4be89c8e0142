// Reading and writing the saved-file format (see index_file.h for the layout).
#include "index_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "errors.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the index file format is little-endian; this build supports little-endian hosts only"
#endif

namespace evokernel {
namespace format {
namespace {

constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ull;
constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4Full;
constexpr std::uint64_t kP3 = 0x165667B19E3779F9ull;
constexpr std::uint64_t kP4 = 0x85EBCA77C2B2AE63ull;
constexpr std::uint64_t kP5 = 0x27D4EB2F165667C5ull;

inline std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline std::uint64_t read64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline std::uint32_t read32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline std::uint64_t xx_round(std::uint64_t acc, std::uint64_t input) {
  acc += input * kP2;
  acc = rotl(acc, 31);
  return acc * kP1;
}

inline std::uint64_t merge_round(std::uint64_t acc, std::uint64_t val) {
  acc ^= xx_round(0, val);
  return acc * kP1 + kP4;
}

template <typename T>
void put(unsigned char* dst, std::size_t offset, T value) {
  std::memcpy(dst + offset, &value, sizeof(T));
}

template <typename T>
T get(const unsigned char* src, std::size_t offset) {
  T value;
  std::memcpy(&value, src + offset, sizeof(T));
  return value;
}

constexpr std::size_t kBufferBytes = 1u << 20;

}  // namespace

// ---------------------------------------------------------------------------------------------
// XXH64

Xxh64::Xxh64() : v_{kP1 + kP2, kP2, 0, 0 - kP1} {}

void Xxh64::update(const void* data, std::size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += len;
  if (buffered_ > 0) {
    const std::size_t take = len < 32 - buffered_ ? len : 32 - buffered_;
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    len -= take;
    if (buffered_ < 32) return;
    for (int i = 0; i < 4; ++i) v_[i] = xx_round(v_[i], read64(buf_ + 8 * i));
    buffered_ = 0;
  }
  std::uint64_t v0 = v_[0], v1 = v_[1], v2 = v_[2], v3 = v_[3];
  while (len >= 32) {
    v0 = xx_round(v0, read64(p));
    v1 = xx_round(v1, read64(p + 8));
    v2 = xx_round(v2, read64(p + 16));
    v3 = xx_round(v3, read64(p + 24));
    p += 32;
    len -= 32;
  }
  v_[0] = v0;
  v_[1] = v1;
  v_[2] = v2;
  v_[3] = v3;
  if (len > 0) {
    std::memcpy(buf_, p, len);
    buffered_ = len;
  }
}

std::uint64_t Xxh64::digest() const {
  std::uint64_t h;
  if (total_ >= 32) {
    h = rotl(v_[0], 1) + rotl(v_[1], 7) + rotl(v_[2], 12) + rotl(v_[3], 18);
    for (int i = 0; i < 4; ++i) h = merge_round(h, v_[i]);
  } else {
    h = v_[2] + kP5;  // seed + P5
  }
  h += total_;
  const unsigned char* p = buf_;
  std::size_t len = buffered_;
  while (len >= 8) {
    h ^= xx_round(0, read64(p));
    h = rotl(h, 27) * kP1 + kP4;
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    h ^= static_cast<std::uint64_t>(read32(p)) * kP1;
    h = rotl(h, 23) * kP2 + kP3;
    p += 4;
    len -= 4;
  }
  while (len > 0) {
    h ^= (*p) * kP5;
    h = rotl(h, 11) * kP1;
    ++p;
    --len;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

// ---------------------------------------------------------------------------------------------
// Header

std::uint64_t Header::file_bytes() const {
  const std::uint64_t per_row = kRowMetaBytes + std::uint64_t(dim) * (fp16() ? 2 : 4);
  return kHeaderBytes + n * per_row + 8;
}

// ---------------------------------------------------------------------------------------------
// Writer

Writer::Writer(const std::string& path) : path_(path), tmp_path_(path + ".tmp") {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) {
    const int err = errno;
    throw FileError(path_, err, "cannot write index file '" + path_ + "': " + std::strerror(err));
  }
  buffer_.reserve(kBufferBytes);
}

Writer::~Writer() {
  if (!committed_) {
    if (file_ != nullptr) std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void Writer::flush_buffer() {
  if (buffer_.empty()) return;
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    const int err = errno;
    throw FileError(path_, err, "cannot write index file '" + path_ + "': " + std::strerror(err));
  }
  buffer_.clear();
}

void Writer::write(const void* data, std::size_t len) {
  hash_.update(data, len);
  const unsigned char* p = static_cast<const unsigned char*>(data);
  while (len > 0) {
    const std::size_t room = kBufferBytes - buffer_.size();
    const std::size_t take = len < room ? len : room;
    buffer_.insert(buffer_.end(), p, p + take);
    p += take;
    len -= take;
    if (buffer_.size() == kBufferBytes) flush_buffer();
  }
}

void Writer::write_header(const Header& h) {
  unsigned char b[kHeaderBytes] = {};
  std::memcpy(b, kMagic, 8);
  put<std::uint32_t>(b, 8, h.version);
  put<std::uint32_t>(b, 12, h.flags);
  put<std::uint32_t>(b, 16, h.dim);
  put<std::uint32_t>(b, 20, 0);
  put<std::uint64_t>(b, 24, h.n);
  put<double>(b, 32, h.reward_beta);
  put<double>(b, 40, h.reward_std_floor);
  put<std::int64_t>(b, 48, h.reward_warmup);
  for (int s = 0; s < 2; ++s) {
    put<std::int64_t>(b, 56 + 24 * s, h.stats[s].count);
    put<double>(b, 64 + 24 * s, h.stats[s].mean);
    put<double>(b, 72 + 24 * s, h.stats[s].sq);
  }
  write(b, sizeof b);
}

void Writer::commit() {
  const std::uint64_t checksum = hash_.digest();
  const unsigned char* c = reinterpret_cast<const unsigned char*>(&checksum);
  buffer_.insert(buffer_.end(), c, c + 8);
  flush_buffer();
  const bool flushed = std::fflush(file_) == 0;
  const int flush_err = errno;
  const bool closed = std::fclose(file_) == 0;
  const int close_err = errno;
  file_ = nullptr;
  if (!flushed || !closed) {
    const int err = !flushed ? flush_err : close_err;
    throw FileError(path_, err, "cannot write index file '" + path_ + "': " + std::strerror(err));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    throw FileError(path_, err, "cannot write index file '" + path_ + "': " + std::strerror(err));
  }
  committed_ = true;
}

// ---------------------------------------------------------------------------------------------
// Reader

Reader::Reader(const std::string& path) : path_(path) {
  file_ = std::fopen(path_.c_str(), "rb");
  if (file_ == nullptr) {
    const int err = errno;
    throw FileError(path_, err, "cannot open index file '" + path_ + "': " + std::strerror(err));
  }
  struct stat st;
  if (fstat(fileno(file_), &st) == 0 && !S_ISREG(st.st_mode)) {
    std::fclose(file_);
    file_ = nullptr;
    const int err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    throw FileError(path_, err, "cannot read index file '" + path_ + "': not a regular file");
  }
  if (fseeko(file_, 0, SEEK_END) != 0) {
    const int err = errno;
    std::fclose(file_);
    file_ = nullptr;
    throw FileError(path_, err, "cannot read index file '" + path_ + "': " + std::strerror(err));
  }
  file_bytes_ = static_cast<std::uint64_t>(ftello(file_));
  std::rewind(file_);
}

Reader::~Reader() {
  if (file_ != nullptr) std::fclose(file_);
}

void Reader::fail(const std::string& problem) const {
  throw std::invalid_argument("cannot load EvoKernel index '" + path_ + "': " + problem);
}

void Reader::read(void* data, std::size_t len) {
  if (len == 0) return;
  if (consumed_ + len + 8 > file_bytes_) fail("the file is truncated");
  if (std::fread(data, 1, len, file_) != len) fail("the file is truncated (read failed)");
  consumed_ += len;
  hash_.update(data, len);
}

Header Reader::read_header() {
  unsigned char b[kHeaderBytes];
  if (file_bytes_ < 8) {
    fail("not an EvoKernel index file (" + std::to_string(file_bytes_) +
         " bytes, too short to hold a header)");
  }
  if (file_bytes_ < kHeaderBytes + 8) {
    unsigned char magic[8];
    if (std::fread(magic, 1, 8, file_) != 8 || std::memcmp(magic, kMagic, 8) != 0) {
      fail("not an EvoKernel index file (bad magic)");
    }
    fail("the file is truncated (" + std::to_string(file_bytes_) +
         " bytes, shorter than the header)");
  }
  read(b, kHeaderBytes);
  if (std::memcmp(b, kMagic, 8) != 0) fail("not an EvoKernel index file (bad magic)");
  Header h;
  h.version = get<std::uint32_t>(b, 8);
  if (h.version > kVersion) {
    fail("format version " + std::to_string(h.version) + " is newer than this build reads (" +
         std::to_string(kVersion) + "); upgrade evokernel");
  }
  if (h.version == 0) fail("the file is corrupted (format version 0)");
  h.flags = get<std::uint32_t>(b, 12);
  h.dim = get<std::uint32_t>(b, 16);
  const std::uint32_t reserved = get<std::uint32_t>(b, 20);
  h.n = get<std::uint64_t>(b, 24);
  h.reward_beta = get<double>(b, 32);
  h.reward_std_floor = get<double>(b, 40);
  h.reward_warmup = get<std::int64_t>(b, 48);
  for (int s = 0; s < 2; ++s) {
    h.stats[s].count = get<std::int64_t>(b, 56 + 24 * s);
    h.stats[s].mean = get<double>(b, 64 + 24 * s);
    h.stats[s].sq = get<double>(b, 72 + 24 * s);
  }
  if ((h.flags & ~kFlagFp16) != 0 || reserved != 0 || h.dim == 0 || h.dim > kMaxDim) {
    fail("the file is corrupted (invalid header fields)");
  }
  const std::uint64_t per_row = kRowMetaBytes + std::uint64_t(h.dim) * (h.fp16() ? 2 : 4);
  if (h.n > (file_bytes_ / per_row) || h.file_bytes() != file_bytes_) {
    const std::uint64_t expected =
        h.n > (file_bytes_ / per_row) ? 0 : h.file_bytes();  // 0: does not even fit
    fail("the file size (" + std::to_string(file_bytes_) +
         " bytes) does not match its header" +
         (expected ? " (expected " + std::to_string(expected) + " bytes)" : std::string()) +
         "; the file is truncated or corrupted");
  }
  return h;
}

void Reader::verify_checksum() {
  if (consumed_ + 8 != file_bytes_) fail("the file is corrupted (unexpected length)");
  unsigned char c[8];
  if (std::fread(c, 1, 8, file_) != 8) fail("the file is truncated (no checksum)");
  if (get<std::uint64_t>(c, 0) != hash_.digest()) {
    fail("checksum mismatch; the file is corrupted");
  }
}

}  // namespace format
}  // namespace evokernel
