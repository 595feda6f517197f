#pragma once
// schedules::ModalityDropout<Base>: another schedule's split, plus whole-modality dropout.
#include <cstdint>

#include <commercemm/schedules/schedule.hpp>

namespace commercemm::schedules {

/// Takes the split from Base and sets drop_text / drop_image from the options at every step;
/// apply_modality_dropout then acts on the pass-B sources.
/// Options read: drop_text, drop_image (each in [0, 1], their sum <= 1; Error on the field
/// otherwise), plus whatever Base reads.
/// Use it so the model also learns single-modality inputs (text-only queries, image-only
/// listings) and does not lean on one modality always being there.
template <Schedule Base>
class ModalityDropout {
 public:
  /// The [schedule] keys it reads: Base's and the two shares.
  static std::vector<std::string> option_keys() {
    auto keys = detail::option_keys_of<Base>();
    keys.insert(keys.end(), {"drop_text", "drop_image"});
    return keys;
  }
  explicit ModalityDropout(const ScheduleOptions& options)
      : base_(options), drop_text_(options.drop_text), drop_image_(options.drop_image) {
    detail::check_drop_shares(drop_text_, drop_image_);
  }

  Draw draw(std::int64_t step) const {
    Draw d = base_.draw(step);
    d.drop_text = drop_text_;
    d.drop_image = drop_image_;
    return d;
  }

 private:
  Base base_;
  double drop_text_;
  double drop_image_;
};

}  // namespace commercemm::schedules
