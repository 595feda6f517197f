#pragma once
// What an item's embeddings cost at a fusion split when the per-modality sides are reused
// (Model::cache_image / cache_text / embed_multimodal): the budget side of modality
// randomization, which `evaluate --sweep-fusion-split` reports beside the quality.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/fusion/fusion.hpp>

namespace commercemm::eval {

/// Model milliseconds per item, each the fastest of the repeats.
struct EmbeddingCosts {
  double all_three = 0;   ///< image, text and multimodal embeddings from scratch: embed()
  double image_side = 0;  ///< the image encoder, image head and the image's layers alone
  double text_side = 0;   ///< the same for the text
  double join = 0;        ///< the multimodal embedding from two cached sides
  /// An item whose title changed, its photo's side cached: its three embeddings again.
  double title_change() const { return text_side + join; }
  /// An item whose photo changed, its title's side cached.
  double photo_change() const { return image_side + join; }
};

/// Times the embedding of `batches` (each with images and text) at `split`: embed() on each
/// batch, then cache_image, cache_text and embed_multimodal on each, `repeats` times after one
/// untimed warm-up batch. Runs without gradients, under the caller's autocast.
template <class Model>
EmbeddingCosts measure_embedding_costs(Model& model, const std::vector<Batch>& batches, FusionSplit split,
                                       int repeats = 3) {
  std::int64_t items = 0;
  for (const auto& b : batches) {
    if (!b.has_images() || !b.has_text())
      throw Error(Location{"", 0, "batches"}, "embedding costs need batches with images and text");
    items += b.size();
  }
  if (items == 0) throw Error(Location{"", 0, "batches"}, "no items to time");
  torch::NoGradGuard no_grad;
  using Clock = std::chrono::steady_clock;
  const auto ms = [](Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
  };
  model->embed(batches.front(), split);  // first-call set-up is no item's cost

  EmbeddingCosts best;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    EmbeddingCosts pass;
    for (const auto& b : batches) {
      const auto start = Clock::now();
      model->embed(b, split);
      pass.all_three += ms(start, Clock::now());
    }
    for (const auto& b : batches) {
      const auto t0 = Clock::now();
      const auto image = model->cache_image(b.images, split);
      const auto t1 = Clock::now();
      const auto text = model->cache_text(b.text_ids, b.text_mask, split);
      const auto t2 = Clock::now();
      model->embed_multimodal(text, image);
      const auto t3 = Clock::now();
      pass.image_side += ms(t0, t1), pass.text_side += ms(t1, t2), pass.join += ms(t2, t3);
    }
    best = r == 0 ? pass
                  : EmbeddingCosts{std::min(best.all_three, pass.all_three), std::min(best.image_side, pass.image_side),
                                   std::min(best.text_side, pass.text_side), std::min(best.join, pass.join)};
  }
  const auto n = static_cast<double>(items);
  return {best.all_three / n, best.image_side / n, best.text_side / n, best.join / n};
}

}  // namespace commercemm::eval
