#pragma once
// Helpers shared by the tasks tests: the tiny model's config and random batches for it.
#include <cstdint>
#include <string>

#include <torch/types.h>

#include <commercemm/components.hpp>

namespace tasks_test {

/// The `tiny` preset over a 200-word vocabulary, 10 steps.
inline commercemm::Config tiny_config() {
  commercemm::Config c;
  c.model = commercemm::presets::model("tiny");
  c.model.text.vocab_size = 200;
  c.train.steps = 10;
  return c;
}

inline const commercemm::data::SpecialTokens kSpecial{0, 1, 2};

/// `b` random items for tiny_config(): 32 px images, 8 tokens, each its own product, ids "item<i>".
inline commercemm::Batch random_batch(std::int64_t b, std::uint64_t seed) {
  torch::manual_seed(seed);
  commercemm::Batch batch;
  batch.images = torch::randn({b, 3, 32, 32});
  batch.text_ids = torch::randint(3, 200, {b, 8}, torch::kLong);
  batch.text_mask = torch::ones({b, 8}, torch::kLong);
  batch.product_ids = torch::arange(b, torch::kLong);
  for (std::int64_t i = 0; i < b; ++i) batch.item_ids.push_back("item" + std::to_string(i));
  return batch;
}

}  // namespace tasks_test
