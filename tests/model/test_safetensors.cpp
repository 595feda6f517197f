// safetensors: what we write reads back bit for bit with its metadata, the bytes follow the
// format (header length, space padding, name order), and every damaged file is an Error that
// names the tensor at fault before any byte is copied.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <torch/torch.h>

#include <commercemm/train/safetensors.hpp>

#include "../data/support.hpp"

namespace cmm = commercemm;
namespace fs = std::filesystem;
using data_test::expect_error;
using data_test::TempDir;

namespace {
std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// A file from a header's JSON text and the data bytes after it.
std::string raw(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

bool mentions(const cmm::Error& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(every_dtype_round_trips_bit_for_bit_with_metadata) {
  TempDir dir;
  torch::manual_seed(3);
  std::map<std::string, torch::Tensor> tensors{
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2}, torch::kFloat64)},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(-3, 3, torch::kInt64).reshape({2, 3})},
      {"i32", torch::tensor({7, -8}, torch::kInt32)},
      {"u8", torch::tensor({0, 255}, torch::kUInt8)},
      {"mask", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::zeros({0, 3})},
      {"strided", torch::arange(12, torch::kFloat32).reshape({3, 4}).t()},  // stored contiguous
  };
  const auto file = dir.path / "t.safetensors";
  cmm::train::write_safetensors(file, tensors, {{"format", "pt"}, {"note", "ünïcode"}});
  const auto back = cmm::train::read_safetensors(file);
  BOOST_TEST(back.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    BOOST_TEST_CONTEXT(name) {
      const auto& r = back.tensors.at(name);
      BOOST_TEST(r.scalar_type() == t.scalar_type());
      BOOST_TEST(r.sizes() == t.sizes());
      BOOST_TEST(torch::equal(r, t));
    }
  }
  BOOST_TEST(back.metadata.at("format") == "pt");
  BOOST_TEST(back.metadata.at("note") == "ünïcode");

  // The bytes: a little-endian header length, a JSON header padded with spaces to 8 bytes,
  // tensors in name order ("bf16" first, at offset 0).
  const auto bytes = slurp(file);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  BOOST_TEST(n % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  BOOST_TEST(header.at("bf16").at("data_offsets") == nlohmann::json::array({0, 8}));
  BOOST_TEST(header.at("bf16").at("dtype") == "BF16");
  BOOST_TEST(header.at("strided").at("shape") == nlohmann::json::array({4, 3}));
  std::int64_t data = 0;
  for (const auto& [name, t] : tensors) data += static_cast<std::int64_t>(t.nbytes());
  BOOST_TEST(bytes.size() == 8 + n + static_cast<std::uint64_t>(data));
}

BOOST_AUTO_TEST_CASE(a_file_written_by_another_writer_reads) {
  TempDir dir;
  // Two F32 values and one I64, with the header padded by spaces as the reference writer does.
  std::string data(16, '\0');
  const float floats[2] = {1.5f, -2.0f};
  const std::int64_t one = 42;
  std::memcpy(data.data(), floats, 8);
  std::memcpy(data.data() + 8, &one, 8);
  const auto file = dir.write("x.safetensors",
                              raw(R"({"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                                  R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    )",
                                  data));
  const auto read = cmm::train::read_safetensors(file);
  BOOST_TEST(torch::equal(read.tensors.at("a"), torch::tensor({1.5f, -2.0f})));
  BOOST_TEST(read.tensors.at("b").item<std::int64_t>() == 42);
  BOOST_TEST(read.metadata.empty());
}

BOOST_AUTO_TEST_CASE(damaged_files_are_errors_naming_the_file_and_tensor) {
  TempDir dir;
  const auto file = dir.path / "good.safetensors";
  cmm::train::write_safetensors(file, {{"weight", torch::ones({4, 4})}, {"bias", torch::zeros({4})}});
  const auto good = slurp(file);
  const auto read = [&](const std::string& name, const std::string& bytes) {
    const auto path = dir.write(name, bytes);
    return expect_error([&] { cmm::train::read_safetensors(path); });
  };
  const std::string f32x2(8, '\0');
  const auto one = [](const std::string& entry) { return "{\"w\":" + entry + "}"; };

  auto e = read("truncated", good.substr(0, good.size() - 1));
  BOOST_TEST(mentions(e, "truncated"));
  BOOST_TEST(e.where().file.find("truncated") != std::string::npos);
  BOOST_TEST(e.where().field == "weight");  // the last tensor in the file lost a byte
  e = read("short", good.substr(0, 5));
  BOOST_TEST(mentions(e, "shorter than the 8-byte header length"));
  e = read("cut_header", good.substr(0, 40));
  BOOST_TEST(e.where().field == "header");
  BOOST_TEST(mentions(e, "only 32 follow"));
  e = read("huge_header", raw(std::string(16, ' '), "").replace(0, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8)));
  BOOST_TEST(e.where().field == "header");
  e = read("not_json", raw("{\"w\": [1, 2", f32x2));
  BOOST_TEST(mentions(e, "not JSON"));
  e = read("array", raw("[1, 2]", ""));
  BOOST_TEST(mentions(e, "not a JSON object"));
  e = read("dtype", raw(one(R"({"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]})"), "\0\0"));
  BOOST_TEST(e.where().field == "w");
  BOOST_TEST(mentions(e, "F8_E4M3"));
  e = read("u16", raw(one(R"({"dtype":"U16","shape":[1],"data_offsets":[0,2]})"), "\0\0"));
  BOOST_TEST(mentions(e, "U16"));
  e = read("no_shape", raw(one(R"({"dtype":"F32","data_offsets":[0,8]})"), f32x2));
  BOOST_TEST(e.where().field == "w");
  e = read("negative", raw(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), f32x2));
  BOOST_TEST(mentions(e, "non-negative"));
  e = read("size", raw(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), f32x2));
  BOOST_TEST(mentions(e, "needs 12 bytes, data_offsets give 8"));
  e = read("overflow", raw(one(R"({"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), f32x2));
  BOOST_TEST(mentions(e, "too large"));
  e = read("outside", raw(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})"), f32x2));
  BOOST_TEST(mentions(e, "fall outside the 8 data bytes"));
  e = read("backwards", raw(one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,0]})"), f32x2));
  BOOST_TEST(e.where().field == "w");
  e = read("offsets", raw(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), f32x2));
  BOOST_TEST(mentions(e, "[BEGIN, END]"));
  e = read("overlap", raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          f32x2));
  BOOST_TEST(mentions(e, "overlap"));
  e = read("hole", raw(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), f32x2));
  BOOST_TEST(mentions(e, "bytes [0, 4) belong to no tensor"));
  e = read("trailing", raw(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), f32x2));
  BOOST_TEST(mentions(e, "4 bytes after the last tensor"));
  e = read("metadata", raw(R"({"__metadata__":{"n":1}})", ""));
  BOOST_TEST(e.where().field == "__metadata__.n");
  e = expect_error([&] { cmm::train::read_safetensors(dir.path / "absent.safetensors"); });
  BOOST_TEST(mentions(e, "cannot open"));
}

BOOST_AUTO_TEST_CASE(a_failed_write_keeps_the_previous_file) {
  TempDir dir;
  const auto file = dir.path / "m.safetensors";
  cmm::train::write_safetensors(file, {{"a", torch::ones({2})}});
  const auto before = slurp(file);
  auto e = expect_error([&] { cmm::train::write_safetensors(file, {{"__metadata__", torch::ones({1})}}); });
  BOOST_TEST(mentions(e, "reserved"));
  e = expect_error([&] { cmm::train::write_safetensors(file, {{"a", torch::ones({1}, torch::kComplexFloat)}}); });
  BOOST_TEST(slurp(file) == before);
}

BOOST_AUTO_TEST_SUITE_END()
