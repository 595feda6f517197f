#pragma once
// Row and length surgery on token sequences, for the passes' shared network calls: slicing a
// fused output back per consumer, selecting rows, masking absent rows, stacking two sides.
#include <algorithm>
#include <cstdint>
#include <utility>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/fusion/fusion.hpp>

namespace commercemm::train {

namespace detail {
/// Rows [start, start + n) of a fusion output.
inline FusionOutput slice(const FusionOutput& f, std::int64_t start, std::int64_t n) {
  auto rows = [&](const TokenSequence& s) {
    if (!s.defined()) return s;
    return TokenSequence{s.tokens.narrow(0, start, n), s.valid.defined() ? s.valid.narrow(0, start, n) : s.valid};
  };
  return {rows(f.text), rows(f.image), f.pooled.narrow(0, start, n)};
}

/// The rows of `a`, then those of `b` (same length; undefined if `a` is).
inline TokenSequence concat_rows(const TokenSequence& a, const TokenSequence& b) {
  if (!a.defined()) return a;
  return {torch::cat({a.tokens, b.tokens}), a.valid.defined() ? torch::cat({a.valid, b.valid}) : a.valid};
}

inline TokenSequence select_rows(const TokenSequence& s, const torch::Tensor& rows) {
  return {s.tokens.index_select(0, rows), s.valid.defined() ? s.valid.index_select(0, rows) : s.valid};
}

/// [B, L] validity, with every position of rows where `present` is false marked invalid.
inline TokenSequence restrict_rows(TokenSequence s, const torch::Tensor& present) {
  if (!present.defined() || !s.defined()) return s;
  auto valid = s.valid.defined() ? s.valid
                                 : torch::ones({s.tokens.size(0), s.tokens.size(1)}, s.tokens.options().dtype(torch::kBool));
  s.valid = valid.logical_and(present.to(valid.device(), torch::kBool).unsqueeze(1));
  return s;
}

/// Stacks the rows of two token sequences, padding the shorter one (padding invalid).
inline TokenSequence cat_rows(const TokenSequence& a, const TokenSequence& b) {
  const auto l = std::max(a.tokens.size(1), b.tokens.size(1));
  auto pad = [&](const TokenSequence& s) {
    auto valid = s.valid.defined() ? s.valid
                                   : torch::ones({s.tokens.size(0), s.tokens.size(1)}, s.tokens.options().dtype(torch::kBool));
    const auto extra = l - s.tokens.size(1);
    if (extra == 0) return std::make_pair(s.tokens, valid);
    return std::make_pair(
        torch::cat({s.tokens, torch::zeros({s.tokens.size(0), extra, s.tokens.size(2)}, s.tokens.options())}, 1),
        torch::cat({valid, torch::zeros({valid.size(0), extra}, valid.options())}, 1));
  };
  auto [ta, va] = pad(a);
  auto [tb, vb] = pad(b);
  return {torch::cat({ta, tb}), torch::cat({va, vb})};
}

/// Stacks two batches' text (ids and masks), padding to the longer one.
inline std::pair<torch::Tensor, torch::Tensor> cat_text(const Batch& a, const Batch& b) {
  const auto l = std::max(a.text_ids.size(1), b.text_ids.size(1));
  auto pad = [&](const torch::Tensor& t) {
    return torch::constant_pad_nd(t, {0, l - t.size(1)}, 0);
  };
  return {torch::cat({pad(a.text_ids), pad(b.text_ids)}), torch::cat({pad(a.text_mask), pad(b.text_mask)})};
}

/// Absent modality on one side of pass B: a CLS-only sequence that is entirely invalid.
inline TokenSequence absent(std::int64_t rows, std::int64_t width, const torch::TensorOptions& options) {
  return {torch::zeros({rows, 1, width}, options), torch::zeros({rows, 1}, options.dtype(torch::kBool))};
}
}  // namespace detail

}  // namespace commercemm::train
