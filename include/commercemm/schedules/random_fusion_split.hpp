#pragma once
// schedules::RandomFusionSplit: a split drawn afresh at every step from a fixed distribution.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <commercemm/schedules/schedule.hpp>

namespace commercemm::schedules {

/// Draws the split from a fixed distribution over 0..depth; drops nothing.
/// Options read: depth, seed, split_weights (depth + 1 non-negative weights, not all zero,
/// normalised here; empty = uniform). Bad weights throw Error on field "split_weights".
/// Use it for the paper's modality randomization: one model trained this way serves every
/// split after training. Weight the end points to favour the deep-fusion or two-tower uses.
class RandomFusionSplit {
 public:
  /// The [schedule] keys it reads.
  static std::vector<std::string> option_keys() { return {"split_weights"}; }
  explicit RandomFusionSplit(const ScheduleOptions& options) : seed_(options.seed) {
    detail::check_depth(options.depth);
    const auto n = static_cast<std::size_t>(options.depth + 1);
    std::vector<double> weights = options.split_weights;
    if (weights.empty()) weights.assign(n, 1.0);
    if (weights.size() != n)
      throw Error(Location{"", 0, "split_weights"},
                  "needs depth + 1 = " + std::to_string(n) + " weights (splits 0.." +
                      std::to_string(options.depth) + "), got " + std::to_string(weights.size()));
    double total = 0.0;
    for (std::size_t s = 0; s < n; ++s) {
      if (!std::isfinite(weights[s]) || weights[s] < 0.0)
        throw Error(Location{"", 0, "split_weights"}, "weight of split " + std::to_string(s) +
                                                          " must be finite and >= 0, got " +
                                                          std::to_string(weights[s]));
      total += weights[s];
    }
    if (total <= 0.0) throw Error(Location{"", 0, "split_weights"}, "weights must not all be zero");
    cumulative_.reserve(n);
    double running = 0.0;
    for (double w : weights) cumulative_.push_back(running += w / total);
    // Rounding may leave the sum just under 1: pin it from the last weighted split on, so
    // every u in [0, 1) lands on a split of positive weight.
    for (std::size_t s = n; s-- > 0;) {
      cumulative_[s] = 1.0;
      if (weights[s] > 0.0) break;
    }
  }

  Draw draw(std::int64_t step) const {
    const double u = detail::uniform(seed_, step, detail::kSplitStream);
    std::size_t s = 0;
    while (u >= cumulative_[s]) ++s;  // stops: cumulative_ reaches exactly 1 > u
    return Draw{FusionSplit{static_cast<std::int64_t>(s)}, 0.0, 0.0};
  }

 private:
  std::uint64_t seed_;
  std::vector<double> cumulative_;  // P(split <= s), ending at exactly 1
};

}  // namespace commercemm::schedules
