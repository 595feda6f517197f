#pragma once
// Helpers shared by the eval tests.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

#include <commercemm/core/error.hpp>

/// A fresh directory under the system's temporary one, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name = "commercemm_eval") {
    static int count = 0;
    path = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + "_" + std::to_string(count++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

/// The message of the commercemm::Error that `f` throws, or "(no error)".
template <class F> std::string error_of(F f) {
  try {
    f();
  } catch (const commercemm::Error& e) {
    return e.what();
  }
  return "(no error)";
}
