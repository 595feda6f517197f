// Fuzzes image decoding (stb through data::decode_image) and resampling to a [3, 16, 16] tensor,
// plain and augmented. Built against torch_shim/ (see there): LibTorch's headers do not compile
// with clang 14 in C++20 mode.
#include <cmath>
#include <cstdlib>

#include <commercemm/data/image.hpp>

#include "common.hpp"

using namespace commercemm;

namespace {
void check(torch::Tensor t) {
  if (t.values().size() != 3 * 16 * 16) std::abort();
  for (float v : t.values())
    if (!std::isfinite(v)) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  data::RgbImage image;
  try {
    image = data::decode_image({data, size}, "fuzz.img");
  } catch (const Error&) {
    return 0;
  }
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3)
    std::abort();
  const data::ImageOptions options{.size = 16};
  check(data::to_tensor(image, options));
  data::ImageRng rng(size);
  check(data::to_tensor(image, options, data::Augmentation{}, rng));
  const data::Augmentation colour{.brightness = 1, .contrast = 1, .saturation = 1, .grayscale_probability = 0.5};
  check(data::to_tensor(image, options, colour, rng));
  return 0;
}
