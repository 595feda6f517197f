#pragma once
// Tensors as NumPy .npy files, so embeddings and scores can be checked from Python without
// a pickle or LibTorch on that side. Only the two dtypes evaluation writes: '<f4' (float32)
// and '<i8' (int64), C order, little-endian. The format is documented in
// numpy/lib/format.py ("NEP 1"): magic "\x93NUMPY", version, header length, a Python dict
// literal with descr, fortran_order and shape, padded so the data starts 64-byte aligned.
#include <bit>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>


#include <torch/types.h>

#include <commercemm/core/atomic_file.hpp>
#include <commercemm/core/error.hpp>

namespace commercemm::eval {

static_assert(std::endian::native == std::endian::little,
              "npy.hpp copies tensor bytes as they are, which is only '<' (little-endian) on a little-endian host");

namespace npy_detail {

inline constexpr char magic[] = "\x93NUMPY";
inline constexpr std::size_t magic_size = 6;

inline Error error(const std::filesystem::path& file, const std::string& message) {
  return Error(Location{file.string(), 0, ""}, message);
}

/// The numpy descr for a dtype we write, or "" for one we do not.
inline std::string_view descr_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "<f4";
    case torch::kInt64: return "<i8";
    default: return "";
  }
}

/// The header dict exactly as numpy spells it: sorted keys, Python reprs, "(5,)" for 1-D.
inline std::string header_dict(std::string_view descr, torch::IntArrayRef shape) {
  std::string out = "{'descr': '";
  out += descr;
  out += "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ',';
  out += "), }";
  return out;
}

/// What the reader needs from the header dict.
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

/// A parser for the small Python literal subset numpy writes in headers: a dict of string
/// keys whose values are strings, True/False, or tuples of integers. Anything else is an
/// error rather than a guess.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::filesystem::path& file) : text_(text), file_(file) {}

  Header parse() {
    Header header;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        header.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        header.shape = int_tuple();
        have_shape = true;
      } else {
        fail("unknown header key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    if (!have_descr || !have_order || !have_shape)
      throw error(file_, "npy header lacks one of 'descr', 'fortran_order', 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw error(file_, "malformed npy header at character " + std::to_string(pos_) + ": " + what +
                           " (header: " + std::string(text_) + ")");
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const auto end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<std::int64_t> int_tuple() {
    std::vector<std::int64_t> out;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        return out;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer in the shape");
      std::int64_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (value > (INT64_MAX - 9) / 10) fail("shape value out of range");
        value = value * 10 + (text_[pos_] - '0');
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 longs, as old numpy wrote them
      out.push_back(value);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      }
    }
  }

  std::string_view text_;
  const std::filesystem::path& file_;
  std::size_t pos_ = 0;
};

}  // namespace npy_detail

/// Writes `tensor` (float32 or int64, any rank, any device or layout) to `file` as NPY 1.0:
/// C order, little-endian, header padded to 64 bytes as numpy pads it. The file appears
/// whole or not at all: it is written beside the target and renamed over it, so a reader
/// never sees half an array. Throws commercemm::Error naming the file for other dtypes or
/// I/O failures.
inline void write_npy(const std::filesystem::path& file, const torch::Tensor& tensor) {
  if (!tensor.defined()) throw npy_detail::error(file, "cannot write an undefined tensor");
  const std::string_view descr = npy_detail::descr_of(tensor.scalar_type());
  if (descr.empty())
    throw npy_detail::error(file, std::string("write_npy supports float32 and int64, not ") +
                                      c10::toString(tensor.scalar_type()));
  const torch::Tensor data = tensor.to(torch::kCPU).contiguous();

  std::string header = npy_detail::header_dict(descr, data.sizes());
  // Like numpy (>= 1.21), leave room for the first dimension to grow to 21 digits, so tools
  // that append rows can rewrite the header in place; this also makes the bytes identical.
  if (data.dim() > 0) header.append(21 - std::to_string(data.size(0)).size(), ' ');
  // Pad with spaces and end with '\n' so magic(6) + version(2) + length(2) + header is a
  // multiple of 64, which lets readers memory-map the data aligned.
  const std::size_t prefix = npy_detail::magic_size + 2 + 2;
  const std::size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  if (header.size() > 65535) throw npy_detail::error(file, "npy header too long for format 1.0");

  write_atomically(file, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw npy_detail::error(file, "cannot create " + tmp.string());
    out.write(npy_detail::magic, npy_detail::magic_size);
    const char version[2] = {1, 0};
    out.write(version, 2);
    const char length[2] = {static_cast<char>(header.size() & 0xFF), static_cast<char>(header.size() >> 8)};
    out.write(length, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    const auto bytes = static_cast<std::streamsize>(data.numel() * data.element_size());
    if (bytes > 0) out.write(static_cast<const char*>(data.data_ptr()), bytes);
    out.close();
    if (!out) throw npy_detail::error(file, "write failed (disk full?)");
  });
}

/// Reads an NPY file (format 1.0, 2.0 or 3.0) holding '<f4' or '<i8' data in C order, as numpy
/// writes them, into a CPU float32 or int64 tensor. Throws commercemm::Error naming the file
/// for a bad magic, an unsupported dtype, fortran_order True, or truncated data.
inline torch::Tensor read_npy(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw npy_detail::error(file, "cannot open npy file");

  char prefix[npy_detail::magic_size + 2];
  in.read(prefix, sizeof prefix);
  if (in.gcount() != static_cast<std::streamsize>(sizeof prefix) ||
      std::memcmp(prefix, npy_detail::magic, npy_detail::magic_size) != 0)
    throw npy_detail::error(file, "not an npy file (bad magic; expected \\x93NUMPY)");
  const int major = static_cast<unsigned char>(prefix[npy_detail::magic_size]);
  const int minor = static_cast<unsigned char>(prefix[npy_detail::magic_size + 1]);
  if (major < 1 || major > 3 || minor != 0)
    throw npy_detail::error(file, "unsupported npy format version " + std::to_string(major) + "." +
                                      std::to_string(minor));

  // Version 1.0 stores the header length in 2 bytes, 2.0 and 3.0 in 4 (little-endian).
  const std::size_t length_size = major == 1 ? 2 : 4;
  unsigned char length_bytes[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(length_bytes), static_cast<std::streamsize>(length_size));
  if (in.gcount() != static_cast<std::streamsize>(length_size)) throw npy_detail::error(file, "truncated npy header");
  std::uint32_t header_size = 0;
  for (std::size_t i = 0; i < length_size; ++i) header_size |= std::uint32_t{length_bytes[i]} << (8 * i);
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  if (in.gcount() != static_cast<std::streamsize>(header_size)) throw npy_detail::error(file, "truncated npy header");

  const npy_detail::Header header = npy_detail::HeaderParser(header_text, file).parse();
  torch::ScalarType type;
  if (header.descr == "<f4") {
    type = torch::kFloat32;
  } else if (header.descr == "<i8") {
    type = torch::kInt64;
  } else {
    throw npy_detail::error(file, "unsupported npy dtype '" + header.descr + "' (read_npy reads '<f4' and '<i8')");
  }
  if (header.fortran_order)
    throw npy_detail::error(file, "fortran_order True is not supported (save a C-contiguous array)");

  // Check the size before allocating, so a damaged shape cannot ask for terabytes.
  std::uint64_t bytes = type == torch::kFloat32 ? 4 : 8;
  for (const std::int64_t n : header.shape) {
    const auto un = static_cast<std::uint64_t>(n);
    if (un != 0 && bytes > UINT64_MAX / un) throw npy_detail::error(file, "npy shape too large");
    bytes *= un;
  }
  const auto data_start = static_cast<std::uint64_t>(in.tellg());
  std::error_code size_error;
  const std::uint64_t file_size = std::filesystem::file_size(file, size_error);
  if (size_error) throw npy_detail::error(file, "cannot stat npy file: " + size_error.message());
  const std::uint64_t available = file_size > data_start ? file_size - data_start : 0;
  if (available < bytes)
    throw npy_detail::error(file, "truncated npy data: the shape needs " + std::to_string(bytes) +
                                      " bytes, the file holds " + std::to_string(available));

  torch::Tensor out = torch::empty(header.shape, torch::TensorOptions().dtype(type));
  if (bytes > 0) {
    in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(bytes));
    if (static_cast<std::uint64_t>(in.gcount()) != bytes) throw npy_detail::error(file, "read failed");
  }
  return out;
}

}  // namespace commercemm::eval
