// NPY files: exact round trips, errors that name the file, and agreement with numpy itself
// when Debian's python3-numpy is installed.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/eval/npy.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
using commercemm::Error;
using commercemm::eval::read_npy;
using commercemm::eval::write_npy;

namespace {

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool numpy_available() {
  return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

template <class Body>
void expect_error_naming(const fs::path& file, const std::string& fragment, Body&& body) {
  try {
    body();
    BOOST_FAIL("expected commercemm::Error");
  } catch (const Error& e) {
    const std::string what = e.what();
    BOOST_TEST_INFO("message: " << what);
    BOOST_TEST(what.find(file.string()) != std::string::npos);
    BOOST_TEST(what.find(fragment) != std::string::npos);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(npy)

BOOST_AUTO_TEST_CASE(round_trip_is_exact_for_float_and_int64) {
  TempDir dir;
  torch::manual_seed(3);
  const std::vector<std::vector<std::int64_t>> shapes = {{0, 3}, {5}, {4, 7}, {2, 3, 4}};
  for (const auto& shape : shapes) {
    const torch::Tensor floats = torch::randn(shape) * 1e6;
    const torch::Tensor ints = torch::randint(-(std::int64_t{1} << 62), std::int64_t{1} << 62, shape, torch::kInt64);
    for (const torch::Tensor& original : {floats, ints}) {
      const fs::path file = dir.path / "a.npy";
      write_npy(file, original);
      const std::string bytes = slurp(file);
      BOOST_TEST(bytes.substr(0, 6) == "\x93NUMPY");
      const auto header_size = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
      BOOST_TEST((10 + header_size) % 64 == 0);  // data aligned as numpy aligns it
      BOOST_TEST(bytes[9 + header_size] == '\n');
      const torch::Tensor back = read_npy(file);
      BOOST_TEST(back.scalar_type() == original.scalar_type());
      BOOST_TEST(back.sizes() == original.sizes());
      BOOST_TEST(torch::equal(back, original));
    }
  }
  // Non-contiguous views are written in their logical (C) order; nothing else is left behind.
  const torch::Tensor t = torch::arange(12, torch::kInt64).reshape({3, 4}).t();
  write_npy(dir.path / "t.npy", t);
  BOOST_TEST(torch::equal(read_npy(dir.path / "t.npy"), t));
  std::vector<fs::path> left;
  for (const auto& entry : fs::directory_iterator(dir.path)) left.push_back(entry.path().filename());
  BOOST_TEST(left.size() == 2u);  // a.npy and t.npy, no temporaries
}

BOOST_AUTO_TEST_CASE(other_dtypes_are_rejected) {
  TempDir dir;
  const fs::path file = dir.path / "d.npy";
  expect_error_naming(file, "float32 and int64", [&] { write_npy(file, torch::zeros({2}, torch::kFloat64)); });
  BOOST_TEST(!fs::exists(file));
}

BOOST_AUTO_TEST_CASE(truncated_bad_magic_and_bad_header_name_the_file) {
  TempDir dir;
  const fs::path file = dir.path / "cut.npy";
  write_npy(file, torch::ones({4, 7}));
  const std::string whole = slurp(file);
  spit(file, whole.substr(0, whole.size() - 5));
  expect_error_naming(file, "truncated", [&] { read_npy(file); });
  spit(file, whole.substr(0, 20));
  expect_error_naming(file, "truncated", [&] { read_npy(file); });

  const fs::path bad = dir.path / "bad.npy";
  spit(bad, "PK\x03\x04 this is a zip file, not an npy");
  expect_error_naming(bad, "bad magic", [&] { read_npy(bad); });

  // Hand-written headers: a big-endian dtype and a Fortran-ordered array.
  const auto with_header = [&](const std::string& dict, std::size_t data_bytes) {
    std::string header = dict;
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xFF);
    bytes += static_cast<char>(header.size() >> 8);
    return bytes + header + std::string(data_bytes, '\0');
  };
  spit(bad, with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8));
  expect_error_naming(bad, "unsupported npy dtype '>f4'", [&] { read_npy(bad); });
  spit(bad, with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16));
  expect_error_naming(bad, "fortran_order", [&] { read_npy(bad); });
  // Key order and quoting are free in the dict; this one is valid.
  spit(bad, with_header("{\"shape\": (2, 1), \"fortran_order\": False, \"descr\": \"<i8\"}", 16));
  const torch::Tensor zeros = read_npy(bad);
  BOOST_TEST(zeros.sizes() == torch::IntArrayRef({2, 1}));
  BOOST_TEST(zeros.scalar_type() == torch::kInt64);

  expect_error_naming(dir.path / "missing.npy", "cannot open", [&] { read_npy(dir.path / "missing.npy"); });
}

BOOST_AUTO_TEST_CASE(version_2_headers_are_read) {
  TempDir dir;
  const fs::path file = dir.path / "v2.npy";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  while ((12 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  const float values[3] = {1.5f, -2.0f, 3.25f};
  bytes += header + std::string(reinterpret_cast<const char*>(values), sizeof values);
  spit(file, bytes);
  BOOST_TEST(torch::equal(read_npy(file), torch::tensor({1.5f, -2.0f, 3.25f})));
}

BOOST_AUTO_TEST_CASE(numpy_reads_ours_and_we_read_numpys) {
  if (!numpy_available()) {  // scripts/install-deps installs it: missing is a failure unless opted out
    const char* optional = std::getenv("COMMERCEMM_OPTIONAL_TOOLS");
    BOOST_REQUIRE_MESSAGE(optional && std::string(optional) == "1",
                          "/usr/bin/python3 cannot import numpy (Debian: python3-numpy; scripts/install-deps); "
                          "COMMERCEMM_OPTIONAL_TOOLS=1 skips this test");
    BOOST_WARN_MESSAGE(false, "skipped the numpy checks: /usr/bin/python3 cannot import numpy");
    return;
  }
  TempDir dir;
  const fs::path ours = dir.path / "ours.npy";
  const torch::Tensor floats = torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) * 0.5 - 3;
  write_npy(ours, floats);
  // numpy checks shape, dtype and sum, then writes its own files for us to read back.
  const std::string script =
      "import numpy, sys\n"
      "a = numpy.load(sys.argv[1])\n"
      "assert a.shape == (2, 3, 4), a.shape\n"
      "assert a.dtype == numpy.float32, a.dtype\n"
      "assert float(a.sum()) == 66.0, a.sum()\n"
      "numpy.save(sys.argv[2], (numpy.arange(35, dtype=numpy.int64) * 1000003 - 7).reshape(5, 7))\n"
      "numpy.save(sys.argv[3], numpy.linspace(-1, 1, 6, dtype=numpy.float32))\n"
      "numpy.save(sys.argv[4], numpy.zeros((0, 3), dtype=numpy.float32))\n";
  const fs::path script_file = dir.path / "check.py";
  spit(script_file, script);
  const fs::path ints = dir.path / "ints.npy", line = dir.path / "line.npy", empty = dir.path / "empty.npy";
  const std::string command = "/usr/bin/python3 '" + script_file.string() + "' '" + ours.string() + "' '" +
                              ints.string() + "' '" + line.string() + "' '" + empty.string() + "'";
  BOOST_REQUIRE(std::system(command.c_str()) == 0);

  const torch::Tensor read_ints = read_npy(ints);
  BOOST_TEST(read_ints.scalar_type() == torch::kInt64);
  BOOST_TEST(torch::equal(read_ints, (torch::arange(35, torch::kInt64) * 1000003 - 7).reshape({5, 7})));
  const torch::Tensor read_line = read_npy(line);
  BOOST_TEST(read_line.scalar_type() == torch::kFloat32);
  BOOST_TEST(read_line.sizes() == torch::IntArrayRef({6}));
  BOOST_TEST(torch::allclose(read_line, torch::linspace(-1, 1, 6)));
  BOOST_TEST(read_npy(empty).sizes() == torch::IntArrayRef({0, 3}));

  // Our writer pads headers as numpy does, so the same array gives the same bytes.
  write_npy(dir.path / "ints_ours.npy", read_ints);
  BOOST_TEST(slurp(dir.path / "ints_ours.npy") == slurp(ints));
  write_npy(dir.path / "empty_ours.npy", read_npy(empty));
  BOOST_TEST(slurp(dir.path / "empty_ours.npy") == slurp(empty));
}

BOOST_AUTO_TEST_SUITE_END()
