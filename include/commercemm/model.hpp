#pragma once
// cmm::Model<ImageEncoder, TextEncoder, Fusion>: the three networks and the three embedding
// heads, assembled at compile time. A torch::nn module holder like LibTorch's own:
//   Model model(cmm::presets::model("tiny"));
//   cmm::Embeddings e = model->embed(batch, cmm::FusionSplit{s});
#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/embeddings.hpp>
#include <commercemm/core/model_config.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/fusion/fusion.hpp>

namespace commercemm {

/// How many times each network ran since the last reset_calls(). The step planner's tests
/// assert on these (a task that is not selected must cost nothing).
struct CallCounts {
  std::int64_t image_encoder = 0, text_encoder = 0, fusion = 0;
};

/// One modality of a batch, kept for reuse (see ModelImpl::cache_image): its embedding [B, D]
/// and its fusion side, [B, 1 + L, W] ([B, 1, W] at the two-tower split).
struct ModalityCache {
  torch::Tensor embedding;
  FusionSide side;
  bool defined() const { return side.defined(); }
};

template <class ImageEncoderT, class TextEncoderT, class FusionT>
class ModelImpl : public torch::nn::Cloneable<ModelImpl<ImageEncoderT, TextEncoderT, FusionT>> {
  static_assert(encoders::ImageEncoder<ImageEncoderT>,
                "cmm::Model<I, T, F>: I is not an image encoder. It must be a TORCH_MODULE holder "
                "constructible from ImageEncoderConfig with forward(images, patch_mask) -> "
                "TokenSequence, width() and num_patches(); see encoders/encoder.hpp.");
  static_assert(encoders::TextEncoder<TextEncoderT>,
                "cmm::Model<I, T, F>: T is not a text encoder. It must be a TORCH_MODULE holder "
                "constructible from TextEncoderConfig with forward(ids, mask) -> TokenSequence, "
                "width() and token_embedding(); see encoders/encoder.hpp.");
  static_assert(fusion::Fusion<FusionT>,
                "cmm::Model<I, T, F>: F is not a fusion module. It must be a TORCH_MODULE holder "
                "constructible from (FusionConfig, text_width, image_width) with forward(text, "
                "image, FusionSplit) -> FusionOutput, width() and depth(); see fusion/fusion.hpp.");

 public:
  using ImageEncoder = ImageEncoderT;
  using TextEncoder = TextEncoderT;
  using Fusion = FusionT;

  explicit ModelImpl(ModelConfig config) : config_(std::move(config)) {
    validate(config_);
    const auto preset = presets::is_preset(config_.preset) ? presets::model(config_.preset) : ModelConfig{};
    encoders::check_unread_keys<ImageEncoderT>(config_.image, preset.image, "model.image");
    encoders::check_unread_keys<TextEncoderT>(config_.text, preset.text, "model.text");
    reset();
  }

  void reset() override {
    image_ = this->register_module("image_encoder", ImageEncoderT(config_.image));
    text_ = this->register_module("text_encoder", TextEncoderT(config_.text));
    fusion_ = this->register_module("fusion", FusionT(config_.fusion, text_->width(), image_->width()));
    const auto d = config_.embed_dim;
    image_head = this->register_module("image_head", torch::nn::Linear(image_->width(), d));
    text_head = this->register_module("text_head", torch::nn::Linear(text_->width(), d));
    multimodal_head = this->register_module("multimodal_head", torch::nn::Linear(fusion_->width(), d));
  }

  ImageEncoderT& image_encoder() { return image_; }
  TextEncoderT& text_encoder() { return text_; }
  FusionT& fusion() { return fusion_; }
  const ModelConfig& config() const { return config_; }

  // Token-level calls, for the tasks. Each counts one call of its network.

  /// images [B, 3, H, W], patch_mask [B, N] bool (true = masked) or undefined -> [B, 1 + N, Wi]
  TokenSequence encode_image(const torch::Tensor& images, const torch::Tensor& patch_mask = {}) {
    ++calls_.image_encoder;
    return image_->forward(images, patch_mask);
  }
  /// ids [B, L], mask [B, L] -> [B, 1 + L, Wt]
  TokenSequence encode_text(const torch::Tensor& ids, const torch::Tensor& mask) {
    ++calls_.text_encoder;
    return text_->forward(ids, mask);
  }
  FusionOutput fuse(const TokenSequence& text, const TokenSequence& image, FusionSplit split = {}) {
    ++calls_.fusion;
    return fusion_->forward(text, image, split);
  }

  // Embedding heads: [B, W] CLS states -> [B, D], L2-normalised.
  torch::Tensor embed_image(const TokenSequence& image) { return normalized(image_head(image.cls())); }
  torch::Tensor embed_text(const TokenSequence& text) { return normalized(text_head(text.cls())); }
  torch::Tensor embed_multimodal(const FusionOutput& fused) { return normalized(multimodal_head(fused.pooled)); }

  /// All three embeddings of a batch (each modality encoded once, fused once).
  Embeddings embed(const Batch& batch, FusionSplit split = {}) {
    if constexpr (fusion::SplittableFusion<FusionT>) {
      ModalityCache image, text;
      if (batch.has_images()) image = cache_image(batch.images, split);
      if (batch.has_text()) text = cache_text(batch.text_ids, batch.text_mask, split);
      Embeddings out{image.embedding, text.embedding, {}};
      if (image.defined() || text.defined()) out.multimodal = embed_multimodal(text, image);
      return out;
    } else {
      TokenSequence image, text;
      Embeddings out;
      if (batch.has_images()) out.image = embed_image(image = encode_image(batch.images));
      if (batch.has_text()) out.text = embed_text(text = encode_text(batch.text_ids, batch.text_mask));
      if (image.defined() || text.defined()) out.multimodal = embed_multimodal(fuse(text, image, split));
      return out;
    }
  }

  // Embedding with reuse (inference). Below the fusion split each modality runs alone, so an
  // item's image side and text side can be computed once: they give its image and text
  // embeddings, and embed_multimodal joins them. When an item's title changes, only
  // cache_text reruns; at the two-tower split the multimodal embedding then costs a norm, a
  // mean and a linear layer.

  /// images [B, 3, H, W] -> the image embedding and the image's fusion side at `split`.
  ModalityCache cache_image(const torch::Tensor& images, FusionSplit split = {}) {
    return cache(encode_image(images), Modality::image, split);
  }
  /// ids [B, L], mask [B, L] -> the text embedding and the text's fusion side at `split`.
  ModalityCache cache_text(const torch::Tensor& ids, const torch::Tensor& mask, FusionSplit split = {}) {
    return cache(encode_text(ids, mask), Modality::text, split);
  }
  /// The multimodal embedding [B, D] of the rows whose sides were cached (at one split); either
  /// may be absent. Equal to embed(batch, split).multimodal.
  torch::Tensor embed_multimodal(const ModalityCache& text, const ModalityCache& image) {
    ++calls_.fusion;
    return normalized(multimodal_head(fusion_->pool(text.side, image.side)));
  }

  const CallCounts& calls() const { return calls_; }
  void reset_calls() { calls_ = {}; }

  torch::nn::Linear image_head{nullptr}, text_head{nullptr}, multimodal_head{nullptr};

 private:
  ModalityCache cache(const TokenSequence& encoded, Modality modality, FusionSplit split) {
    static_assert(fusion::SplittableFusion<FusionT>,
                  "cmm::Model: caching modality states needs a fusion with alone(sequence, modality, split) "
                  "and pool(text_side, image_side); see SplittableFusion in fusion/fusion.hpp.");
    ModalityCache out;
    out.embedding = modality == Modality::image ? embed_image(encoded) : embed_text(encoded);
    out.side = fusion_->alone(encoded, modality, split);
    if (split.layers_alone == fusion_->depth()) {  // two towers: pooling reads the CLS alone
      auto& s = out.side.state;
      s.tokens = s.tokens.narrow(1, 0, 1).clone();
      if (s.valid.defined()) s.valid = s.valid.narrow(1, 0, 1).clone();
    }
    return out;
  }

  static torch::Tensor normalized(const torch::Tensor& x) {
    return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  }

  ModelConfig config_;
  ImageEncoderT image_{nullptr};
  TextEncoderT text_{nullptr};
  FusionT fusion_{nullptr};
  CallCounts calls_;
};

/// The module holder users name: cmm::Model<encoders::ViT, encoders::TextTransformer,
/// fusion::MergedAttention>. Copying it shares the module; clone() makes a deep copy.
template <class ImageEncoderT, class TextEncoderT, class FusionT>
class Model : public torch::nn::ModuleHolder<ModelImpl<ImageEncoderT, TextEncoderT, FusionT>> {
 public:
  using Impl = ModelImpl<ImageEncoderT, TextEncoderT, FusionT>;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;
  explicit Model(const ModelConfig& config) : torch::nn::ModuleHolder<Impl>(config) {}
};

/// Parameter count of a module (every parameter, trainable or not).
inline std::int64_t parameter_count(const torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace commercemm
