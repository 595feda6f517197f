#pragma once
// Learning-rate schedule: linear warm-up, then cosine decay to a floor. A fresh transformer
// trained contrastively without warm-up collapses to one embedding for every input (the loss
// sits at log B); a short warm-up avoids it.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>

namespace commercemm::train {

struct LrSchedule {
  double peak = 3e-4;
  std::int64_t warmup_steps = 100;
  std::int64_t total_steps = 2000;
  double floor_ratio = 0.1;  ///< the last step's rate, as a share of the peak

  /// The rate for 0-based `step`.
  double at(std::int64_t step) const {
    if (step < warmup_steps) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    const auto decay_steps = std::max<std::int64_t>(1, total_steps - warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps));
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return peak * (floor_ratio + (1.0 - floor_ratio) * cosine);
  }
};

/// Sets every parameter group's learning rate (AdamW options).
inline void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

}  // namespace commercemm::train
