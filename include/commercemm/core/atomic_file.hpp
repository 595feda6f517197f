#pragma once
// Files that appear whole or not at all: checkpoints, metrics.json, .npy embeddings.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

#include <commercemm/core/error.hpp>

namespace commercemm {

namespace detail {
inline void fsync_path(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw Error(Location{path.string(), 0, ""}, "cannot open to flush to disk");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && !directory) throw Error(Location{path.string(), 0, ""}, "fsync failed");
}
}  // namespace detail

/// Writes `path` all or nothing: `write` fills the temporary file it is given (same
/// directory, so the rename stays on one file system; name ending ".tmp"), which is flushed
/// and renamed over `path`. A crash at any point leaves either the old `path` or the new one,
/// plus at worst a stray ".tmp" file.
inline void write_atomically(const std::filesystem::path& path,
                             const std::function<void(const std::filesystem::path&)>& write) {
  namespace fs = std::filesystem;
  static std::atomic<std::uint64_t> counter{0};  // distinct names for concurrent writers
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::create_directories(dir);
  // Built by appending: g++ 12 flags `"." + std::string&&` with a false -Wstringop-overflow.
  std::string name = ".";
  for (const std::string& part : {path.filename().string(), std::to_string(::getpid()),
                                  std::to_string(counter.fetch_add(1))})
    name.append(part).append(".");
  name.append("tmp");
  const fs::path temporary = dir / name;
  try {
    write(temporary);
    detail::fsync_path(temporary, false);
    fs::rename(temporary, path);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw Error(Location{path.string(), 0, ""}, "cannot write: " + e.code().message() + " (the previous file, if any, is intact)");
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  detail::fsync_path(dir, true);  // the rename itself must reach the disk
}

}  // namespace commercemm
