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
//
// The arithmetic is nn::MovingAverage's, with buffers copied.
#include <algorithm>
#include <cstdint>

#include <commercemm/nn/moving_average.hpp>

namespace commercemm::train {

/// The decay after `steps_done` steps (1-based: 1 after the first step).
inline double weight_average_decay(double decay, std::int64_t steps_done) {
  const double ramp = (1.0 + static_cast<double>(steps_done)) / (10.0 + static_cast<double>(steps_done));
  return std::min(decay, ramp);
}

}  // namespace commercemm::train
