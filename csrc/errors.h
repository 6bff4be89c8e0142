// Exceptions of the core. The bindings map them to Python:
//   std::invalid_argument -> ValueError, KeyError -> KeyError, FileError -> OSError (by errno).
#pragma once

#include <stdexcept>
#include <string>

namespace evokernel {

// An id that is not in the index.
class KeyError : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

// The operating system refused a file operation; `error_code` is the errno value.
class FileError : public std::runtime_error {
 public:
  FileError(const std::string& path, int error_code, const std::string& what)
      : std::runtime_error(what), path_(path), error_code_(error_code) {}
  const std::string& path() const { return path_; }
  int error_code() const { return error_code_; }

 private:
  std::string path_;
  int error_code_;
};

}  // namespace evokernel
