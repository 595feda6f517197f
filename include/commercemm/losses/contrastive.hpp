#pragma once
// InfoNCE over a batch: row i of `queries` should match row i of `keys` against every other
// key. Keys of the same product as the query are not negatives (they are left out of the
// denominator), and rows whose query is missing a modality are left out of the mean.
//
// Gather policies (losses/gather.hpp, dist/all_gather.hpp) say where the keys come from:
// gather::AcrossRanks (the default of the built-in tasks) takes every rank's keys as
// negatives, and the mean runs over the rows of the whole global batch (dist::global_mean),
// so a distributed run computes the single-process loss and gradients.
#include <cstdint>

#include <torch/types.h>

#include <commercemm/dist/all_gather.hpp>
#include <commercemm/dist/communicator.hpp>
#include <commercemm/losses/gather.hpp>
#include <commercemm/losses/loss.hpp>

namespace commercemm::losses {

struct InfoNceOptions {
  torch::Tensor query_products;  ///< [B] int64 product ids of the queries, or undefined
  torch::Tensor key_products;    ///< [B] int64 product ids of the keys, or undefined
  torch::Tensor valid_rows;      ///< [B] bool: which queries take part, or undefined for all
};

/// More negatives after the (gathered) keys, taking no gradient: a KeyMemory's keys [M, D]
/// and their products [M] (-1: an empty slot). A query's own product is left out of them.
struct ExtraNegatives {
  torch::Tensor keys;
  torch::Tensor products;
};

namespace detail {
/// The global mean of per-row losses over the rows that take part (options.valid_rows).
inline torch::Tensor mean_over_rows(const torch::Tensor& per_row, const InfoNceOptions& options) {
  if (!options.valid_rows.defined()) return dist::global_mean(per_row.sum(), per_row.size(0));
  const auto weight = options.valid_rows.to(per_row.dtype());
  return dist::global_mean((per_row * weight).sum(), weight.sum());
}
}  // namespace detail

/// queries [B, D], keys [B, D] (L2-normalised), temperature [] or double -> info_nce's logits
/// [B, B_total (+ M)] (queries against every gathered key, then the extra keys; a key of the
/// query's product other than its positive, and an empty extra slot, at -1e9) without the
/// loss: what a momentum model's side of a distillation needs.
template <gather::GatherPolicy Gather = gather::Local>
torch::Tensor info_nce_logits(const torch::Tensor& queries, const torch::Tensor& keys, const torch::Tensor& temperature,
                              const InfoNceOptions& options = {}, const Gather& gather = {},
                              const ExtraNegatives& extra = {}) {
  const auto b = queries.size(0);
  auto logits = upcast(torch::matmul(queries, gather.all(keys).t())) / temperature;
  if (options.query_products.defined() && options.key_products.defined()) {
    auto same = options.query_products.unsqueeze(1).eq(gather.all(options.key_products).unsqueeze(0));
    const auto targets = torch::arange(b, queries.options().dtype(torch::kLong)) + gather.offset(b);
    same.scatter_(1, targets.unsqueeze(1), false);  // the positive itself stays
    logits = logits.masked_fill(same, -1e9);
  }
  if (extra.keys.defined() && extra.keys.size(0) > 0) {
    TORCH_CHECK(extra.products.defined(), "info_nce: extra negatives need their products");
    auto more = upcast(torch::matmul(queries, extra.keys.detach().to(queries.scalar_type()).t())) / temperature;
    auto excluded = extra.products.lt(0).unsqueeze(0).expand({b, -1});
    if (options.query_products.defined())
      excluded = excluded.logical_or(options.query_products.unsqueeze(1).eq(extra.products.unsqueeze(0)));
    logits = torch::cat({logits, more.masked_fill(excluded, -1e9)}, 1);
  }
  return logits;
}

/// queries [B, D], keys [B, D] (L2-normalised), temperature [] or double
///   -> loss [] and logits (info_nce_logits).
template <gather::GatherPolicy Gather = gather::Local>
LossOutput info_nce(const torch::Tensor& queries, const torch::Tensor& keys,
                    const torch::Tensor& temperature, const InfoNceOptions& options = {},
                    const Gather& gather = {}, const ExtraNegatives& extra = {}) {
  const auto b = queries.size(0);
  auto logits = info_nce_logits(queries, keys, temperature, options, gather, extra);
  const auto targets = torch::arange(b, queries.options().dtype(torch::kLong)) + gather.offset(b);
  auto per_row = -torch::log_softmax(logits, 1).gather(1, targets.unsqueeze(1)).squeeze(1);
  return {detail::mean_over_rows(per_row, options), logits, {}};
}

/// ALBEF's momentum distillation of a one-way InfoNCE: `hard` is info_nce's output and
/// `teacher_logits` the same call's logits on a momentum model's embeddings (the same keys,
/// masks and extra negatives, so the columns line up). The loss becomes
/// (1 - alpha) hard + alpha CE(softmax(teacher), student): the momentum model's similarities
/// soften the one-hot target where a "negative" is as good a match (a product's near twin).
/// Parts: hard and soft, the two terms before mixing.
inline LossOutput distill_info_nce(const LossOutput& hard, const torch::Tensor& teacher_logits, double alpha,
                                   const InfoNceOptions& options = {}) {
  TORCH_CHECK(alpha >= 0 && alpha <= 1, "distill_info_nce: alpha must be in [0, 1]");
  TORCH_CHECK(teacher_logits.sizes() == hard.logits.sizes(), "distill_info_nce: the teacher's logits are ",
              teacher_logits.sizes(), ", the student's ", hard.logits.sizes());
  const auto teacher = torch::softmax(upcast(teacher_logits.detach()), 1);
  const auto per_row = -(teacher * torch::log_softmax(hard.logits, 1)).sum(1);
  const auto soft = detail::mean_over_rows(per_row, options);
  return {hard.loss * (1.0 - alpha) + soft * alpha, hard.logits,
          {{"hard", hard.loss.detach()}, {"soft", soft.detach()}}};
}

/// A momentum model's embeddings of symmetric_info_nce's rows (no gradient), for ALBEF's
/// momentum distillation with weight alpha (0, the default: none).
struct MomentumTeacher {
  torch::Tensor a, b;
  double alpha = 0;
};

/// Symmetric InfoNCE (CLIP/ITC): the mean of a->b and b->a. Every row takes part in both
/// directions (options.valid_rows must be undefined: a missing query is also a missing key).
/// With a teacher, each direction is distilled (distill_info_nce); parts then add the mean
/// hard and soft terms.
template <gather::GatherPolicy Gather = gather::Local>
LossOutput symmetric_info_nce(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& temperature,
                              const InfoNceOptions& options = {}, const Gather& gather = {},
                              const MomentumTeacher& teacher = {}) {
  TORCH_CHECK(!options.valid_rows.defined(), "symmetric_info_nce: valid_rows is for one-way InfoNCE");
  auto ab = info_nce(a, b, temperature, options, gather);
  InfoNceOptions reversed{options.key_products, options.query_products, {}};
  auto ba = info_nce(b, a, temperature, reversed, gather);
  const bool distilled = teacher.alpha > 0;
  if (distilled) {
    TORCH_CHECK(teacher.a.defined() && teacher.b.defined(), "symmetric_info_nce: distillation needs the teacher's embeddings");
    torch::Tensor teacher_ab, teacher_ba;
    {
      torch::NoGradGuard no_grad;
      teacher_ab = info_nce_logits(teacher.a, teacher.b, temperature, options, gather);
      teacher_ba = info_nce_logits(teacher.b, teacher.a, temperature, reversed, gather);
    }
    ab = distill_info_nce(ab, teacher_ab, teacher.alpha, options);
    ba = distill_info_nce(ba, teacher_ba, teacher.alpha, reversed);
  }
  LossOutput out{(ab.loss + ba.loss) * 0.5, ab.logits, {{"a_to_b", ab.loss.detach()}, {"b_to_a", ba.loss.detach()}}};
  if (distilled)
    for (const auto* part : {"hard", "soft"}) out.parts[part] = (ab.parts.at(part) + ba.parts.at(part)) * 0.5;
  return out;
}

}  // namespace commercemm::losses
