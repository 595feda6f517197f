#pragma once
// The transformer block every stack in the model is made of, pre-LN by default:
//   x = x + drop(attn(LN(x)));  x = x + drop(mlp(LN(x)))
// Pre-LN keeps gradients well-scaled without a long warm-up (Xiong et al., 2020). Post-LN
// (BERT's layout, for its pretrained weights): x = LN(x + drop(attn(x))); x = LN(x + drop(mlp(x))).
#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <commercemm/nn/attention.hpp>

namespace commercemm::nn {

struct BlockOptions {
  std::int64_t width = 256;
  std::int64_t heads = 4;
  std::int64_t mlp_ratio = 4;
  double dropout = 0.0;
  bool post_norm = false;  ///< LayerNorm after each residual sum (BERT) instead of before
};

class TransformerBlockImpl : public torch::nn::Cloneable<TransformerBlockImpl> {
 public:
  explicit TransformerBlockImpl(BlockOptions options) : options_(options) { reset(); }

  void reset() override {
    const auto w = options_.width;
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w}).eps(1e-6)));
    attn = register_module("attn", SelfAttention(w, options_.heads, options_.dropout));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w}).eps(1e-6)));
    fc1 = register_module("fc1", torch::nn::Linear(w, w * options_.mlp_ratio));
    fc2 = register_module("fc2", torch::nn::Linear(w * options_.mlp_ratio, w));
    drop = register_module("drop", torch::nn::Dropout(options_.dropout));
  }

  /// x [B, L, W]; allowed from attention_mask() (or undefined) -> [B, L, W].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed = {}) {
    if (options_.post_norm) {
      auto h = norm1(x + drop(attn(x, allowed)));
      return norm2(h + drop(fc2(drop(torch::gelu(fc1(h))))));
    }
    auto h = x + drop(attn(norm1(x), allowed));
    return h + drop(fc2(drop(torch::gelu(fc1(norm2(h))))));
  }

  const BlockOptions& options() const { return options_; }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SelfAttention attn{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};

 private:
  BlockOptions options_;
};
TORCH_MODULE(TransformerBlock);

/// `layers` blocks of the same options, as every stack in the model is built.
inline torch::nn::ModuleList make_stack(std::int64_t layers, const BlockOptions& options) {
  torch::nn::ModuleList stack;
  for (std::int64_t i = 0; i < layers; ++i) stack->push_back(TransformerBlock(options));
  return stack;
}

/// The LayerNorm after a stack (ViT/BERT use eps 1e-6 with pre-LN blocks).
inline torch::nn::LayerNorm make_norm(std::int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-6));
}

/// ViT/BERT initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm.
inline void init_weights(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const bool is_norm = name.find("norm") != std::string::npos;
    if (name.ends_with("bias")) p.zero_();
    else if (is_norm) p.fill_(1.0);
    else p.normal_(0.0, 0.02);
  }
}

}  // namespace commercemm::nn
