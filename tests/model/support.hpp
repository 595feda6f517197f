#pragma once
// What the model tests share: a random batch of a config's sizes.
#include <cstdint>

#include <torch/types.h>

#include <commercemm/components.hpp>

namespace model_test {

/// `b` random images and titles of `l` tokens; with `padded`, every other row's second half
/// is padding (text_mask 0).
inline commercemm::Batch make_batch(const commercemm::ModelConfig& c, std::int64_t b, std::int64_t l, std::uint64_t seed,
                                    bool padded = false) {
  torch::manual_seed(seed);
  commercemm::Batch batch;
  batch.images = torch::randn({b, 3, c.image.image_size, c.image.image_size});
  batch.text_ids = torch::randint(1, c.text.vocab_size, {b, l}, torch::kLong);
  batch.text_mask = torch::ones({b, l}, torch::kLong);
  if (padded)
    for (std::int64_t r = 1; r < b; r += 2) batch.text_mask[r].narrow(0, l / 2, l - l / 2).zero_();
  return batch;
}

inline commercemm::ModelConfig tiny() { return commercemm::presets::model("tiny"); }

}  // namespace model_test
