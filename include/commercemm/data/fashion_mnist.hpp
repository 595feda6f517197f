#pragma once
// Fashion-MNIST (Zalando; Debian package dataset-fashion-mnist): 70k 28x28 grey product photos in
// ten classes, read from the gzip-compressed IDX files. The image-only categorization benchmark.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/data/image.hpp>

namespace commercemm::data {

enum class FashionMnistSplit { train, test };

/// The ten class names, indexed by label.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes{
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/// Where Debian's dataset-fashion-mnist installs the files.
inline std::filesystem::path default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

struct FashionMnist {
  torch::Tensor images;  ///< [N, 1, 28, 28] uint8, 0 = black background, 255 = brightest
  torch::Tensor labels;  ///< [N] int64 in 0..9
};

namespace detail {

/// The whole decompressed content of a .gz file (a plain file is read as is, as zlib does).
inline std::vector<unsigned char> read_gzip(const std::filesystem::path& file) {
  if (!std::filesystem::is_regular_file(file)) throw Error({file.string(), 0, ""}, "no such file");
  gzFile in = gzopen(file.string().c_str(), "rb");
  if (in == nullptr) throw Error({file.string(), 0, ""}, "cannot open");
  std::vector<unsigned char> out;
  std::array<unsigned char, 1 << 16> chunk{};
  for (;;) {
    const int n = gzread(in, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(in, &code);
      gzclose(in);
      throw Error({file.string(), 0, ""}, "corrupt gzip data: " + message);
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.data(), chunk.data() + n);
  }
  // A gzip stream cut short reads as a clean end with Z_BUF_ERROR pending.
  int code = Z_OK;
  const std::string message = gzerror(in, &code);
  gzclose(in);
  if (code != Z_OK && code != Z_STREAM_END)
    throw Error({file.string(), 0, ""}, "corrupt or truncated gzip data: " + message);
  return out;
}

inline std::uint32_t read_be32(const std::vector<unsigned char>& bytes, std::size_t at) {
  return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
         (std::uint32_t{bytes[at + 2]} << 8) | std::uint32_t{bytes[at + 3]};
}

/// Checks an IDX header (magic 0x0000 08 NDIM for unsigned bytes) and returns the dimensions.
inline std::vector<std::int64_t> idx_dims(const std::vector<unsigned char>& bytes, int ndim,
                                          const std::filesystem::path& file) {
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndim);
  if (bytes.size() < header)
    throw Error({file.string(), 0, "header"}, "truncated IDX file (" + std::to_string(bytes.size()) + " bytes)");
  const std::uint32_t magic = read_be32(bytes, 0);
  const std::uint32_t expected = 0x00000800u | static_cast<std::uint32_t>(ndim);
  if (magic != expected) {
    char text[32];
    std::snprintf(text, sizeof text, "0x%08X", magic);
    char want[32];
    std::snprintf(want, sizeof want, "0x%08X", expected);
    throw Error({file.string(), 0, "magic"},
                std::string("bad IDX magic number ") + text + " (expected " + want + ": unsigned bytes, " +
                    std::to_string(ndim) + " dimensions)");
  }
  std::vector<std::int64_t> dims;
  std::size_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    dims.push_back(read_be32(bytes, 4 + 4 * static_cast<std::size_t>(d)));
    total *= static_cast<std::size_t>(dims.back());
  }
  if (bytes.size() != header + total)
    throw Error({file.string(), 0, "data"}, std::string(bytes.size() < header + total ? "truncated" : "oversized") +
                                                " IDX file: " + std::to_string(bytes.size() - header) +
                                                " data bytes for a header promising " + std::to_string(total));
  return dims;
}

}  // namespace detail

/// Reads one pair of IDX files (images: N x 28 x 28 bytes, labels: N bytes in 0..9).
inline FashionMnist read_fashion_mnist_files(const std::filesystem::path& images_file,
                                             const std::filesystem::path& labels_file) {
  const auto image_bytes = detail::read_gzip(images_file);
  const auto dims = detail::idx_dims(image_bytes, 3, images_file);
  const auto label_bytes = detail::read_gzip(labels_file);
  const auto label_dims = detail::idx_dims(label_bytes, 1, labels_file);
  if (label_dims[0] != dims[0])
    throw Error({labels_file.string(), 0, "count"}, std::to_string(label_dims[0]) + " labels for " +
                                                        std::to_string(dims[0]) + " images in " + images_file.string());
  FashionMnist out;
  out.images = torch::empty({dims[0], 1, dims[1], dims[2]}, torch::kUInt8);
  std::memcpy(out.images.data_ptr<std::uint8_t>(), image_bytes.data() + 16, image_bytes.size() - 16);
  out.labels = torch::empty({label_dims[0]}, torch::kInt64);
  auto* labels = out.labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < label_dims[0]; ++i) {
    const auto label = label_bytes[8 + static_cast<std::size_t>(i)];
    if (label >= fashion_mnist_classes.size())
      throw Error({labels_file.string(), i + 1, "label"}, "label " + std::to_string(label) + " is outside 0..9");
    labels[i] = label;
  }
  return out;
}

/// Reads the train (60000) or test (10000) split from `dir` (train-images-idx3-ubyte.gz, ...).
inline FashionMnist read_fashion_mnist(FashionMnistSplit split,
                                       const std::filesystem::path& dir = default_fashion_mnist_dir()) {
  const std::string prefix = split == FashionMnistSplit::train ? "train" : "t10k";
  return read_fashion_mnist_files(dir / (prefix + "-images-idx3-ubyte.gz"), dir / (prefix + "-labels-idx1-ubyte.gz"));
}

/// Makes [N, 1, h, w] uint8 images model-ready: [N, 3, size, size] float, resampled and
/// normalised exactly like catalog images. `invert` (default) turns the black background white,
/// as in the emoji catalog the model is pre-trained on.
inline torch::Tensor fashion_mnist_to_model(const torch::Tensor& images, const ImageOptions& options = {},
                                            bool invert = true) {
  if (images.dim() != 4 || images.size(1) != 1 || images.scalar_type() != torch::kUInt8)
    throw Error({"", 0, "images"}, "expected [N, 1, H, W] uint8 images");
  detail::check_options(options);
  const auto source = images.contiguous();
  const std::int64_t n = source.size(0), h = source.size(2), w = source.size(3);
  auto out = torch::empty({n, 3, options.size, options.size}, torch::kFloat32);
  const auto* in = source.data_ptr<std::uint8_t>();
  float* dst = out.data_ptr<float>();
  const std::int64_t out_stride = 3 * options.size * options.size;
  at::parallel_for(0, n, 64, [&](std::int64_t begin, std::int64_t end) {
    RgbImage image;
    image.width = static_cast<int>(w);
    image.height = static_cast<int>(h);
    image.pixels.resize(static_cast<std::size_t>(h * w * 3));
    for (std::int64_t i = begin; i < end; ++i) {
      const std::uint8_t* p = in + i * h * w;
      for (std::int64_t k = 0; k < h * w; ++k) {
        const float v = p[k] / 255.0f;
        const float grey = invert ? 1.0f - v : v;
        image.pixels[static_cast<std::size_t>(k) * 3 + 0] = grey;
        image.pixels[static_cast<std::size_t>(k) * 3 + 1] = grey;
        image.pixels[static_cast<std::size_t>(k) * 3 + 2] = grey;
      }
      const auto size = static_cast<int>(options.size);
      detail::resample_into(image, 0, 0, static_cast<double>(w), static_cast<double>(h), false, size, dst + i * out_stride);
      detail::normalise(dst + i * out_stride, static_cast<std::size_t>(size) * size, options);
    }
  });
  return out;
}

}  // namespace commercemm::data
