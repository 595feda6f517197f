#pragma once
// encoders::TextTransformer: BERT-style token + learned position embeddings with its own
// learned CLS (so any tokenizer works, with or without a [CLS] token), blocks with a padding
// mask; pre-LN with a final LayerNorm, or (model.text.norm = "post") BERT's post-LN with the
// LayerNorm over the embeddings. model.text.pool = "bag" or "cls_bag" puts (or adds) the
// mean of the input token embeddings in the CLS state: with hashed n-gram tokens that is
// fastText, whose embedding keeps the pieces two texts share.
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
    if (bag_pooling()) bag_norm = register_module("bag_norm", nn::make_norm(w));
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
    const auto embedded = embedding(ids);
    auto x = torch::cat({cls_token.expand({b, 1, -1}), embedded}, 1) + positions.narrow(1, 0, 1 + l);
    x = drop(post_norm() ? norm(x) : x);
    auto valid = torch::cat({torch::ones({b, 1}, mask.options().dtype(torch::kBool)), mask.to(torch::kBool)}, 1);
    const auto allowed = nn::attention_mask(valid);
    for (auto& block : *blocks) x = block->as<nn::TransformerBlock>()->forward(x, allowed);
    if (!post_norm()) x = norm(x);
    if (bag_pooling()) x = with_bag(x, embedded, mask);
    return {x, valid};
  }

  bool post_norm() const { return config_.norm == "post"; }
  bool bag_pooling() const { return config_.pool != "cls"; }

  std::int64_t width() const { return config_.width; }
  /// [V, W]: the input embedding matrix, which the MLM head reuses as its output layer.
  torch::Tensor token_embedding() const { return embedding->weight; }
  const TextEncoderConfig& config() const { return config_; }

  torch::nn::Embedding embedding{nullptr};
  torch::Tensor cls_token, positions;
  torch::nn::Dropout drop{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::LayerNorm bag_norm{nullptr};  ///< only with model.text.pool = "bag" or "cls_bag"

 private:
  /// `states` with its CLS state replaced by (or, for "cls_bag", summed with) the normalised
  /// mean of the real tokens' input embeddings; a text without tokens gets the norm's bias.
  torch::Tensor with_bag(const torch::Tensor& states, const torch::Tensor& embedded, const torch::Tensor& mask) {
    const auto real = mask.to(torch::kBool).unsqueeze(-1);
    const auto count = real.sum(1).clamp_min(1).to(embedded.scalar_type());
    auto bag = bag_norm(embedded.masked_fill(real.logical_not(), 0).sum(1) / count).to(states.scalar_type());
    if (config_.pool == "cls_bag") bag = bag + states.select(1, 0);
    return torch::cat({bag.unsqueeze(1), states.narrow(1, 1, states.size(1) - 1)}, 1);
  }

  TextEncoderConfig config_;
};
TORCH_MODULE(TextTransformer);

}  // namespace commercemm::encoders
