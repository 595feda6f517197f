#pragma once
// The masked views of pass A: BERT's token masking for MLM and random patch masking for MIM.
#include <cstdint>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

namespace commercemm::tasks {

/// A CPU generator seeded from a 64-bit seed, for sampling that must repeat exactly.
inline at::Generator make_generator(std::uint64_t seed) { return at::detail::createCPUGenerator(seed); }

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
                                                           at::Generator& gen, const TokenMasking& options = {},
                                                           std::int64_t first_random = 0) {
  const auto real = mask.to(torch::kBool);
  const auto draw = torch::rand(ids.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat));
  const auto chosen = draw.lt(options.probability).logical_and(real);
  const auto labels = torch::where(chosen, ids, torch::full_like(ids, -100));
  const auto how = torch::rand(ids.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat));
  const auto to_mask = chosen.logical_and(how.lt(options.use_mask));
  const auto to_random = chosen.logical_and(how.ge(options.use_mask)).logical_and(how.lt(options.use_mask + options.use_random));
  const auto random_ids = torch::randint(first_random, random_end, ids.sizes(), gen, torch::TensorOptions().dtype(torch::kLong));
  auto out = torch::where(to_mask, torch::full_like(ids, mask_token), ids);
  out = torch::where(to_random, random_ids, out);
  return {out, labels};
}

/// [B, N] bool with round(ratio * N) masked patches per row, chosen uniformly.
inline torch::Tensor mask_patches(std::int64_t batch, std::int64_t patches, double ratio, at::Generator& gen) {
  const auto k = static_cast<std::int64_t>(ratio * static_cast<double>(patches) + 0.5);
  const auto order = std::get<1>(torch::rand({batch, patches}, gen).sort(1));
  const auto ranks = std::get<1>(order.sort(1));  // rank of each patch in a random order
  return ranks.lt(k);
}

}  // namespace commercemm::tasks
