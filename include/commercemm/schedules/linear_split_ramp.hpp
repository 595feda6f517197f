#pragma once
// schedules::LinearSplitRamp: a split distribution that moves from fusion toward two towers.
#include <algorithm>
#include <cstdint>
#include <string>

#include <commercemm/schedules/schedule.hpp>

namespace commercemm::schedules {

/// At step t the split is depth (two towers) with probability
///   p(t) = two_tower_start + (two_tower_end - two_tower_start) * min(t / total_steps, 1),
/// and otherwise uniform over the fused splits 0..depth-1. Drops nothing. With depth 0 the
/// only split is 0.
/// Options read: depth, seed, total_steps (> 0; Error on "total_steps"), two_tower_start and
/// two_tower_end (probabilities; Error on the field).
/// Use it as a curriculum: learn cross-modal fusion first, then shift the budget toward the
/// cheap, cacheable two-tower split that serving will use (or the reverse, with start > end).
class LinearSplitRamp {
 public:
  /// The [schedule] keys it reads.
  static std::vector<std::string> option_keys() { return {"two_tower_start", "two_tower_end"}; }
  explicit LinearSplitRamp(const ScheduleOptions& options)
      : depth_(options.depth),
        seed_(options.seed),
        total_steps_(options.total_steps),
        start_(options.two_tower_start),
        end_(options.two_tower_end) {
    detail::check_depth(depth_);
    if (total_steps_ <= 0)
      throw Error(Location{"", 0, "total_steps"},
                  "LinearSplitRamp needs total_steps > 0, got " + std::to_string(total_steps_));
    detail::check_probability(start_, "two_tower_start");
    detail::check_probability(end_, "two_tower_end");
  }

  /// The probability of the two-tower split at `step`.
  double two_tower_probability(std::int64_t step) const {
    const double t =
        std::clamp(static_cast<double>(step) / static_cast<double>(total_steps_), 0.0, 1.0);
    return start_ + (end_ - start_) * t;
  }

  Draw draw(std::int64_t step) const {
    if (depth_ == 0) return Draw{FusionSplit{0}, 0.0, 0.0};
    if (detail::uniform(seed_, step, detail::kRampStream) < two_tower_probability(step))
      return Draw{FusionSplit{depth_}, 0.0, 0.0};
    const double u = detail::uniform(seed_, step, detail::kSplitStream);
    const auto s = std::min(static_cast<std::int64_t>(u * static_cast<double>(depth_)), depth_ - 1);
    return Draw{FusionSplit{s}, 0.0, 0.0};
  }

 private:
  std::int64_t depth_;
  std::uint64_t seed_;
  std::int64_t total_steps_;
  double start_;
  double end_;
};

}  // namespace commercemm::schedules
