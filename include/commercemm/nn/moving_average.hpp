#pragma once
// The exponential moving average of a module's weights, kept in a copy of the same
// architecture: average <- decay * average + (1 - decay) * source. The trainer's weight
// average (train.ema_decay) and the MIM tasks' EMA teacher both are one.
//
// The tensors are paired by name once, when the average is set up: a checkpoint load or a
// device move writes into each tensor in place (Tensor::set_), so the pairs stay valid and a
// step pays for the arithmetic alone.
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <commercemm/core/error.hpp>

namespace commercemm::nn {

class MovingAverage {
 public:
  /// What happens to buffers (running statistics, counters): copied from the source each
  /// update, as timm's ModelEmaV2 does, or left as they are.
  enum class Buffers { copied, left };

  MovingAverage() = default;
  /// Pairs every parameter (and buffer, when copied) of `average` with `source`'s of the same
  /// name; a name `source` lacks is an error naming it.
  MovingAverage(torch::nn::Module& average, const torch::nn::Module& source, Buffers buffers) {
    const auto from_params = source.named_parameters();
    for (auto& p : average.named_parameters()) params_.emplace_back(p.value(), find(from_params, p.key(), "parameter"));
    if (buffers == Buffers::left) return;
    const auto from_buffers = source.named_buffers();
    for (auto& b : average.named_buffers()) buffers_.emplace_back(b.value(), find(from_buffers, b.key(), "buffer"));
  }

  /// average <- decay * average + (1 - decay) * source (mul_ then add_, the teacher's
  /// arithmetic, so its checkpoints of earlier builds resume bit for bit; a weight average
  /// saved by an earlier build, which used lerp_, resumes to rounding).
  void update(double decay) {
    torch::NoGradGuard no_grad;
    for (const auto& [average, source] : params_) average.mul_(decay).add_(source, 1.0 - decay);
    for (const auto& [average, source] : buffers_) average.copy_(source);
  }

  /// average <- source, for every paired tensor.
  void copy() {
    torch::NoGradGuard no_grad;
    for (const auto& [average, source] : params_) average.copy_(source);
    for (const auto& [average, source] : buffers_) average.copy_(source);
  }

 private:
  static torch::Tensor find(const torch::OrderedDict<std::string, torch::Tensor>& tensors, const std::string& name,
                            const char* kind) {
    const auto* found = tensors.find(name);
    if (found == nullptr) throw Error(std::string("MovingAverage: the source module has no ") + kind + " " + name);
    return *found;
  }

  std::vector<std::pair<torch::Tensor, torch::Tensor>> params_, buffers_;
};

}  // namespace commercemm::nn
