#pragma once
// Gradient accumulation's micro-batches (train.accumulate): a batch cut into n parts whose
// rows keep their global sample indices, so every per-sample draw is the whole batch's.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/error.hpp>

namespace commercemm::train {

/// Rows [m B / n, (m + 1) B / n) of `batch`, with their global sample indices.
inline Batch micro_batch(const Batch& batch, std::int64_t m, std::int64_t n) {
  if (n == 1) return batch;
  const auto b = batch.size();
  if (b < n)
    throw Error(Location{"", 0, "train.accumulate"}, "a batch of " + std::to_string(b) + " rows cannot be cut into " +
                                                         std::to_string(n) + " micro-batches");
  const auto first = b * m / n, rows = b * (m + 1) / n - first;
  auto slice = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, first, rows) : t; };
  Batch out;
  out.text_ids = slice(batch.text_ids), out.text_mask = slice(batch.text_mask), out.images = slice(batch.images);
  out.product_ids = slice(batch.product_ids);
  out.text_present = slice(batch.text_present), out.image_present = slice(batch.image_present);
  out.sample_index = batch.sample_index.defined() ? slice(batch.sample_index) : torch::arange(first, first + rows, torch::kLong);
  auto part = [&](const std::vector<std::string>& v) {
    return v.empty() ? v : std::vector<std::string>(v.begin() + first, v.begin() + first + rows);
  };
  out.item_ids = part(batch.item_ids), out.kinds = part(batch.kinds);
  return out;
}

}  // namespace commercemm::train
