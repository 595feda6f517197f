#pragma once
// Negative-sampling policies for ITM. A policy provides
//   static torch::Tensor sample(similarity [R, C], allowed [R, C] bool, uniforms [R] in [0, 1),
//                               double temperature)
//     -> [R] int64: for row r, a column c to pair with it as a negative, or -1 when no column
//        may be one (every other item is the same product).
// Columns are the whole global batch (every rank's items), rows this rank's; `allowed` (see
// negatives::allowed) excludes the row's own item and every item of the same product (a
// false negative). Row r's draw is the inverse CDF at uniforms[r], a per-sample number keyed
// by (seed, step, global index) (core/sample_keys.hpp), so a distributed run and a single
// process pick the same negatives.
//
//   negatives::Hard    c drawn in proportion to softmax(similarity / temperature) (ALBEF's
//                      0.07 by default, [tasks.itm] negative_temperature): negatives
//                      the model finds hard to tell apart. NaN or all-zero weights fall back
//                      to uniform over the allowed columns.
//   negatives::Random  c uniform over the allowed columns (the ablation).
// A policy that ignores the temperature says so (static constexpr bool tempered = false): ITM
// then has no negative_temperature option, so setting it is an error rather than a no-op.
#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace commercemm::negatives {

/// [R, C] bool: which columns row r may take as its negative. own_column [R] int64: the row's
/// own item among the columns; row_products [R] and column_products [C] int64 (undefined:
/// every item its own product).
inline torch::Tensor allowed(const torch::Tensor& own_column, std::int64_t columns, const torch::Tensor& row_products = {},
                             const torch::Tensor& column_products = {}) {
  const auto cpu = torch::TensorOptions().dtype(torch::kLong);
  const auto own = own_column.to(torch::kCPU, torch::kLong);
  auto ok = torch::arange(columns, cpu).unsqueeze(0).ne(own.unsqueeze(1));
  if (row_products.defined() && column_products.defined())
    ok = ok.logical_and(row_products.to(torch::kCPU).unsqueeze(1).ne(column_products.to(torch::kCPU).unsqueeze(0)));
  return ok;
}

namespace detail {
/// Inverse-CDF draw per row from non-negative weights [R, C] restricted to `ok`.
inline torch::Tensor draw(torch::Tensor weights, const torch::Tensor& ok, const std::vector<double>& uniforms) {
  weights = torch::nan_to_num(weights.to(torch::kCPU, torch::kDouble), 0.0, 0.0, 0.0).clamp_min(0);
  weights = weights.masked_fill(ok.logical_not(), 0.0).contiguous();
  const auto okd = ok.to(torch::kDouble).contiguous();
  const auto rows = weights.size(0), cols = weights.size(1);
  TORCH_CHECK(static_cast<std::int64_t>(uniforms.size()) == rows, "negatives: one uniform per row");
  auto picked = torch::full({rows}, -1, torch::kLong);
  auto w = weights.accessor<double, 2>();
  auto o = okd.accessor<double, 2>();
  auto out = picked.accessor<std::int64_t, 1>();
  for (std::int64_t r = 0; r < rows; ++r) {
    double total = 0.0, allowed_count = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) total += w[r][c], allowed_count += o[r][c];
    if (allowed_count == 0.0) continue;  // no column may be a negative
    const bool uniform = !(total > 0.0);  // degenerate weights: uniform over the allowed
    const double target = uniforms[static_cast<std::size_t>(r)] * (uniform ? allowed_count : total);
    double cumulative = 0.0;
    std::int64_t last = -1;
    for (std::int64_t c = 0; c < cols; ++c) {
      const double weight = uniform ? o[r][c] : w[r][c];
      if (weight <= 0.0) continue;
      last = c;
      cumulative += weight;
      if (target < cumulative) break;
    }
    out[r] = last;  // rounding can leave target at the total: the last weighted column
  }
  return picked;
}
}  // namespace detail

struct Hard {
  static torch::Tensor sample(const torch::Tensor& similarity, const torch::Tensor& allowed,
                              const std::vector<double>& uniforms, double temperature = 0.07) {
    const auto s = similarity.detach().to(torch::kCPU, torch::kFloat);
    const auto logits = (s / temperature).masked_fill(allowed.logical_not(), -1e9);
    return detail::draw(torch::softmax(logits, 1), allowed, uniforms);
  }
};

struct Random {
  static constexpr bool tempered = false;
  static torch::Tensor sample(const torch::Tensor& /*similarity*/, const torch::Tensor& allowed,
                              const std::vector<double>& uniforms, double /*temperature*/ = 0.07) {
    return detail::draw(allowed.to(torch::kDouble), allowed, uniforms);
  }
};

/// Whether policy N reads the temperature it is given (true unless it declares otherwise).
template <class N>
inline constexpr bool tempered = [] {
  if constexpr (requires { N::tempered; }) return static_cast<bool>(N::tempered);
  else return true;
}();

}  // namespace commercemm::negatives
