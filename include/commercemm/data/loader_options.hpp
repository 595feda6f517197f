#pragma once
// How a loader batches: sizes, shards, workers, augmentation and seeds, and the options a
// run's config implies.
#include <cstdint>
#include <optional>

#include <commercemm/core/config.hpp>
#include <commercemm/data/image.hpp>

namespace commercemm::data {

struct LoaderOptions {
  std::int64_t batch_size = 64;     ///< the global batch (all shards together)
  std::int64_t shard = 0;           ///< which slice of each batch this loader returns
  std::int64_t shards = 1;          ///< slices a batch is cut into (ranks); must divide batch_size
  std::int64_t max_length = 40;     ///< text tokens per item (the model's text.max_length)
  ImageOptions image;               ///< output size and normalisation
  std::optional<Augmentation> augment;  ///< training augmentations; none for evaluation
  std::int64_t workers = 1;         ///< background threads; 0 = build batches in next()
  std::int64_t prefetch = 4;        ///< batches built ahead of the consumer
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;            ///< drop the last, smaller batch of an epoch
  std::int64_t max_skipped = 100;   ///< bad images tolerated per run before it is an error
};

/// Loader options for a run's config: training ones augment and shuffle, evaluation ones
/// neither shuffle nor drop the last, smaller batch.
inline LoaderOptions loader_options(const Config& c, std::int64_t batch, bool training) {
  LoaderOptions o;
  o.batch_size = batch;
  o.max_length = c.model.text.max_length;
  o.image.size = c.model.image.image_size;
  o.image.max_pixels = c.data.max_image_pixels;
  o.workers = c.data.workers;
  o.seed = static_cast<std::uint64_t>(c.train.seed);
  if (training) {
    o.augment = c.data.augment;
  } else {
    o.shuffle = false;
    o.drop_last = false;
  }
  return o;
}

}  // namespace commercemm::data
