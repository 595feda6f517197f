#pragma once
// fusion::MergedAttention: one stack of pre-LN transformer layers over the concatenated text
// and image tokens, with modality-type embeddings, and a split point (see FusionSplit).
//
// The multimodal representation is the mean of the fused text CLS and the fused image CLS
// (of the ones a row has). Unlike a separate fusion CLS token it is defined for every split,
// including the two-tower split where no layer is joint, and for inputs with one modality.
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/fusion/fusion.hpp>
#include <commercemm/nn/transformer_block.hpp>

namespace commercemm::fusion {

class MergedAttentionImpl : public torch::nn::Cloneable<MergedAttentionImpl> {
 public:
  MergedAttentionImpl(const FusionConfig& config, std::int64_t text_width, std::int64_t image_width)
      : config_(config), text_width_(text_width), image_width_(image_width) {
    reset();
  }

  void reset() override {
    const auto w = config_.width;
    text_in = register_module("text_in", torch::nn::Linear(text_width_, w));
    image_in = register_module("image_in", torch::nn::Linear(image_width_, w));
    modality_type = register_parameter("modality_type", torch::zeros({2, w}));  // 0 text, 1 image
    blocks = register_module(
        "blocks", nn::make_stack(config_.layers, {w, config_.heads, config_.mlp_ratio, config_.dropout}));
    norm = register_module("norm", nn::make_norm(w));
    nn::init_weights(*this);
  }

  FusionOutput forward(const TokenSequence& text, const TokenSequence& image, FusionSplit split = {}) {
    const auto [t, i] = joint(alone(text, Modality::text, split), alone(image, Modality::image, split));
    FusionOutput out;
    if (t.defined()) out.text = {norm(t.tokens), t.valid};
    if (i.defined()) out.image = {norm(i.tokens), i.valid};
    out.pooled = pooled(out.text, out.image);
    return out;
  }

  /// One modality through the input projection and the layers it runs alone (shared weights).
  FusionSide alone(const TokenSequence& sequence, Modality modality, FusionSplit split) {
    if (split.layers_alone < 0 || split.layers_alone > depth())
      throw Error(Location{"", 0, "fusion_split"},
                  "must be in [0, " + std::to_string(depth()) + "] (model.fusion.layers), got " +
                      std::to_string(split.layers_alone));
    if (!sequence.defined()) return {{}, split};
    const bool is_text = modality == Modality::text;
    auto x = (is_text ? text_in : image_in)(sequence.tokens) + modality_type[is_text ? 0 : 1];
    const auto allowed = nn::attention_mask(sequence.valid);
    for (std::int64_t layer = 0; layer < split.layers_alone; ++layer)
      x = blocks[layer]->as<nn::TransformerBlock>()->forward(x, allowed);
    return {{x, sequence.valid}, split};
  }

  /// The joint layers and the pooled representation of two sides from alone(); only the CLS
  /// states are normalized, which is all pooling reads.
  torch::Tensor pool(const FusionSide& text, const FusionSide& image) {
    const auto [t, i] = joint(text, image);
    auto cls = [this](const TokenSequence& s) -> TokenSequence {
      if (!s.defined()) return {};
      return {norm(s.tokens.narrow(1, 0, 1)), s.valid.defined() ? s.valid.narrow(1, 0, 1) : torch::Tensor()};
    };
    return pooled(cls(t), cls(i));
  }

  std::int64_t width() const { return config_.width; }
  std::int64_t depth() const { return config_.layers; }
  const FusionConfig& config() const { return config_; }

  torch::nn::Linear text_in{nullptr}, image_in{nullptr};
  torch::Tensor modality_type;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  // The layers above the split, jointly over [text; image]: each side's final states before the norm.
  std::pair<TokenSequence, TokenSequence> joint(const FusionSide& text, const FusionSide& image) {
    if (!text.defined() && !image.defined())
      throw Error(Location{"", 0, "fusion"}, "needs text, image or both; got neither");
    if (text.defined() && image.defined() && text.split.layers_alone != image.split.layers_alone)
      throw Error(Location{"", 0, "fusion_split"},
                  "the text side was computed at split " + std::to_string(text.split.layers_alone) +
                      " and the image side at split " + std::to_string(image.split.layers_alone));
    auto t = text.state.tokens, i = image.state.tokens;
    std::int64_t layer = (text.defined() ? text : image).split.layers_alone;
    if (layer < depth()) {
      const auto lt = t.defined() ? t.size(1) : 0;
      auto x = joined(t, i);
      const auto allowed = nn::attention_mask(joined_valid(text.state, image.state, t, i));
      for (; layer < depth(); ++layer) x = blocks[layer]->as<nn::TransformerBlock>()->forward(x, allowed);
      if (t.defined()) t = x.narrow(1, 0, lt);
      if (i.defined()) i = x.narrow(1, lt, x.size(1) - lt);
    }
    return {{t, text.state.valid}, {i, image.state.valid}};
  }

  // The mean of the CLS states of the modalities a row has: a sequence whose CLS is invalid
  // for a row (that row lacks the modality) does not count for it.
  static torch::Tensor pooled(const TokenSequence& text, const TokenSequence& image) {
    torch::Tensor sum, count;
    for (const auto* s : {&text, &image}) {
      if (!s->defined()) continue;
      auto cls = s->cls();
      auto w = s->valid.defined() ? s->valid.select(1, 0).to(cls.dtype()).unsqueeze(1) : torch::ones_like(cls.narrow(1, 0, 1));
      auto part = torch::where(w.gt(0), cls, torch::zeros_like(cls));  // where, not *: no NaN leaks
      sum = sum.defined() ? sum + part : part;
      count = count.defined() ? count + w : w;
    }
    return sum / count.clamp_min(1.0);
  }

  static torch::Tensor joined(const torch::Tensor& t, const torch::Tensor& i) {
    if (!t.defined()) return i;
    if (!i.defined()) return t;
    return torch::cat({t, i}, 1);
  }
  // [B, Lt + Li] validity of the joined sequence, or undefined when every token is real.
  static torch::Tensor joined_valid(const TokenSequence& text, const TokenSequence& image,
                                    const torch::Tensor& t, const torch::Tensor& i) {
    if (!text.valid.defined() && !image.valid.defined()) return {};
    auto all = [](const torch::Tensor& x) {
      return torch::ones({x.size(0), x.size(1)}, x.options().dtype(torch::kBool));
    };
    std::vector<torch::Tensor> parts;
    if (t.defined()) parts.push_back(text.valid.defined() ? text.valid : all(t));
    if (i.defined()) parts.push_back(image.valid.defined() ? image.valid : all(i));
    return torch::cat(parts, 1);
  }

  FusionConfig config_;
  std::int64_t text_width_, image_width_;
};
TORCH_MODULE(MergedAttention);

}  // namespace commercemm::fusion
