#pragma once
// Shared by the libFuzzer targets: a per-process scratch directory, files written from the
// fuzz input, and where the source tree's data lies.
//
// Contract of every target: bad input must end in commercemm::Error (caught by the target);
// any other exception escapes LLVMFuzzerTestOneInput, std::terminate aborts, and libFuzzer
// records the input as a crash, as it does for sanitizer reports.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#ifndef COMMERCEMM_SOURCE_DIR
#error "COMMERCEMM_SOURCE_DIR must name the repository root"
#endif

namespace commercemm::fuzz {

/// A scratch directory for this process, removed at exit (libFuzzer -jobs runs several).
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      path = std::filesystem::temp_directory_path() / ("commercemm-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

/// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::filesystem::path write_file(const std::string& name, std::string_view bytes) {
  auto path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();  // the harness itself failed, not the code under test
  return path;
}

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline std::filesystem::path source_dir() { return COMMERCEMM_SOURCE_DIR; }

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// Splits at '\n' (a trailing '\r' kept: the code under test handles it).
inline std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace commercemm::fuzz
