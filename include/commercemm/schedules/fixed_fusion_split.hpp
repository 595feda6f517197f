#pragma once
// schedules::FixedFusionSplit<s>: the same split at every step.
#include <cstdint>
#include <string>

#include <commercemm/schedules/schedule.hpp>

namespace commercemm::schedules {

/// Always draws FusionSplit{S} and drops nothing.
/// Options read: depth (S must not exceed it; Error on field "depth" otherwise).
/// Use it to train (or fine-tune) one fixed architecture: S = 0 for the deepest fusion,
/// S = depth for a pure two-tower model, or as the Base of ModalityDropout.
template <std::int64_t S>
class FixedFusionSplit {
  static_assert(S >= 0,
                "FixedFusionSplit<s> needs s >= 0: s counts the fusion layers that run each "
                "modality alone.");

 public:
  /// The [schedule] keys it reads: none (the split is in the type).
  static std::vector<std::string> option_keys() { return {}; }
  explicit FixedFusionSplit(const ScheduleOptions& options) {
    detail::check_depth(options.depth);
    if (S > options.depth)
      throw Error(Location{"", 0, "depth"},
                  "FixedFusionSplit<" + std::to_string(S) + "> needs a fusion depth of at least " +
                      std::to_string(S) + ", got " + std::to_string(options.depth));
  }

  Draw draw(std::int64_t /*step*/) const { return Draw{FusionSplit{S}, 0.0, 0.0}; }
};

}  // namespace commercemm::schedules
