#pragma once
// The small modules that hold the tasks' learnable state.
#include <cmath>
#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <commercemm/dist/communicator.hpp>

namespace commercemm::tasks {

/// For tasks without parameters.
class NoHeadImpl : public torch::nn::Cloneable<NoHeadImpl> {
 public:
  void reset() override {}
};
TORCH_MODULE(NoHead);

/// A contrastive task's temperature, CLIP style: the log of the inverse temperature is learned
/// and clamped so the temperature never drops below `minimum` (logits stay bounded), or fixed
/// (`learned` false: the parameter does not require a gradient and no optimizer moves it).
class TemperatureImpl : public torch::nn::Cloneable<TemperatureImpl> {
 public:
  explicit TemperatureImpl(double initial = 0.07, bool learned = true, double minimum = 0.01)
      : initial_(initial), learned_(learned), minimum_(minimum) {
    reset();
  }
  void reset() override {
    log_inverse = register_parameter("log_inverse", torch::tensor(std::log(1.0 / initial_)), learned_);
  }
  /// [] the temperature.
  torch::Tensor forward() const { return 1.0 / log_inverse.clamp_max(std::log(1.0 / minimum_)).exp(); }

  torch::Tensor log_inverse;

 private:
  double initial_;
  bool learned_;
  double minimum_;
};
TORCH_MODULE(Temperature);

/// MLM: BERT's prediction head, its output layer tied to the text encoder's token embedding.
class MlmHeadImpl : public torch::nn::Cloneable<MlmHeadImpl> {
 public:
  MlmHeadImpl(std::int64_t fusion_width, std::int64_t text_width, std::int64_t vocab_size)
      : fusion_width_(fusion_width), text_width_(text_width), vocab_size_(vocab_size) {
    reset();
  }
  void reset() override {
    transform = register_module("transform", torch::nn::Linear(fusion_width_, text_width_));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({text_width_}).eps(1e-6)));
    bias = register_parameter("bias", torch::zeros({vocab_size_}));
  }
  /// hidden [M, Wf], embedding [V, Wt] -> logits [M, V]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& embedding) {
    // LayerNorm on CPU (LibTorch 1.13) takes no bf16 input with fp32 weights: under bf16
    // autocast the transform's output is bf16, so it is upcast first.
    return torch::matmul(norm(torch::gelu(transform(hidden)).to(norm->weight.scalar_type())), embedding.t()) + bias;
  }

  torch::nn::Linear transform{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor bias;

 private:
  std::int64_t fusion_width_, text_width_, vocab_size_;
};
TORCH_MODULE(MlmHead);

/// MIM-kl: the student's prototype layer, the teacher's fixed random projection onto the same
/// K prototypes, and the running centre of the teacher's logits (DINO).
class MimKlHeadImpl : public torch::nn::Cloneable<MimKlHeadImpl> {
 public:
  MimKlHeadImpl(std::int64_t fusion_width, std::int64_t image_width, std::int64_t prototypes = 256)
      : fusion_width_(fusion_width), image_width_(image_width), prototypes_(prototypes) {
    reset();
  }
  void reset() override {
    student = register_module("student", torch::nn::Linear(fusion_width_, prototypes_));
    // Scaled so a LayerNorm-ed feature gives logits of standard deviation 0.1: divided by
    // the teacher temperature 0.04 that is 2.5, a distribution of about log K - 3 nats,
    // sharp but far from one-hot.
    teacher_projection = register_buffer(
        "teacher_projection",
        torch::randn({image_width_, prototypes_}) * (0.1 / std::sqrt(static_cast<double>(image_width_))));
    center = register_buffer("center", torch::zeros({prototypes_}));
  }
  torch::Tensor teacher_logits(const torch::Tensor& features) const {
    return torch::matmul(features.detach().to(teacher_projection.dtype()), teacher_projection);
  }
  /// The centre moves towards the mean teacher logit of the global batch (every rank's
  /// masked patches), so all ranks keep the same centre as a single process would.
  void update_center(const torch::Tensor& teacher_logits, double momentum = 0.9) {
    torch::NoGradGuard no_grad;
    auto sum = torch::cat({teacher_logits.detach().to(torch::kDouble).sum(0),
                           torch::full({1}, static_cast<double>(teacher_logits.size(0)), teacher_logits.options().dtype(torch::kDouble))});
    if (auto* comm = dist::current()) {
      sum = sum.to(torch::kCPU);
      comm->all_reduce_sum(sum);
    }
    pending_ = pending_.defined() ? pending_ + sum.to(torch::kCPU) : sum.to(torch::kCPU);
    pending_momentum_ = momentum;
    if (!defer_) flush_center();
  }
  /// Under gradient accumulation the centre moves once per optimizer step, with the mean of
  /// every micro-batch's logits, as it would on the whole batch: defer, then flush.
  void defer_center_updates(bool defer) { defer_ = defer; }
  void flush_center() {
    torch::NoGradGuard no_grad;
    if (!pending_.defined()) return;
    const double count = pending_[-1].item<double>();
    if (count > 0)
      center.mul_(pending_momentum_)
          .add_((pending_.narrow(0, 0, prototypes_) / count).to(center.options()), 1 - pending_momentum_);
    pending_ = torch::Tensor();
  }

  torch::nn::Linear student{nullptr};
  torch::Tensor teacher_projection, center;

 private:
  torch::Tensor pending_;  // [K + 1] summed logits and their count, not yet applied
  double pending_momentum_ = 0.9;
  bool defer_ = false;

 public:

 private:
  std::int64_t fusion_width_, image_width_, prototypes_;
};
TORCH_MODULE(MimKlHead);

}  // namespace commercemm::tasks
