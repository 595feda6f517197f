#pragma once
// The two MIM losses against a teacher (DESIGN section 4).
//
// losses::KL (MIM-kl): the student's distribution over K visual prototypes at each masked
// patch is pulled towards the teacher's. Following DINO/iBOT, the teacher is sharper (lower
// temperature) and its logits are centred by a running mean, which keeps a self-teacher from
// collapsing to one prototype (entropy 0) or to the uniform distribution (entropy log K).
//
// losses::FeatureRegression (MIM-fr): the student regresses the teacher's (LayerNorm-ed)
// feature of the clean patch; mean squared error.
//
// Means run over the rows of the global batch (dist::global_mean): the same values and
// gradients on one process or several.
#include <torch/types.h>

#include <commercemm/dist/communicator.hpp>
#include <commercemm/losses/loss.hpp>

namespace commercemm::losses {

struct KlOptions {
  double student_temperature = 0.1;
  double teacher_temperature = 0.04;
};

/// student_logits, teacher_logits [M, K] (M masked patches), center [K] (undefined = 0)
///   -> loss = mean_m sum_k p_t log(p_t / p_s); parts: teacher_entropy (mean, nats).
inline LossOutput kl_distillation(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                  const torch::Tensor& center = {}, const KlOptions& options = {}) {
  auto t = upcast(teacher_logits.detach());
  if (center.defined()) t = t - center;
  const auto teacher_log_p = torch::log_softmax(t / options.teacher_temperature, -1);
  const auto teacher_p = teacher_log_p.exp();
  const auto student_log_p = torch::log_softmax(upcast(student_logits) / options.student_temperature, -1);
  const auto rows = teacher_p.size(0);
  const auto loss = dist::global_mean((teacher_p * (teacher_log_p - student_log_p)).sum(), rows);
  const auto entropy = dist::global_mean(-(teacher_p * teacher_log_p).sum(), rows);
  return {loss, student_logits, {{"teacher_entropy", entropy.detach()}}};
}

/// prediction, target [M, W] -> mean squared error of target after a parameter-free layer
/// norm (so the scale of the teacher's features does not set the loss scale).
inline LossOutput feature_regression(const torch::Tensor& prediction, const torch::Tensor& target) {
  auto t = upcast(target.detach());
  t = (t - t.mean(-1, true)) / (t.var(-1, false, true) + 1e-6).sqrt();
  return {dist::global_mean((upcast(prediction) - t).pow(2).sum(), t.numel()), prediction, {}};
}

/// logits [N, V], targets [N] int64 with -100 = ignore -> mean cross-entropy over the rest.
inline LossOutput masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto keep = targets.ne(-100);
  const auto safe = targets.masked_fill(keep.logical_not(), 0);
  const auto per = -torch::log_softmax(upcast(logits), -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1);
  const auto w = keep.to(per.dtype());
  return {dist::global_mean((per * w).sum(), w.sum()), logits, {}};
}

/// logits [N] (match score), labels [N] in {0, 1} -> binary cross-entropy with logits.
inline LossOutput binary_match(const torch::Tensor& logits, const torch::Tensor& labels) {
  const auto x = upcast(logits);
  const auto y = labels.to(x.dtype());
  const auto loss = dist::global_mean((torch::clamp_min(x, 0) - x * y + torch::log1p(torch::exp(-x.abs()))).sum(), x.numel());
  return {loss, logits, {}};
}

}  // namespace commercemm::losses
