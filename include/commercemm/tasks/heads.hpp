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
  torch::Tensor forward() const { return temperature_of(log_inverse, minimum_); }

  /// 1 / exp(log_inverse), the inverse clamped at 1 / minimum.
  static torch::Tensor temperature_of(const torch::Tensor& log_inverse, double minimum) {
    return 1.0 / log_inverse.clamp_max(std::log(1.0 / minimum)).exp();
  }

  torch::Tensor log_inverse;

 private:
  double initial_;
  bool learned_;
  double minimum_;
};
TORCH_MODULE(Temperature);

/// The last `rows` keys a contrastive task saw and their products, as extra negatives for the
/// next batches (cross-batch memory, Wang et al., CVPR 2020: with a small batch, a few dozen
/// negatives say little; once the weights drift slowly, the keys of recent batches are nearly
/// what the model would compute now). A ring buffer of buffers, so checkpoints keep it, a
/// resumed run continues it, and a skipped step's update window restores it. An empty slot
/// has product -1.
class KeyMemoryImpl : public torch::nn::Cloneable<KeyMemoryImpl> {
 public:
  KeyMemoryImpl(std::int64_t rows, std::int64_t dim) : rows_(rows), dim_(dim) { reset(); }
  void reset() override {
    keys = register_buffer("keys", torch::zeros({rows_, dim_}));
    products = register_buffer("products", torch::full({rows_}, -1, torch::kLong));
    next = register_buffer("next", torch::zeros({}, torch::kLong));
  }
  /// Writes keys [n, D] (detached, stored in the memory's dtype) and their products [n] over
  /// the oldest slots; of more than `rows` keys, the last `rows` stay.
  void push(const torch::Tensor& new_keys, const torch::Tensor& new_products) {
    torch::NoGradGuard no_grad;
    auto k = new_keys.detach().to(keys.device(), keys.scalar_type());
    auto p = new_products.to(products.device(), torch::kLong);
    if (k.size(0) > rows_) k = k.narrow(0, k.size(0) - rows_, rows_), p = p.narrow(0, p.size(0) - rows_, rows_);
    const auto n = k.size(0);
    const auto start = next.item<std::int64_t>();
    const auto slots = (torch::arange(n, torch::kLong) + start).remainder(rows_).to(keys.device());
    keys.index_copy_(0, slots, k);
    products.index_copy_(0, slots, p);
    next.fill_((start + n) % rows_);
  }

  torch::Tensor keys, products, next;

 private:
  std::int64_t rows_, dim_;
};
TORCH_MODULE(KeyMemory);

/// A retrieval task's head: its temperature (as Temperature, under the same parameter name,
/// so checkpoints without a memory load unchanged) and, when `memory_rows` > 0, a KeyMemory of
/// `dim`-wide keys.
class RetrievalHeadImpl : public torch::nn::Cloneable<RetrievalHeadImpl> {
 public:
  RetrievalHeadImpl(double initial, bool learned, double minimum, std::int64_t memory_rows, std::int64_t dim)
      : initial_(initial), learned_(learned), minimum_(minimum), memory_rows_(memory_rows), dim_(dim) {
    reset();
  }
  void reset() override {
    log_inverse = register_parameter("log_inverse", torch::tensor(std::log(1.0 / initial_)), learned_);
    memory = memory_rows_ > 0 ? register_module("memory", KeyMemory(memory_rows_, dim_)) : KeyMemory{nullptr};
  }
  /// [] the temperature.
  torch::Tensor forward() const { return TemperatureImpl::temperature_of(log_inverse, minimum_); }

  torch::Tensor log_inverse;
  KeyMemory memory{nullptr};  ///< null without a memory

 private:
  double initial_;
  bool learned_;
  double minimum_;
  std::int64_t memory_rows_, dim_;
};
TORCH_MODULE(RetrievalHead);

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
  std::int64_t fusion_width_, image_width_, prototypes_;
};
TORCH_MODULE(MimKlHead);

}  // namespace commercemm::tasks
