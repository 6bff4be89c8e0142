// Open-addressing hash map from a non-negative int64 id to a row number.
//
// Linear probing, power-of-two capacity, load factor at most 1/2, backward-shift deletion (no
// tombstones). Keys are ids >= 0; -1 marks an empty slot. Not thread-safe on its own: the
// index guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace evokernel {

class IdMap {
 public:
  static constexpr std::int64_t kEmpty = -1;

  IdMap() { rehash(16); }

  std::size_t size() const { return size_; }

  void clear() {
    for (Slot& s : slots_) s.key = kEmpty;
    size_ = 0;
  }

  // Make room for `n` keys without rehashing.
  void reserve(std::size_t n) {
    std::size_t cap = slots_.size();
    while (cap < 2 * n) cap *= 2;
    if (cap != slots_.size()) rehash(cap);
  }

  // Row of `id`, or false when absent.
  bool find(std::int64_t id, std::uint64_t* row) const {
    if (id < 0) return false;
    std::size_t i = home(id);
    for (;;) {
      const Slot& s = slots_[i];
      if (s.key == id) {
        *row = s.value;
        return true;
      }
      if (s.key == kEmpty) return false;
      i = (i + 1) & mask_;
    }
  }

  bool contains(std::int64_t id) const {
    std::uint64_t row;
    return find(id, &row);
  }

  // Bring the home slot of `id` into cache ahead of a find.
  void prefetch(std::int64_t id) const {
    __builtin_prefetch(&slots_[home(id < 0 ? 0 : id)]);
  }

  // Insert a new key (the caller has checked it is absent and >= 0).
  void insert(std::int64_t id, std::uint64_t row) {
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.size() * 2);
    std::size_t i = home(id);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i].key = id;
    slots_[i].value = row;
    ++size_;
  }

  // Change the row of a present key.
  void assign(std::int64_t id, std::uint64_t row) {
    std::size_t i = home(id);
    while (slots_[i].key != id) i = (i + 1) & mask_;
    slots_[i].value = row;
  }

  bool erase(std::int64_t id) {
    if (id < 0) return false;
    std::size_t i = home(id);
    for (;;) {
      if (slots_[i].key == id) break;
      if (slots_[i].key == kEmpty) return false;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later members of the probe run into the hole when their home
    // slot does not lie cyclically in (hole, j].
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j].key == kEmpty) break;
      const std::size_t k = home(slots_[j].key);
      const bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i].key = kEmpty;
    --size_;
    return true;
  }

 private:
  struct Slot {
    std::int64_t key;
    std::uint64_t value;
  };

  std::size_t home(std::int64_t id) const {
    // Fibonacci hashing: the top bits of id * 2^64/phi.
    return static_cast<std::size_t>((static_cast<std::uint64_t>(id) * 0x9E3779B97F4A7C15ull) >>
                                    shift_);
  }

  void rehash(std::size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{kEmpty, 0});
    mask_ = capacity - 1;
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      std::size_t i = home(s.key);
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t size_ = 0;
};

}  // namespace evokernel
