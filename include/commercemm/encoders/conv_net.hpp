#pragma once
// encoders::ConvNet: a ResNet-style image encoder that learns from little data, a drop-in for
// encoders::ViT (same ImageEncoderConfig, same tokens out):
//   stem 3x3 conv -> log2(patch_size) stages, each a stride-2 3x3 conv then residual blocks
//   (3x3 conv, GroupNorm, ReLU, 3x3 conv, GroupNorm, + skip) -> a grid of
//   (image_size / patch_size)^2 cells of `width` channels: the N patch tokens. The CLS token
//   is their average (model.image.pool = "cls"), or the average plus a learned linear map of
//   the flattened grid ("cls_grid": an average forgets where things are, which instance
//   retrieval of centred product pictures needs; README "Ablations"); model.image.thumbnail
//   adds a learned linear map of the input's small thumbnail (the raw-pixel reference's
//   features: other vendors' drawings of a product are close in them); learned positions and a
//   final LayerNorm make the tokens what the fusion layers expect from a ViT.
// GroupNorm, not BatchNorm: no running statistics, so a sample's output never depends on its
// batch (2 ranks follow 1 process, modality dropout changes nothing else in the batch).
// Config: width = the last stage's channels (each earlier stage has half of the next's,
// at least 16); layers = residual blocks in all, spread over the stages (at least one each).
// Masked image modelling: a masked patch's pixels are replaced by a learned colour before the
// stem (convolutions have no tokens to swap out at the input).
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <torch/nn/cloneable.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/nn/thumbnail.hpp>
#include <commercemm/nn/transformer_block.hpp>

namespace commercemm::encoders {

namespace detail {
inline torch::nn::Conv2d conv3x3(std::int64_t in, std::int64_t out, std::int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
}  // namespace detail

/// GroupNorm (8 groups) computed in float32 whatever the input's dtype: LibTorch 1.13's CPU
/// autocast leaves group_norm out of its lists, and its kernel refuses bf16 input with float
/// weights.
class FloatGroupNormImpl : public torch::nn::Cloneable<FloatGroupNormImpl> {
 public:
  explicit FloatGroupNormImpl(std::int64_t channels) : channels_(channels) { reset(); }
  void reset() override {
    norm = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(
                                       std::min<std::int64_t>(8, channels_), channels_)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm(x.to(torch::kFloat32)).to(x.scalar_type()); }
  torch::nn::GroupNorm norm{nullptr};

 private:
  std::int64_t channels_;
};
TORCH_MODULE(FloatGroupNorm);

namespace detail {
inline FloatGroupNorm group_norm(std::int64_t channels) { return FloatGroupNorm(channels); }
}  // namespace detail

/// x -> relu(x + GN(conv(relu(GN(conv(x)))))): the basic block of ResNet-18/34.
class ResidualBlockImpl : public torch::nn::Cloneable<ResidualBlockImpl> {
 public:
  explicit ResidualBlockImpl(std::int64_t channels) : channels_(channels) { reset(); }

  void reset() override {
    conv1 = register_module("conv1", detail::conv3x3(channels_, channels_));
    norm1 = register_module("norm1", detail::group_norm(channels_));
    conv2 = register_module("conv2", detail::conv3x3(channels_, channels_));
    norm2 = register_module("norm2", detail::group_norm(channels_));
  }

  /// [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::relu(x + norm2(conv2(torch::relu(norm1(conv1(x))))));
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  FloatGroupNorm norm1{nullptr}, norm2{nullptr};

 private:
  std::int64_t channels_;
};
TORCH_MODULE(ResidualBlock);

class ConvNetImpl : public torch::nn::Cloneable<ConvNetImpl> {
 public:
  explicit ConvNetImpl(const ImageEncoderConfig& config) : config_(config) { reset(); }

  void reset() override {
    const auto p = config_.patch_size;
    if (p < 2 || (p & (p - 1)) != 0)
      throw Error(Location{"", 0, "model.image.patch_size"},
                  "encoders::ConvNet halves the resolution per stage: the patch size must be a power of 2 "
                  "(at least 2), got " + std::to_string(p));
    std::int64_t num_stages = 0;  // one per halving of the resolution: 2^num_stages = p
    while ((std::int64_t{1} << num_stages) < p) ++num_stages;
    const auto channels = [&](std::int64_t stage) {  // the last stage has `width`
      return std::max<std::int64_t>(16, config_.width >> (num_stages - 1 - stage));
    };
    stem = register_module("stem", detail::conv3x3(3, std::max<std::int64_t>(16, channels(0) / 2)));
    stem_norm = register_module("stem_norm", detail::group_norm(stem->options.out_channels()));
    stages = register_module("stages", torch::nn::ModuleList());
    std::int64_t in = stem->options.out_channels();
    for (std::int64_t s = 0; s < num_stages; ++s) {
      torch::nn::Sequential stage;
      const auto out = channels(s);
      stage->push_back(detail::conv3x3(in, out, 2));
      stage->push_back(detail::group_norm(out));
      stage->push_back(torch::nn::Functional([](const torch::Tensor& t) { return torch::relu(t); }));
      // layers blocks in all, the remainder to the last stages (where the tokens are made).
      const std::int64_t extra = s >= num_stages - config_.layers % num_stages ? 1 : 0;
      const auto blocks = std::max<std::int64_t>(1, config_.layers / num_stages + extra);
      for (std::int64_t b = 0; b < blocks; ++b) stage->push_back(ResidualBlock(out));
      stages->push_back(stage);
      in = out;
    }
    mask_pixel = register_parameter("mask_pixel", torch::zeros({1, 3, 1, 1}));
    positions = register_parameter("positions", torch::zeros({1, 1 + config_.num_patches(), config_.width}));
    norm = register_module("norm", nn::make_norm(config_.width));
    if (config_.pool == "cls_grid")  // PyTorch's default init: starts near the plain average
      grid_pool = register_module(
          "grid_pool", torch::nn::Linear(config_.num_patches() * config_.width, config_.width));
    if (const auto t = config_.thumbnail; t > 0)
      thumbnail_pool = register_module("thumbnail_pool", torch::nn::Linear(3 * t * t, config_.width));
    torch::NoGradGuard no_grad;
    for (auto& module : modules(/*include_self=*/false))
      if (auto* conv = module->as<torch::nn::Conv2d>())  // He initialisation, as ResNets use
        torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    positions.normal_(0.0, 0.02);
  }

  /// images [B, 3, S, S] float, patch_mask [B, N] bool (true = masked) or undefined
  ///   -> TokenSequence{[B, 1 + N, W], undefined valid}
  TokenSequence forward(const torch::Tensor& images, const torch::Tensor& patch_mask = {}) {
    check_image_shape(images, config_);
    const auto s = config_.image_size, p = config_.patch_size;
    auto x = images;
    if (patch_mask.defined()) {
      const auto side = s / p;
      auto m = patch_mask.to(torch::kBool).view({-1, 1, side, side});
      m = m.repeat_interleave(p, 2).repeat_interleave(p, 3);  // [B, 1, S, S]
      x = torch::where(m, mask_pixel.to(x.dtype()).expand_as(x), x);
    }
    // Read after masking, so masked image modelling cannot see a masked patch through it.
    const auto thumb = thumbnail_pool ? nn::thumbnail(x, config_.thumbnail).to(x.dtype()) : torch::Tensor();
    x = torch::relu(stem_norm(stem(x)));
    for (auto& stage : *stages) x = stage->as<torch::nn::Sequential>()->forward(x);
    auto tokens = x.flatten(2).transpose(1, 2);  // [B, N, W]
    auto cls = tokens.mean(1, /*keepdim=*/true);
    if (grid_pool) cls = cls + grid_pool(tokens.flatten(1)).unsqueeze(1);
    if (thumbnail_pool) cls = cls + thumbnail_pool(thumb).unsqueeze(1);
    tokens = torch::cat({cls, tokens}, 1) + positions;
    return {norm(tokens), {}};
  }

  std::int64_t width() const { return config_.width; }
  std::int64_t num_patches() const { return config_.num_patches(); }
  const ImageEncoderConfig& config() const { return config_; }

  /// The model.image keys a convolutional encoder does not read (no attention, no dropout):
  /// cmm::Model rejects a config that moves them off the preset (encoders::check_unread_keys).
  static constexpr std::array<std::string_view, 3> unread_keys{"heads", "mlp_ratio", "dropout"};

  torch::nn::Conv2d stem{nullptr};
  FloatGroupNorm stem_norm{nullptr};
  torch::nn::ModuleList stages{nullptr};
  torch::Tensor mask_pixel, positions;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear grid_pool{nullptr};       ///< "cls_grid" only
  torch::nn::Linear thumbnail_pool{nullptr};  ///< model.image.thumbnail > 0 only

 private:
  ImageEncoderConfig config_;
};
TORCH_MODULE(ConvNet);

}  // namespace commercemm::encoders
