#pragma once
// Image files to model-ready tensors: decode (PNG, JPEG) with stb, composite alpha on white,
// optionally augment (random resized crop, horizontal flip, colour jitter, greyscale, blur),
// resample, normalise.
//
// Every function is free of shared state (stb's error string is thread-local), so a loader can
// call them from several background threads; each thread brings its own random generator.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/core/linkage.hpp>
#include <commercemm/data/augmentation.hpp>

namespace commercemm::data {

/// How images become tensors. The mean and stddev are ImageNet's (per RGB channel, on values in
/// [0, 1]), the usual choice for ViTs; white (the emoji background) maps to about (2.25, 2.43, 2.64).
struct ImageOptions {
  std::int64_t size = 64;                              ///< output H = W (the model's image_size)
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> stddev{0.229f, 0.224f, 0.225f};
  /// Larger images (width x height, from the file's header) are refused before decoding
  /// (data.max_image_pixels); a file may not exceed 64 bytes a pixel of that either.
  std::int64_t max_pixels = 25'000'000;
};

/// A decoded image: RGB floats in [0, 1], alpha already composited on white; [H, W, 3] row-major.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<float> pixels;
};

/// The generator augmentations draw from. mt19937_64's output is fixed by the standard, and the
/// draws below avoid std::*_distribution (whose results differ between standard libraries), so a
/// seed gives the same crops everywhere.
using ImageRng = std::mt19937_64;

namespace detail {

inline double uniform01(ImageRng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
inline double uniform(ImageRng& rng, double low, double high) { return low + (high - low) * uniform01(rng); }

/// Source pixel weights for each output pixel along one axis: a triangle filter widened by the
/// downscale factor (antialiased when shrinking, bilinear when enlarging), clamped at the edges.
struct AxisWeights {
  std::vector<int> first;           ///< per output pixel: index into taps
  std::vector<int> count;
  std::vector<int> source;          ///< source pixel of each tap
  std::vector<float> weight;
};

inline AxisWeights axis_weights(int source_size, double start, double length, int out_size) {
  AxisWeights w;
  const double scale = length / out_size;
  const double support = std::max(scale, 1.0);
  for (int i = 0; i < out_size; ++i) {
    const double center = start + (i + 0.5) * scale;  // in source pixel units, pixel j spans [j, j+1)
    const int lo = static_cast<int>(std::floor(center - support));
    const int hi = static_cast<int>(std::ceil(center + support));
    w.first.push_back(static_cast<int>(w.source.size()));
    double total = 0;
    const std::size_t begin = w.weight.size();
    for (int j = lo; j <= hi; ++j) {
      const double t = 1.0 - std::abs(j + 0.5 - center) / support;
      if (t <= 0) continue;
      w.source.push_back(std::clamp(j, 0, source_size - 1));
      w.weight.push_back(static_cast<float>(t));
      total += t;
    }
    if (w.weight.size() == begin) {  // a degenerate crop: take the nearest pixel
      w.source.push_back(std::clamp(static_cast<int>(center), 0, source_size - 1));
      w.weight.push_back(1.0f);
      total = 1.0;
    }
    for (std::size_t k = begin; k < w.weight.size(); ++k) w.weight[k] = static_cast<float>(w.weight[k] / total);
    w.count.push_back(static_cast<int>(w.weight.size() - begin));
  }
  return w;
}

/// Resamples the region [x0, x0+cw) x [y0, y0+ch) of `image` to size x size and writes it
/// channel-first into `out` ([3, size, size], values in [0, 1]), mirrored when `flip`.
inline void resample_into(const RgbImage& image, double x0, double y0, double cw, double ch, bool flip, int size,
                          float* out) {
  const auto wx = axis_weights(image.width, x0, cw, size);
  const auto wy = axis_weights(image.height, y0, ch, size);
  // Horizontal pass: [H_src, size, 3].
  std::vector<float> rows(static_cast<std::size_t>(image.height) * size * 3, 0.0f);
  for (int y = 0; y < image.height; ++y) {
    const float* src = image.pixels.data() + static_cast<std::size_t>(y) * image.width * 3;
    float* dst = rows.data() + static_cast<std::size_t>(y) * size * 3;
    for (int x = 0; x < size; ++x) {
      float r = 0, g = 0, b = 0;
      for (int k = wx.first[x]; k < wx.first[x] + wx.count[x]; ++k) {
        const float* p = src + static_cast<std::size_t>(wx.source[k]) * 3;
        r += wx.weight[k] * p[0], g += wx.weight[k] * p[1], b += wx.weight[k] * p[2];
      }
      const int ox = flip ? size - 1 - x : x;
      dst[ox * 3 + 0] = r, dst[ox * 3 + 1] = g, dst[ox * 3 + 2] = b;
    }
  }
  // Vertical pass into channel-first output.
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      float acc[3] = {0, 0, 0};
      for (int k = wy.first[y]; k < wy.first[y] + wy.count[y]; ++k) {
        const float* p = rows.data() + (static_cast<std::size_t>(wy.source[k]) * size + x) * 3;
        for (int c = 0; c < 3; ++c) acc[c] += wy.weight[k] * p[c];
      }
      for (int c = 0; c < 3; ++c) out[c * plane + static_cast<std::size_t>(y) * size + x] = acc[c];
    }
  }
}

/// In place on a channel-first [3, plane] image in [0, 1]: the model's normalisation.
inline void normalise(float* pixels, std::size_t plane, const ImageOptions& options) {
  for (int c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < plane; ++i) pixels[c * plane + i] = (pixels[c * plane + i] - options.mean[c]) / options.stddev[c];
}

/// The pixel-level augmentations' draws for one image (colour, then blur): factors of 1, no
/// greyscale and a blur of sigma 0 change nothing.
struct ColourChange {
  float brightness = 1, contrast = 1, saturation = 1;
  bool grayscale = false;
  float blur_sigma = 0;
};

/// ITU-R 601 luma, as torchvision's rgb_to_grayscale.
inline float luma(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

/// Applies `change` in place to a channel-first [3, plane] image in [0, 1] as torchvision's
/// adjust_brightness, adjust_contrast, adjust_saturation and rgb_to_grayscale do on float
/// images, in that order, each clamped to [0, 1].
inline void change_colour(float* pixels, std::size_t plane, const ColourChange& change) {
  float* r = pixels;
  float* g = pixels + plane;
  float* b = pixels + 2 * plane;
  const auto blend = [](float x, float factor, float grey) { return std::clamp(factor * x + (1 - factor) * grey, 0.0f, 1.0f); };
  if (change.brightness != 1)
    for (std::size_t i = 0; i < 3 * plane; ++i) pixels[i] = std::clamp(pixels[i] * change.brightness, 0.0f, 1.0f);
  if (change.contrast != 1) {
    double sum = 0;
    for (std::size_t i = 0; i < plane; ++i) sum += luma(r[i], g[i], b[i]);
    const auto mean = static_cast<float>(sum / static_cast<double>(plane));
    for (std::size_t i = 0; i < 3 * plane; ++i) pixels[i] = blend(pixels[i], change.contrast, mean);
  }
  if (change.saturation != 1) {
    for (std::size_t i = 0; i < plane; ++i) {
      const float grey = luma(r[i], g[i], b[i]);
      r[i] = blend(r[i], change.saturation, grey), g[i] = blend(g[i], change.saturation, grey),
      b[i] = blend(b[i], change.saturation, grey);
    }
  }
  if (change.grayscale)
    for (std::size_t i = 0; i < plane; ++i) r[i] = g[i] = b[i] = luma(r[i], g[i], b[i]);
}

/// Gaussian blur in place on a channel-first [3, size, size] image: a separable kernel of
/// radius ceil(3 sigma), weights exp(-x^2 / (2 sigma^2)) summing to 1, borders reflected
/// (torchvision's gaussian_blur pads by reflection too).
inline void gaussian_blur(float* pixels, int size, float sigma) {
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<float> kernel(2 * static_cast<std::size_t>(radius) + 1);
  float total = 0;
  for (int x = -radius; x <= radius; ++x)
    total += kernel[x + radius] = std::exp(-static_cast<float>(x * x) / (2 * sigma * sigma));
  for (auto& w : kernel) w /= total;
  // Where offset i of a row or column reads from, for i in [-radius, size + radius): borders
  // reflected (... 2 1 | 0 1 2 ... n-1 | n-2 ...), as often as a wide kernel needs.
  std::vector<int> source(static_cast<std::size_t>(size) + 2 * static_cast<std::size_t>(radius));
  const int period = std::max(1, 2 * (size - 1));
  for (int i = -radius; i < size + radius; ++i) {
    const int folded = ((i % period) + period) % period;
    source[i + radius] = folded < size ? folded : period - folded;
  }
  std::vector<float> rows(static_cast<std::size_t>(size) * size);
  for (int c = 0; c < 3; ++c) {
    float* plane = pixels + static_cast<std::size_t>(c) * size * size;
    for (int y = 0; y < size; ++y)  // along each row, into `rows`
      for (int x = 0; x < size; ++x) {
        float sum = 0;
        for (int k = 0; k <= 2 * radius; ++k) sum += kernel[k] * plane[y * size + source[x + k]];
        rows[y * size + x] = sum;
      }
    for (int y = 0; y < size; ++y)  // then along each column, back into the image
      for (int x = 0; x < size; ++x) {
        float sum = 0;
        for (int k = 0; k <= 2 * radius; ++k) sum += kernel[k] * rows[source[y + k] * size + x];
        plane[y * size + x] = sum;
      }
  }
}

/// Draws the colour change and blur `augment` asks for. Only the augmentations switched on
/// draw, so turning one on leaves the crops and flips of the others as they were.
inline ColourChange draw_colour_change(const Augmentation& augment, ImageRng& rng) {
  ColourChange change;
  const auto factor = [&](double strength) { return static_cast<float>(uniform(rng, 1 - strength, 1 + strength)); };
  if (augment.brightness > 0) change.brightness = factor(augment.brightness);
  if (augment.contrast > 0) change.contrast = factor(augment.contrast);
  if (augment.saturation > 0) change.saturation = factor(augment.saturation);
  if (augment.grayscale_probability > 0) change.grayscale = uniform01(rng) < augment.grayscale_probability;
  if (augment.blur_probability > 0 && uniform01(rng) < augment.blur_probability)
    change.blur_sigma = static_cast<float>(uniform(rng, augment.blur_sigma_min, augment.blur_sigma_max));
  return change;
}

inline void check_options(const ImageOptions& options) {
  if (options.size <= 0 || options.size > 8192)
    throw Error({"", 0, "image_size"}, "must be in 1..8192, got " + std::to_string(options.size));
  for (float s : options.stddev)
    if (!(s > 0)) throw Error({"", 0, "image_stddev"}, "every stddev must be positive");
}

}  // namespace detail

/// The largest file read_image() reads for an image of at most `max_pixels` pixels: 64 bytes a
/// pixel leaves room for any PNG or JPEG of that size, however badly compressed, and a 1 MiB floor
/// for small images with large metadata.
inline std::uint64_t max_image_file_bytes(std::int64_t max_pixels) {
  return std::max<std::uint64_t>(std::uint64_t{1} << 20, static_cast<std::uint64_t>(max_pixels) * 64);
}

namespace detail {
/// Whether every Huffman table of a JPEG's DHT segments declares at most 256 codes (true for
/// anything that is not a JPEG). Debian 12's stb_image writes past a table's 257-entry size
/// list when one declares more (found by fuzzing: a crafted file corrupts memory), so such
/// files are refused before stb reads them.
COMMERCEMM_DECL bool jpeg_huffman_tables_fit(std::span<const unsigned char> b);
}  // namespace detail

/// Decodes PNG or JPEG bytes; `name` (a path, usually) is what errors report. An image of more
/// than `max_pixels` pixels is refused from its header, before anything is allocated for it.
COMMERCEMM_DECL RgbImage decode_image(std::span<const unsigned char> bytes, const std::string& name,
                                      std::int64_t max_pixels = ImageOptions{}.max_pixels);

/// Reads and decodes an image file. A missing, unreadable, corrupt or oversized file throws an
/// Error naming the path.
COMMERCEMM_DECL RgbImage read_image(const std::filesystem::path& file,
                                    std::int64_t max_pixels = ImageOptions{}.max_pixels);

/// The whole image resized to [3, size, size], normalised (evaluation).
inline torch::Tensor to_tensor(const RgbImage& image, const ImageOptions& options) {
  detail::check_options(options);
  auto out = torch::empty({3, options.size, options.size}, torch::kFloat32);
  const auto size = static_cast<int>(options.size);
  detail::resample_into(image, 0, 0, image.width, image.height, false, size, out.data_ptr<float>());
  detail::normalise(out.data_ptr<float>(), static_cast<std::size_t>(size) * size, options);
  return out;
}

/// As above after the augmentations, drawn from `rng` (training). The draws per call are a
/// fixed sequence, so one seed per item gives the same view every run.
inline torch::Tensor to_tensor(const RgbImage& image, const ImageOptions& options, const Augmentation& augment,
                               ImageRng& rng) {
  detail::check_options(options);
  double x0 = 0, y0 = 0, cw = image.width, ch = image.height;
  if (augment.random_resized_crop) {
    // torchvision's RandomResizedCrop: up to 10 tries for a crop that fits, else the whole image.
    const double area = static_cast<double>(image.width) * image.height;
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * detail::uniform(rng, augment.min_area, augment.max_area);
      const double aspect = std::exp(detail::uniform(rng, std::log(augment.min_aspect), std::log(augment.max_aspect)));
      const double w = std::sqrt(target * aspect), h = std::sqrt(target / aspect);
      if (w <= image.width && h <= image.height && w >= 1 && h >= 1) {
        x0 = detail::uniform(rng, 0, image.width - w);
        y0 = detail::uniform(rng, 0, image.height - h);
        cw = w, ch = h;
        break;
      }
    }
  }
  const bool flip = augment.horizontal_flip && detail::uniform01(rng) < augment.flip_probability;
  const auto colour = detail::draw_colour_change(augment, rng);
  auto out = torch::empty({3, options.size, options.size}, torch::kFloat32);
  const auto size = static_cast<int>(options.size);
  const auto plane = static_cast<std::size_t>(size) * size;
  detail::resample_into(image, x0, y0, cw, ch, flip, size, out.data_ptr<float>());
  detail::change_colour(out.data_ptr<float>(), plane, colour);
  if (colour.blur_sigma > 0) detail::gaussian_blur(out.data_ptr<float>(), size, colour.blur_sigma);
  detail::normalise(out.data_ptr<float>(), plane, options);
  return out;
}

/// Reads an image file into a normalised [3, size, size] float tensor (evaluation).
inline torch::Tensor load_image(const std::filesystem::path& file, const ImageOptions& options) {
  return to_tensor(read_image(file, options.max_pixels), options);
}

/// Reads an image file with training augmentations drawn from `rng`.
inline torch::Tensor load_image(const std::filesystem::path& file, const ImageOptions& options,
                                const Augmentation& augment, ImageRng& rng) {
  return to_tensor(read_image(file, options.max_pixels), options, augment, rng);
}

/// Undoes the normalisation: [.., 3, H, W] back to RGB in [0, 1] (for plots and debugging).
inline torch::Tensor denormalize(const torch::Tensor& images, const ImageOptions& options = {}) {
  auto mean = torch::tensor({options.mean[0], options.mean[1], options.mean[2]}).view({3, 1, 1});
  auto scale = torch::tensor({options.stddev[0], options.stddev[1], options.stddev[2]}).view({3, 1, 1});
  return images * scale.to(images.device()) + mean.to(images.device());
}

}  // namespace commercemm::data

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/data/impl/image_decode.ipp>
#endif
