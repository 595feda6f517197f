#pragma once
// encoders::TextTransformer: BERT-style token + learned position embeddings with its own
// learned CLS (so any tokenizer works, with or without a [CLS] token), blocks with a padding
// mask; pre-LN with a final LayerNorm, or (model.text.norm = "post") BERT's post-LN with the
// LayerNorm over the embeddings.
#include <string>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/nn/transformer_block.hpp>

namespace commercemm::encoders {

class TextTransformerImpl : public torch::nn::Cloneable<TextTransformerImpl> {
 public:
  explicit TextTransformerImpl(const TextEncoderConfig& config) : config_(config) { reset(); }

  void reset() override {
    const auto w = config_.width;
    embedding = register_module("embedding", torch::nn::Embedding(config_.vocab_size, w));
    cls_token = register_parameter("cls_token", torch::zeros({1, 1, w}));
    positions = register_parameter("positions", torch::zeros({1, 1 + config_.max_length, w}));
    drop = register_module("drop", torch::nn::Dropout(config_.dropout));
    blocks = register_module("blocks", nn::make_stack(config_.layers, {w, config_.heads, config_.mlp_ratio,
                                                                        config_.dropout, post_norm()}));
    norm = register_module("norm", nn::make_norm(w));  // post-LN: over the embeddings
    nn::init_weights(*this);
  }

  /// ids [B, L] int64, mask [B, L] (1 = token, 0 = padding) -> TokenSequence [B, 1 + L, W]
  /// with valid [B, 1 + L] (the CLS is always valid). Padding never changes the real tokens'
  /// outputs: it is masked out of attention and positions are absolute.
  TokenSequence forward(const torch::Tensor& ids, const torch::Tensor& mask) {
    if (ids.dim() != 2 || ids.scalar_type() != torch::kLong)
      throw Error(Location{"", 0, "text_ids"}, "expected [B, L] int64, got " + shape_string(ids));
    if (ids.size(1) > config_.max_length)
      throw Error(Location{"", 0, "text_ids"},
                  "length " + std::to_string(ids.size(1)) + " exceeds model.text.max_length (" +
                      std::to_string(config_.max_length) + ")");
    if (!mask.defined() || mask.sizes() != ids.sizes())
      throw Error(Location{"", 0, "text_mask"}, "expected the shape of text_ids " +
                                                     shape_string(ids) + ", got " + shape_string(mask));
    if (ids.numel() > 0) {
      const auto lo = ids.min().item<std::int64_t>(), hi = ids.max().item<std::int64_t>();
      if (lo < 0 || hi >= config_.vocab_size)
        throw Error(Location{"", 0, "text_ids"},
                    "token id " + std::to_string(lo < 0 ? lo : hi) + " is outside [0, " +
                        std::to_string(config_.vocab_size) + ") (model.text.vocab_size)");
    }
    const auto b = ids.size(0), l = ids.size(1);
    auto x = torch::cat({cls_token.expand({b, 1, -1}), embedding(ids)}, 1) +
             positions.narrow(1, 0, 1 + l);
    x = drop(post_norm() ? norm(x) : x);
    auto valid = torch::cat({torch::ones({b, 1}, mask.options().dtype(torch::kBool)), mask.to(torch::kBool)}, 1);
    const auto allowed = nn::attention_mask(valid);
    for (auto& block : *blocks) x = block->as<nn::TransformerBlock>()->forward(x, allowed);
    return {post_norm() ? x : norm(x), valid};
  }

  bool post_norm() const { return config_.norm == "post"; }

  std::int64_t width() const { return config_.width; }
  /// [V, W]: the input embedding matrix, which the MLM head reuses as its output layer.
  torch::Tensor token_embedding() const { return embedding->weight; }
  const TextEncoderConfig& config() const { return config_; }

  torch::nn::Embedding embedding{nullptr};
  torch::Tensor cls_token, positions;
  torch::nn::Dropout drop{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  TextEncoderConfig config_;
};
TORCH_MODULE(TextTransformer);

}  // namespace commercemm::encoders
