#pragma once
// What a per-sample random draw is keyed by: the run's seed, the step and the sample's index
// in the global batch (core/random.hpp says why).
#include <cstdint>
#include <vector>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/random.hpp>

namespace commercemm {

struct SampleKeys {
  std::uint64_t seed = 0;
  std::int64_t step = 0;
  std::vector<std::int64_t> index;  ///< [B] each local row's index in the global batch

  /// The keys of `batch`'s rows at `step` (Batch::sample_index, or 0..B-1).
  static SampleKeys of(const Batch& batch, std::uint64_t seed, std::int64_t step) {
    return {seed, step, sample_indices(batch)};
  }
  std::int64_t rows() const { return static_cast<std::int64_t>(index.size()); }
  /// Row `row`'s uniform in [0, 1) of `stream`, `sub` telling apart draws of one row.
  double uniform(random::Stream stream, std::int64_t row, std::uint64_t sub = 0) const {
    return random::uniform(seed, step, stream, static_cast<std::uint64_t>(index[static_cast<std::size_t>(row)]), sub);
  }
  /// One uniform per row.
  std::vector<double> uniforms(random::Stream stream) const {
    std::vector<double> out;
    for (std::int64_t r = 0; r < rows(); ++r) out.push_back(uniform(stream, r));
    return out;
  }
};

}  // namespace commercemm
