#pragma once
// Multi-head self-attention with a key-padding mask and a per-segment mask, written by hand
// because LibTorch 1.13's built-in layers have neither pre-LN blocks nor segment masks.
#include <cmath>
#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/version.h>

namespace commercemm::nn {

/// Which keys each query may attend to, as a bool tensor broadcastable to [B, heads, L, L]
/// (true = may attend), or undefined for "everything".
///  - valid    [B, L] bool/int, true (1) = real token; padding keys are never attended to.
///  - segments [B, L] or [L] int64; a query attends only to keys of its own segment, so one
///    call runs several sequences side by side exactly as if each ran alone.
inline torch::Tensor attention_mask(const torch::Tensor& valid, const torch::Tensor& segments = {}) {
  torch::Tensor allowed;
  if (valid.defined()) allowed = valid.to(torch::kBool).unsqueeze(1).unsqueeze(1);  // [B,1,1,L]
  if (segments.defined()) {
    auto s = segments.dim() == 1 ? segments.unsqueeze(0) : segments;               // [B|1, L]
    auto same = s.unsqueeze(2).eq(s.unsqueeze(1)).unsqueeze(1);                     // [B|1,1,L,L]
    allowed = allowed.defined() ? allowed.logical_and(same) : same;
  }
  return allowed;
}

class SelfAttentionImpl : public torch::nn::Cloneable<SelfAttentionImpl> {
 public:
  SelfAttentionImpl(std::int64_t width, std::int64_t heads, double dropout = 0.0)
      : width_(width), heads_(heads), dropout_(dropout) {
    reset();
  }

  void reset() override {
    TORCH_CHECK(width_ % heads_ == 0, "SelfAttention: width ", width_, " is not a multiple of heads ", heads_);
    qkv = register_module("qkv", torch::nn::Linear(width_, 3 * width_));
    proj = register_module("proj", torch::nn::Linear(width_, width_));
  }

  /// x [B, L, W], allowed from attention_mask() or undefined -> [B, L, W].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed = {}) {
    const auto b = x.size(0), l = x.size(1), head_dim = width_ / heads_;
    auto parts = qkv(x).view({b, l, 3, heads_, head_dim}).permute({2, 0, 3, 1, 4});  // [3,B,H,L,d]
    auto q = parts[0], k = parts[1], v = parts[2];
    const double p = is_training() ? dropout_ : 0.0;
#if TORCH_VERSION_MAJOR >= 2
    // Fused kernel where available (flash / memory-efficient on GPU, fused on recent CPUs).
    // It returns NaN for a query with no allowed key (a row lacking a modality), so each
    // query may always see itself; real tokens already could, so only padding changes.
    torch::Tensor mask;
    if (allowed.defined()) mask = allowed.logical_or(torch::eye(l, allowed.options()));
    auto out = at::scaled_dot_product_attention(q, k, v, mask, p);
#else
    auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
    // A large finite value rather than -inf: a row never ends up all -inf, so never NaN.
    if (allowed.defined()) scores = scores.masked_fill(allowed.logical_not(), fill_value(scores));
    auto weights = torch::softmax(scores, -1);
    if (p > 0) weights = torch::nn::functional::dropout(weights, torch::nn::functional::DropoutFuncOptions().p(p).training(true));
    auto out = torch::matmul(weights, v);
#endif
    return proj(out.transpose(1, 2).reshape({b, l, width_}));
  }

  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  static double fill_value(const torch::Tensor& t) { return t.scalar_type() == torch::kHalf ? -1e4 : -1e9; }

  std::int64_t width_, heads_;
  double dropout_;
};
TORCH_MODULE(SelfAttention);

}  // namespace commercemm::nn
