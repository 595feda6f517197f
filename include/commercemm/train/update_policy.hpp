#pragma once
// Update policies: when a training step's optimizer steps happen (cmm::Recipe's fourth
// argument). Gradient accumulation over micro-batches is another thing: train.accumulate.
namespace commercemm::update {

/// One optimizer step per training step, after both passes, their gradients summed (default).
struct OneStep {
  static constexpr bool step_after_each_pass = false;
};
/// One optimizer step after each pass: two updates per training step.
struct PerPass {
  static constexpr bool step_after_each_pass = true;
};
/// The former name of OneStep, which is no gradient accumulation.
using Accumulate [[deprecated("renamed update::OneStep (gradient accumulation is train.accumulate)")]] = OneStep;

}  // namespace commercemm::update
