#pragma once
// Negative-sampling policies for ITM. A policy provides
//   static torch::Tensor sample(similarity [B, B], products [B] int64 or undefined, at::Generator&)
//     -> [B] int64: for row i, a column j to pair with it as a negative, or -1 when no column
//        can be one (every other item is the same product).
// A column of the same product as the row is never chosen (it would be a false negative).
//
//   negatives::Hard    j drawn in proportion to softmax(similarity / 0.07) (ALBEF): negatives
//                      the model finds hard to tell apart. NaN or all-zero weights fall back
//                      to uniform over the allowed columns.
//   negatives::Random  j uniform over the allowed columns (the ablation).
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace commercemm::negatives {

namespace detail {
/// [B, B] bool: which columns row i may take as its negative.
inline torch::Tensor allowed(std::int64_t b, const torch::Tensor& products) {
  auto ok = torch::ones({b, b}, torch::kBool).logical_and(torch::eye(b, torch::kBool).logical_not());
  if (products.defined()) ok = ok.logical_and(products.unsqueeze(1).ne(products.unsqueeze(0)));
  return ok;
}
inline torch::Tensor draw(torch::Tensor weights, const torch::Tensor& ok, at::Generator& gen) {
  weights = torch::nan_to_num(weights, 0.0, 0.0, 0.0).clamp_min(0).masked_fill(ok.logical_not(), 0.0);
  const auto row_sum = weights.sum(1, true);
  const auto uniform = ok.to(weights.dtype());
  weights = torch::where(row_sum.gt(0), weights, uniform);  // degenerate rows: uniform
  const auto has_any = ok.any(1);
  weights = torch::where(has_any.unsqueeze(1), weights, torch::ones_like(weights));  // placeholder, dropped below
  auto picked = torch::multinomial(weights, 1, false, gen).squeeze(1);
  return torch::where(has_any, picked, torch::full_like(picked, -1));
}
}  // namespace detail

struct Hard {
  static torch::Tensor sample(const torch::Tensor& similarity, const torch::Tensor& products, at::Generator& gen) {
    const auto s = similarity.detach().to(torch::kFloat);
    const auto ok = detail::allowed(s.size(0), products);
    const auto logits = (s / 0.07).masked_fill(ok.logical_not(), -1e9);
    return detail::draw(torch::softmax(logits, 1), ok, gen);
  }
};

struct Random {
  static torch::Tensor sample(const torch::Tensor& similarity, const torch::Tensor& products, at::Generator& gen) {
    const auto ok = detail::allowed(similarity.size(0), products);
    return detail::draw(ok.to(torch::kFloat), ok, gen);
  }
};

}  // namespace commercemm::negatives
