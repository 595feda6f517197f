#pragma once
// encoders::ViT: patch embedding, CLS token, learned positions, pre-LN blocks, final LayerNorm.
#include <string>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/nn/transformer_block.hpp>

namespace commercemm::encoders {

class ViTImpl : public torch::nn::Cloneable<ViTImpl> {
 public:
  explicit ViTImpl(const ImageEncoderConfig& config) : config_(config) { reset(); }

  void reset() override {
    if (config_.pool != "cls")
      throw Error(Location{"", 0, "model.image.pool"},
                  "encoders::ViT has its own CLS token: only \"cls\" applies (\"" + config_.pool +
                      "\" is encoders::ConvNet's)");
    if (config_.thumbnail != 0)
      throw Error(Location{"", 0, "model.image.thumbnail"},
                  "encoders::ViT does not read a thumbnail into its CLS token: only 0 applies (got " +
                      std::to_string(config_.thumbnail) + "; the thumbnail map is encoders::ConvNet's)");
    const auto w = config_.width, n = config_.num_patches();
    patch_embed = register_module("patch_embed", torch::nn::Conv2d(
        torch::nn::Conv2dOptions(3, w, config_.patch_size).stride(config_.patch_size)));
    cls_token = register_parameter("cls_token", torch::zeros({1, 1, w}));
    mask_token = register_parameter("mask_token", torch::zeros({1, 1, w}));
    positions = register_parameter("positions", torch::zeros({1, 1 + n, w}));
    drop = register_module("drop", torch::nn::Dropout(config_.dropout));
    blocks = register_module(
        "blocks", nn::make_stack(config_.layers, {w, config_.heads, config_.mlp_ratio, config_.dropout}));
    norm = register_module("norm", nn::make_norm(w));
    nn::init_weights(*this);
  }

  /// images [B, 3, S, S] float, patch_mask [B, N] bool (true = masked) or undefined
  ///   -> TokenSequence{[B, 1 + N, W], undefined valid}
  TokenSequence forward(const torch::Tensor& images, const torch::Tensor& patch_mask = {}) {
    check_image_shape(images, config_);
    auto x = patch_embed(images).flatten(2).transpose(1, 2);  // [B, N, W]
    if (patch_mask.defined()) {
      auto m = patch_mask.to(torch::kBool).unsqueeze(-1);
      x = torch::where(m, mask_token.to(x.dtype()).expand_as(x), x);
    }
    x = torch::cat({cls_token.expand({x.size(0), 1, -1}).to(x.dtype()), x}, 1) + positions;
    x = drop(x);
    for (auto& block : *blocks) x = block->as<nn::TransformerBlock>()->forward(x);
    return {norm(x), {}};
  }

  std::int64_t width() const { return config_.width; }
  std::int64_t num_patches() const { return config_.num_patches(); }
  const ImageEncoderConfig& config() const { return config_; }

  torch::nn::Conv2d patch_embed{nullptr};
  torch::Tensor cls_token, mask_token, positions;
  torch::nn::Dropout drop{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  ImageEncoderConfig config_;
};
TORCH_MODULE(ViT);

}  // namespace commercemm::encoders
