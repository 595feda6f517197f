#pragma once
// The Schedule concept: what a training loop needs to randomize modalities at every step.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/core/random.hpp>
#include <commercemm/fusion/fusion.hpp>

namespace commercemm::schedules {

/// Everything any schedule reads; each policy documents the fields it uses and ignores the
/// rest, so one options struct (one config section) serves every policy.
struct ScheduleOptions {
  std::int64_t depth = 0;        ///< fusion depth: splits range over 0..depth
  std::uint64_t seed = 0;        ///< with the step, the only source of randomness
  std::int64_t total_steps = 0;  ///< length of training, for time-varying schedules
  /// RandomFusionSplit: weight of split s at index s (depth + 1 entries); empty = uniform.
  std::vector<double> split_weights;
  double drop_text = 0.0;   ///< ModalityDropout: share of pass-B sources that lose their text
  double drop_image = 0.0;  ///< ModalityDropout: share of pass-B sources that lose their image
  double two_tower_start = 0.0;  ///< LinearSplitRamp: P(split == depth) at step 0
  double two_tower_end = 1.0;    ///< LinearSplitRamp: P(split == depth) from total_steps on
};

/// The fields a [schedule] table may set (the others come from [model] and [train]).
template <class F> void visit_fields(ScheduleOptions& o, F&& f) {
  f("split_weights", o.split_weights); f("drop_text", o.drop_text); f("drop_image", o.drop_image);
  f("two_tower_start", o.two_tower_start); f("two_tower_end", o.two_tower_end);
}

/// One step's decision.
struct Draw {
  FusionSplit split;
  double drop_text = 0.0;   ///< share of pass-B sources whose text is dropped this step
  double drop_image = 0.0;  ///< share of pass-B sources whose image is dropped this step
};

/// A schedule is a copyable type, constructible from ScheduleOptions (it validates them there
/// and throws commercemm::Error naming the field at fault), with `Draw draw(step) const`, and
/// `static std::vector<std::string> option_keys()` naming the ScheduleOptions fields it reads
/// (a [schedule] key outside them is an error; a schedule without the member reads none).
/// A draw is a pure function of (options, step): randomness comes from hashing (seed, step),
/// never from state advanced by earlier calls, so a resumed run draws exactly what the
/// uninterrupted run would have.
template <class S>
concept Schedule =
    std::copy_constructible<S> && std::constructible_from<S, const ScheduleOptions&> &&
    requires(const S& s, std::int64_t step) {
      { s.draw(step) } -> std::same_as<Draw>;
    };

namespace detail {
template <class S> std::vector<std::string> option_keys_of() {
  if constexpr (requires { S::option_keys(); }) return S::option_keys();
  else return {};
}

// The streams and the hash live in core/random.hpp; these names keep the schedules short.
inline constexpr random::Stream kSplitStream = random::Stream::fusion_split;
inline constexpr random::Stream kRampStream = random::Stream::split_ramp;
inline constexpr random::Stream kDropoutStream = random::Stream::modality_dropout;
using random::mix;
using random::uniform;

inline void check_depth(std::int64_t depth) {
  if (depth < 0)
    throw Error(Location{"", 0, "depth"},
                "fusion depth must be >= 0, got " + std::to_string(depth));
}

inline void check_probability(double p, const char* field) {
  if (!std::isfinite(p) || p < 0.0 || p > 1.0)
    throw Error(Location{"", 0, field},
                "must be a probability in [0, 1], got " + std::to_string(p));
}

inline void check_drop_shares(double drop_text, double drop_image) {
  check_probability(drop_text, "drop_text");
  check_probability(drop_image, "drop_image");
  // A row loses at most one modality, so the two shares partition (part of) the rows.
  if (drop_text + drop_image > 1.0)
    throw Error(Location{"", 0, "drop_image"},
                "drop_text + drop_image must be <= 1 (a row never loses both), got " +
                    std::to_string(drop_text + drop_image));
}

// A modality's presence as a private CPU bool copy (Batch::text_rows / image_rows).
inline torch::Tensor presence(const Batch& batch, bool text) {
  const auto& mask = text ? batch.text_present : batch.image_present;
  if (mask.defined() && (mask.dim() != 1 || mask.size(0) != batch.size()))
    throw Error(Location{"", 0, text ? "text_present" : "image_present"},
                "must have shape [B] with B = " + std::to_string(batch.size()));
  return (text ? batch.text_rows() : batch.image_rows()).to(torch::kCPU).contiguous().clone();
}

}  // namespace detail

/// What apply_modality_dropout did: rows that lost their text or their image.
struct Dropped {
  std::int64_t text = 0, image = 0;
  std::int64_t eligible = 0;  ///< rows that had both modalities (only those lose one)
};

/// Drops text from a share `draw.drop_text` and images from a share `draw.drop_image` of the
/// rows of `source` that have both modalities, by clearing `text_present` / `image_present`
/// (the content stays; consumers read the masks). A row that already lacks a modality keeps
/// the other, and no row loses both. Row i's fate depends only on (seed, step, the row's index
/// in the global batch: source.sample_index[i], or i when that is undefined), so a batch is
/// dropped identically on a rerun and on any number of processes. Leaves the batch untouched
/// when nothing is dropped.
inline Dropped apply_modality_dropout(Batch& source, const Draw& draw, std::uint64_t seed,
                                      std::int64_t step) {
  detail::check_drop_shares(draw.drop_text, draw.drop_image);
  Dropped dropped;
  if (draw.drop_text == 0.0 && draw.drop_image == 0.0) return dropped;
  if (!source.has_text() || !source.has_images()) return dropped;  // no row has both modalities
  const std::int64_t rows = source.size();
  auto text = detail::presence(source, true);
  auto image = detail::presence(source, false);
  auto text_a = text.accessor<bool, 1>();
  auto image_a = image.accessor<bool, 1>();
  const auto index = sample_indices(source);
  bool changed = false;
  for (std::int64_t i = 0; i < rows; ++i) {
    if (!text_a[i] || !image_a[i]) continue;
    ++dropped.eligible;
    // One uniform per row decides both, so the two drops are disjoint by construction.
    const double u =
        detail::uniform(seed, step, detail::kDropoutStream, static_cast<std::uint64_t>(index[static_cast<std::size_t>(i)]));
    if (u < draw.drop_text) {
      text_a[i] = false;
      changed = true;
      ++dropped.text;
    } else if (u < draw.drop_text + draw.drop_image) {
      image_a[i] = false;
      changed = true;
      ++dropped.image;
    }
  }
  if (!changed) return dropped;
  source.text_present = text.to(source.text_ids.device());
  source.image_present = image.to(source.images.device());
  return dropped;
}

/// {"split": s, "drop_text": x, "drop_image": y}, for per-step logs.
inline nlohmann::json to_json(const Draw& draw) {
  return nlohmann::json{{"split", draw.split.layers_alone},
                        {"drop_text", draw.drop_text},
                        {"drop_image", draw.drop_image}};
}

}  // namespace commercemm::schedules
