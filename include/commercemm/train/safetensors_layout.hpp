#pragma once
// The safetensors format's layout (https://github.com/huggingface/safetensors), without
// LibTorch: an 8-byte little-endian header length N, N bytes of JSON
//   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, ...,
//    "__metadata__": {"key": "value"}}
// then the tensors' raw little-endian bytes, BEGIN and END relative to the end of the header.
// Every number in the header is checked against the file here, before a byte is copied
// (train/safetensors.hpp copies them): a truncated or crafted file is an Error naming the file
// and the tensor. Kept free of LibTorch so the fuzz target covers all of it.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <istream>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>

namespace commercemm::train {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian bytes; the reader copies them as they are");

/// One tensor's entry in the header, checked: its bytes are [begin, end) of the data section.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  ///< the format's name: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

/// The header of a safetensors file: where the data starts and what it holds.
struct SafetensorsLayout {
  std::uint64_t data_start = 0;  ///< 8 + the header's length
  std::vector<SafetensorsEntry> entries;  ///< in data order
  std::map<std::string, std::string> metadata;
};

/// Bytes per element of the dtypes LibTorch 1.13 has (0 for any other: U16, U32, U64, F8_*).
inline std::uint64_t safetensors_element_size(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

namespace detail {
/// A header far larger than any real one (the format's own reader stops at 100 MB) is a
/// damaged length field, not a reason to allocate it.
inline constexpr std::uint64_t max_safetensors_header = 100ull << 20;
}  // namespace detail

/// Reads and checks the header of a safetensors file of `size` bytes from `in` (at its start).
/// Throws commercemm::Error naming `path` (and the tensor) when the file is truncated, the
/// header is not the format's JSON, a dtype is unknown, a shape does not match its byte range,
/// ranges overlap or leave a hole, or they do not end where the file does.
inline SafetensorsLayout read_safetensors_layout(std::istream& in, std::uint64_t size, const std::string& path) {
  auto fail = [&](const std::string& field, const std::string& what) { throw Error(Location{path, 0, field}, what); };
  if (size < 8) fail("header", "the file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  std::uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  if (!in) fail("header", "cannot read the header length");
  if (header_size > size - 8)
    fail("header", "the header length says " + std::to_string(header_size) + " bytes but only " +
                       std::to_string(size - 8) + " follow (a truncated file?)");
  if (header_size > detail::max_safetensors_header)
    fail("header", "the header length " + std::to_string(header_size) + " exceeds 100 MiB");
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  if (!in) fail("header", "cannot read the header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    fail("header", std::string("not JSON: ") + e.what());
  }
  if (!j.is_object()) fail("header", "the header is not a JSON object");

  SafetensorsLayout out;
  out.data_start = 8 + header_size;
  const std::uint64_t data_size = size - out.data_start;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(name, "must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail("__metadata__." + key, "must be a string");
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      fail(name, "each tensor needs \"dtype\", \"shape\" and \"data_offsets\"");
    SafetensorsEntry e;
    e.name = name;
    if (!entry["dtype"].is_string()) fail(name, "dtype must be a string");
    e.dtype = entry["dtype"].get<std::string>();
    std::uint64_t bytes = safetensors_element_size(e.dtype);
    if (bytes == 0)
      fail(name, "dtype \"" + e.dtype + "\" is not one LibTorch can hold (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    const auto& shape = entry["shape"];
    if (!shape.is_array()) fail(name, "shape must be an array of non-negative integers");
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) fail(name, "shape must be an array of non-negative integers");
      const auto extent = d.get<std::uint64_t>();
      if (extent > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (extent != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / extent))
        fail(name, "shape " + shape.dump() + " is too large");
      bytes *= extent;
      e.shape.push_back(static_cast<std::int64_t>(extent));
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      fail(name, "data_offsets must be [BEGIN, END], two non-negative integers");
    e.begin = offsets[0].get<std::uint64_t>(), e.end = offsets[1].get<std::uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      fail(name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] fall outside the " +
                     std::to_string(data_size) + " data bytes (a truncated file?)");
    if (e.end - e.begin != bytes)
      fail(name, "shape " + shape.dump() + " of " + e.dtype + " needs " + std::to_string(bytes) +
                     " bytes, data_offsets give " + std::to_string(e.end - e.begin));
    out.entries.push_back(std::move(e));
  }
  // The format indexes its whole buffer: no overlap, no hole, nothing after the last tensor.
  std::sort(out.entries.begin(), out.entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  std::uint64_t at = 0;
  for (const auto& e : out.entries) {
    if (e.begin != at)
      fail(e.name, e.begin < at ? "its bytes overlap another tensor's"
                                : "bytes [" + std::to_string(at) + ", " + std::to_string(e.begin) + ") belong to no tensor");
    at = e.end;
  }
  if (at != data_size) fail("", std::to_string(data_size - at) + " bytes after the last tensor belong to no tensor");
  return out;
}

}  // namespace commercemm::train
