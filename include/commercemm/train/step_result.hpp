#pragma once
// What a training step reports: per pass, the losses, their logged parts and the pass total
// (averaged over the ranks when distributed), and counters for tests and logs.
#include <cstdint>
#include <map>
#include <string>

#include <commercemm/schedules/schedule.hpp>

namespace commercemm::train {

/// What one pass computed: per-task losses (unweighted) and logged parts, for metrics.
struct PassResult {
  bool ran = false;
  double total = 0.0;                      ///< the weighted sum that was back-propagated
  std::map<std::string, double> losses;    ///< by task name
  std::map<std::string, double> parts;     ///< "task/part" -> value (temperature, accuracy, ...)
  std::int64_t dropped_text = 0;   ///< pass B: sources whose text modality dropout removed
  std::int64_t dropped_image = 0;  ///< pass B: sources whose image modality dropout removed
  std::int64_t droppable = 0;      ///< pass B: sources that had both modalities to lose one of
  /// What was NaN or infinite in this pass ("loss of tasks.itm is nan", "gradient"); empty
  /// when everything was finite. A non-finite pass skips the step's update.
  std::string nonfinite;
};

struct StepResult {
  std::int64_t step = 0;
  schedules::Draw draw;
  PassResult image_text, cross_pair;
  /// Whether the optimizer update was skipped for a non-finite loss or gradient (parameters,
  /// optimizer state, buffers and the EMA teacher untouched); the passes' `nonfinite` say why.
  bool skipped = false;
};

/// Cheap counters for tests and logs.
struct StepCounters {
  std::int64_t backward = 0;            ///< backward passes run
  std::int64_t image_text_passes = 0;   ///< pass A inputs built
  std::int64_t cross_pair_passes = 0;   ///< pass B inputs built
  std::int64_t optimizer_steps = 0;
  std::int64_t skipped_updates = 0;     ///< updates skipped for a non-finite loss or gradient
};

}  // namespace commercemm::train
