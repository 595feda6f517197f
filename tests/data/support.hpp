#pragma once
// Helpers shared by the data tests.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <boost/test/unit_test.hpp>

#include <commercemm/core/error.hpp>

namespace data_test {

/// A fresh directory under the system's temp directory, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device device;
    path = std::filesystem::temp_directory_path() / ("commercemm-data-test-" + std::to_string(device()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// Writes `text` to `name` (a relative path; its directories are made) and returns the path.
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::filesystem::create_directories((path / name).parent_path());
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

/// Runs `f`, which must throw commercemm::Error, and returns it.
template <class F>
commercemm::Error expect_error(F&& f) {
  try {
    f();
  } catch (const commercemm::Error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return e;
  }
  BOOST_FAIL("expected commercemm::Error");
  throw;  // unreachable
}

}  // namespace data_test
