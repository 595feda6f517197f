#pragma once
// The masked views of pass A: BERT's token masking for MLM and random patch masking for MIM.
// Every choice is a per-sample draw keyed by (seed, step, global row, position)
// (core/sample_keys.hpp): row r of a batch is masked the same whether it arrives alone, in a
// shard on one of several ranks, or after a resume, and whatever the batch's padded length.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/sample_keys.hpp>

namespace commercemm::tasks {

struct TokenMasking {
  double probability = 0.15;  ///< share of real tokens chosen
  double use_mask = 0.8;      ///< of those: replaced by [MASK]
  double use_random = 0.1;    ///< of those: replaced by a random id (the rest stay as they are)
};

/// ids, mask [B, L] -> {masked ids, labels}: labels hold the original id at chosen positions
/// and -100 elsewhere (padding is never chosen). Random replacements are drawn from
/// [first_random, random_end), the regular tokens, so no special id is written.
inline std::pair<torch::Tensor, torch::Tensor> mask_tokens(const torch::Tensor& ids, const torch::Tensor& mask,
                                                           std::int64_t mask_token, std::int64_t random_end,
                                                           const SampleKeys& keys, const TokenMasking& options = {},
                                                           std::int64_t first_random = 0) {
  using random::Stream;
  const auto rows = ids.size(0), length = ids.size(1);
  TORCH_CHECK(keys.rows() == rows, "mask_tokens: one sample key per row");
  auto out = ids.to(torch::kCPU, torch::kLong).contiguous().clone();
  const auto real = mask.to(torch::kCPU, torch::kBool).contiguous();
  auto labels = torch::full({rows, length}, -100, torch::kLong);
  auto o = out.accessor<std::int64_t, 2>();
  auto l = labels.accessor<std::int64_t, 2>();
  auto m = real.accessor<bool, 2>();
  const auto span = static_cast<double>(random_end - first_random);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t p = 0; p < length; ++p) {
      const auto position = static_cast<std::uint64_t>(p) + 1;  // sub 0 is the row's own draw
      if (!m[r][p] || keys.uniform(Stream::mlm_choose, r, position) >= options.probability) continue;
      l[r][p] = o[r][p];
      const double how = keys.uniform(Stream::mlm_replace, r, position);
      if (how < options.use_mask) {
        o[r][p] = mask_token;
      } else if (how < options.use_mask + options.use_random) {
        const auto pick = static_cast<std::int64_t>(keys.uniform(Stream::mlm_random_id, r, position) * span);
        o[r][p] = first_random + std::min(pick, random_end - first_random - 1);
      }
    }
  return {out.to(ids.device()), labels.to(ids.device())};
}

/// [B, N] bool with round(ratio * N) masked patches per row, chosen uniformly (on the CPU).
inline torch::Tensor mask_patches(std::int64_t patches, double ratio, const SampleKeys& keys) {
  const auto k = static_cast<std::int64_t>(ratio * static_cast<double>(patches) + 0.5);
  auto masked = torch::zeros({keys.rows(), patches}, torch::kBool);
  auto a = masked.accessor<bool, 2>();
  std::vector<std::pair<std::uint64_t, std::int64_t>> order(static_cast<std::size_t>(patches));
  for (std::int64_t r = 0; r < keys.rows(); ++r) {
    for (std::int64_t p = 0; p < patches; ++p)
      order[static_cast<std::size_t>(p)] = {random::bits(keys.seed, keys.step, random::Stream::mim_patches,
                                                         static_cast<std::uint64_t>(keys.index[static_cast<std::size_t>(r)]),
                                                         static_cast<std::uint64_t>(p) + 1),
                                            p};
    std::sort(order.begin(), order.end());
    for (std::int64_t j = 0; j < k; ++j) a[r][order[static_cast<std::size_t>(j)].second] = true;
  }
  return masked;
}

}  // namespace commercemm::tasks
