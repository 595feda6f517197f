#pragma once
// nn::thumbnail: an image as its small, mean-centred, L2-normalised thumbnail. The raw-pixel
// reference row scores with it (eval::pixel_features), and encoders::ConvNet can feed it to its
// CLS state (model.image.thumbnail), so both read the pixels the same way.
#include <cstdint>

#include <torch/types.h>

namespace commercemm::nn {

/// images [N, C, H, W] (any real dtype) -> [N, C * side * side] float32. Area-averaging keeps layout and colour and drops noise and small shifts; centring
/// each row makes it blind to overall brightness and normalising to contrast. A flat image
/// gives a zero row. The caller checks the arguments.
inline torch::Tensor thumbnail(const torch::Tensor& images, std::int64_t side) {
  auto x = torch::adaptive_avg_pool2d(images.to(torch::kFloat32), {side, side}).flatten(1);
  x = x - x.mean(1, /*keepdim=*/true);
  return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

}  // namespace commercemm::nn
