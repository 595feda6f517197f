#pragma once
// Checks a LibTorch archive (a zip file: checkpoints) before LibTorch reads it. LibTorch
// does not verify the zip's CRC-32s, and its TorchScript parser crashes (SEGV) on some damaged
// code records, so a checkpoint with a flipped bit or a torn copy would take the process down.
// Every record's CRC-32 is checked here first (stored records, and the deflated code records),
// with every offset and size bounds-checked, and any damage becomes an Error naming the file.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <zlib.h>

#include <commercemm/core/error.hpp>

namespace commercemm::train {

namespace detail {

class ZipReader {
 public:
  explicit ZipReader(const std::filesystem::path& file) : file_(file), in_(file, std::ios::binary) {
    if (!in_) fail("cannot open");
    std::error_code ec;
    size_ = std::filesystem::file_size(file, ec);
    if (ec) fail("cannot read its size");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(Location{file_.string(), 0, ""}, "damaged checkpoint (not a whole LibTorch archive): " + what);
  }

  std::uint64_t size() const { return size_; }

  std::vector<unsigned char> read(std::uint64_t offset, std::uint64_t bytes) {
    if (offset > size_ || bytes > size_ - offset) fail("a record points past the end of the file");
    std::vector<unsigned char> out(static_cast<std::size_t>(bytes));
    in_.seekg(static_cast<std::streamoff>(offset));
    if (!in_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(bytes))) fail("read failed");
    return out;
  }

  /// CRC-32 of the record's data at [offset, offset + bytes): stored as is (method 0) or
  /// deflated (method 8, LibTorch's code records), which must inflate to exactly `expanded` bytes.
  std::uint32_t crc(std::uint64_t offset, std::uint64_t bytes, bool deflated, std::uint64_t expanded) {
    if (offset > size_ || bytes > size_ - offset) fail("a record points past the end of the file");
    in_.seekg(static_cast<std::streamoff>(offset));
    uLong value = crc32(0L, Z_NULL, 0);
    std::vector<char> chunk(1 << 20), out(deflated ? 1 << 20 : 0);
    z_stream z{};
    if (deflated && inflateInit2(&z, -MAX_WBITS) != Z_OK) fail("zlib");
    std::uint64_t produced = 0;
    int status = Z_OK;
    while (bytes > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, chunk.size()));
      if (!in_.read(chunk.data(), static_cast<std::streamsize>(n))) fail("read failed");
      bytes -= n;
      if (!deflated) {
        value = crc32(value, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(n));
        continue;
      }
      z.next_in = reinterpret_cast<Bytef*>(chunk.data());
      z.avail_in = static_cast<uInt>(n);
      while (z.avail_in > 0 && status != Z_STREAM_END) {
        z.next_out = reinterpret_cast<Bytef*>(out.data());
        z.avail_out = static_cast<uInt>(out.size());
        status = inflate(&z, Z_NO_FLUSH);
        const auto got = out.size() - z.avail_out;
        produced += got;
        if ((status != Z_OK && status != Z_STREAM_END) || produced > expanded) {
          inflateEnd(&z);
          fail("a compressed record does not inflate to its size");
        }
        value = crc32(value, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(got));
      }
    }
    if (deflated) {
      inflateEnd(&z);
      if (status != Z_STREAM_END || produced != expanded) fail("a compressed record does not inflate to its size");
    }
    return static_cast<std::uint32_t>(value);
  }

 private:
  std::filesystem::path file_;
  std::ifstream in_;
  std::uint64_t size_ = 0;
};

inline std::uint64_t little_endian(const std::vector<unsigned char>& b, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b.at(at + static_cast<std::size_t>(i));
  return v;
}

}  // namespace detail

/// Verifies every record of the zip archive `file` against its CRC-32; throws an Error naming
/// the file and the record otherwise.
inline void verify_archive(const std::filesystem::path& file) {
  using detail::little_endian;
  detail::ZipReader zip(file);
  // End of central directory: 22 bytes plus a comment of at most 65535.
  const auto tail_bytes = std::min<std::uint64_t>(zip.size(), 22 + 65535);
  if (tail_bytes < 22) zip.fail("too short");
  const auto tail = zip.read(zip.size() - tail_bytes, tail_bytes);
  std::int64_t end = -1;
  for (auto i = static_cast<std::int64_t>(tail.size()) - 22; i >= 0 && end < 0; --i)
    if (little_endian(tail, static_cast<std::size_t>(i), 4) == 0x06054b50) end = i;
  if (end < 0) zip.fail("no end of central directory (a torn copy?)");
  const auto eocd = static_cast<std::size_t>(end);
  std::uint64_t entries = little_endian(tail, eocd + 10, 2);
  std::uint64_t directory_size = little_endian(tail, eocd + 12, 4);
  std::uint64_t directory = little_endian(tail, eocd + 16, 4);
  if (entries == 0xffff || directory_size == 0xffffffff || directory == 0xffffffff) {  // zip64
    if (eocd < 20 || little_endian(tail, eocd - 20, 4) != 0x07064b50) zip.fail("no zip64 locator");
    const auto record = zip.read(little_endian(tail, eocd - 20 + 8, 8), 56);
    if (little_endian(record, 0, 4) != 0x06064b50) zip.fail("no zip64 end of central directory");
    entries = little_endian(record, 32, 8);
    directory_size = little_endian(record, 40, 8);
    directory = little_endian(record, 48, 8);
  }
  const auto central = zip.read(directory, directory_size);
  std::size_t at = 0;
  for (std::uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > central.size() || little_endian(central, at, 4) != 0x02014b50) zip.fail("a broken central directory");
    const auto method = little_endian(central, at + 10, 2);
    const auto crc = static_cast<std::uint32_t>(little_endian(central, at + 16, 4));
    std::uint64_t compressed = little_endian(central, at + 20, 4);
    const auto name_length = little_endian(central, at + 28, 2), extra_length = little_endian(central, at + 30, 2);
    const auto comment_length = little_endian(central, at + 32, 2);
    std::uint64_t local = little_endian(central, at + 42, 4);
    if (at + 46 + name_length + extra_length + comment_length > central.size()) zip.fail("a broken central directory");
    const std::string name(central.begin() + static_cast<std::ptrdiff_t>(at + 46),
                           central.begin() + static_cast<std::ptrdiff_t>(at + 46 + name_length));
    // Zip64 sizes and offset, in this order, for the fields that hold 0xffffffff.
    std::uint64_t uncompressed = little_endian(central, at + 24, 4);
    for (std::size_t x = at + 46 + name_length; x + 4 <= at + 46 + name_length + extra_length;) {
      const auto id = little_endian(central, x, 2), length = little_endian(central, x + 2, 2);
      std::size_t field = x + 4;
      if (id == 0x0001) {
        for (auto* value : {&uncompressed, &compressed, &local})
          if (*value == 0xffffffff) {
            if (field + 8 > x + 4 + length || field + 8 > central.size()) zip.fail("a broken zip64 field");
            *value = little_endian(central, field, 8), field += 8;
          }
      }
      x += 4 + length;
    }
    if ((method != 0 && method != 8) || (method == 0 && compressed != uncompressed))
      zip.fail("record '" + name + "' has an unknown compression method");
    const auto header = zip.read(local, 30);
    if (little_endian(header, 0, 4) != 0x04034b50) zip.fail("record '" + name + "' has no local header");
    const auto data = local + 30 + little_endian(header, 26, 2) + little_endian(header, 28, 2);
    if (zip.crc(data, compressed, method == 8, uncompressed) != crc) zip.fail("record '" + name + "' fails its CRC-32 check");
    at += 46 + name_length + extra_length + comment_length;
  }
}

}  // namespace commercemm::train
