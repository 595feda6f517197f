#pragma once
// The moving average of a model's weights (train.ema_decay), as timm's ModelEmaV2 and the
// "EMA of weights" of many vision recipes keep it: a model whose weights trail the trained
// ones, averaging out the last steps' noise. On little data the trained weights wander from
// step to step (the emoji benchmark's image side peaks early and then drifts); the average
// is what a checkpoint serves.
//
// The decay ramps up, min(decay, (1 + step) / (10 + step)), so that the first steps' average
// is not mostly the random initialisation. Every rank holds the same weights after a step
// (data-parallel training), so every rank's average is the same too.
#include <algorithm>
#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <commercemm/core/error.hpp>

namespace commercemm::train {

/// The decay after `steps_done` steps (1-based: 1 after the first step).
inline double weight_average_decay(double decay, std::int64_t steps_done) {
  const double ramp = (1.0 + static_cast<double>(steps_done)) / (10.0 + static_cast<double>(steps_done));
  return std::min(decay, ramp);
}

/// Sets every parameter and buffer of `average` to `model`'s (same architecture).
inline void copy_weights(torch::nn::Module& average, const torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  const auto from_params = model.named_parameters(), from_buffers = model.named_buffers();
  for (auto& p : average.named_parameters()) p.value().copy_(from_params[p.key()]);
  for (auto& b : average.named_buffers()) b.value().copy_(from_buffers[b.key()]);
}

/// average <- decay * average + (1 - decay) * model, parameter by parameter; buffers (running
/// statistics, counters) are copied, as timm does. Same architecture required.
inline void update_weight_average(torch::nn::Module& average, const torch::nn::Module& model, double decay) {
  torch::NoGradGuard no_grad;
  const auto from_params = model.named_parameters(), from_buffers = model.named_buffers();
  for (auto& p : average.named_parameters()) {
    const auto* source = from_params.find(p.key());
    if (source == nullptr) throw Error("update_weight_average: the model has no parameter " + p.key());
    p.value().lerp_(*source, 1.0 - decay);
  }
  for (auto& b : average.named_buffers()) b.value().copy_(from_buffers[b.key()]);
}

}  // namespace commercemm::train
