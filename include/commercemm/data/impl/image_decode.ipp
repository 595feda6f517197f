#pragma once
// Definitions of data/image.hpp's decoding (see core/linkage.hpp). stb is compiled into the TU
// that includes this file as private static functions, so it never clashes with another copy
// of stb in the program.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <vector>

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#endif
#ifndef STB_IMAGE_STATIC
#define STB_IMAGE_STATIC
#endif
#ifndef STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#endif
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO  // we read files ourselves: std::filesystem paths, and errors that name them
#include <stb/stb_image.h>
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <commercemm/data/image.hpp>

namespace commercemm::data {

namespace detail {
// Walks the markers as stb does: segments by their length, entropy-coded data byte by byte
// (0xFF there is stuffed or a restart marker); a table that runs past its segment is summed
// over the bytes stb would read next.
COMMERCEMM_DECL bool jpeg_huffman_tables_fit(std::span<const unsigned char> b) {
  if (b.size() < 2 || b[0] != 0xFF || b[1] != 0xD8) return true;
  auto at = [&](std::size_t i) -> std::size_t { return i < b.size() ? b[i] : 0; };  // stb reads 0 past the end
  std::size_t i = 2;
  while (i + 1 < b.size()) {
    const std::size_t marker = b[i + 1];
    if (b[i] != 0xFF || marker == 0xFF) {  // scan data, or a fill byte before a marker
      ++i;
      continue;
    }
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // stuffed, TEM, RSTn, SOI
      i += 2;
      continue;
    }
    if (marker == 0xD9) return true;  // EOI
    const std::size_t length = (at(i + 2) << 8) | at(i + 3);
    if (marker == 0xC4)
      for (std::size_t p = i + 4; p < i + 2 + length;) {  // tables: class/id, 16 counts, the values
        std::size_t codes = 0;
        for (std::size_t k = 1; k <= 16; ++k) codes += at(p + k);
        if (codes > 256) return false;
        p += 17 + codes;
      }
    i += 2 + std::max<std::size_t>(length, 2);
  }
  return true;
}
}  // namespace detail

COMMERCEMM_DECL RgbImage decode_image(std::span<const unsigned char> bytes, const std::string& name,
                                      std::int64_t max_pixels) {
  if (bytes.empty()) throw Error({name, 0, ""}, "cannot decode image: the file is empty");
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error({name, 0, ""}, "cannot decode image: file too large");
  if (!detail::jpeg_huffman_tables_fit(bytes))
    throw Error({name, 0, ""}, "cannot decode image: corrupt JPEG (a Huffman table declares more than 256 codes)");
  int width = 0, height = 0, channels = 0;
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels) &&
      static_cast<std::int64_t>(width) * height > max_pixels)
    throw Error({name, 0, ""}, "image of " + std::to_string(width) + " x " + std::to_string(height) +
                                   " pixels, more than data.max_image_pixels = " + std::to_string(max_pixels));
  unsigned char* rgba =
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 4);
  if (rgba == nullptr) {
    const char* reason = stbi_failure_reason();
    throw Error({name, 0, ""}, std::string("cannot decode image (PNG or JPEG expected): ") +
                                   (reason != nullptr ? reason : "unknown error"));
  }
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  const std::size_t n = static_cast<std::size_t>(width) * height;
  for (std::size_t i = 0; i < n; ++i) {
    const float alpha = rgba[i * 4 + 3] / 255.0f;
    for (int c = 0; c < 3; ++c)  // straight alpha over a white background
      image.pixels[i * 3 + c] = (rgba[i * 4 + c] / 255.0f) * alpha + (1.0f - alpha);
  }
  stbi_image_free(rgba);
  return image;
}

COMMERCEMM_DECL RgbImage read_image(const std::filesystem::path& file, std::int64_t max_pixels) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error({file.string(), 0, ""}, "cannot open image file (missing or unreadable)");
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (!ec && size > max_image_file_bytes(max_pixels))
    throw Error({file.string(), 0, ""}, "image file of " + std::to_string(size) + " bytes, more than " +
                                            std::to_string(max_image_file_bytes(max_pixels)) +
                                            " (64 bytes a pixel of data.max_image_pixels)");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error({file.string(), 0, ""}, "error while reading image file");
  return decode_image(bytes, file.string(), max_pixels);
}

}  // namespace commercemm::data
