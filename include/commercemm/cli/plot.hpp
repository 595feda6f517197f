#pragma once
// Charts of a training run as PNG files, drawn by gnuplot (Debian: gnuplot-nox) so that
// commercemm needs no plotting library: the data goes to .dat files, a generated script
// draws them, and gnuplot's own error output is passed on when it fails.
#include <filesystem>
#include <vector>

#include <commercemm/core/linkage.hpp>

namespace commercemm::cli {

/// Draws the charts of the run in `run_dir` into `run_dir/plots/` and returns the files written:
///  - losses.png: every task loss ("loss": {task: value}) and total ("total": {name: value},
///    dashed) of metrics.jsonl against "step", log-scale y when all values are positive;
///  - learning_rate.png: "lr" against "step";
///  - fusion_split.png, when fusion_sweep.jsonl exists: recall@1 of every task in "metrics"
///    against "fusion_split", with the costs ("embed_ms_per_item", "title_change_ms_per_item",
///    "multimodal_from_sides_ms_per_item", those present) on a second y axis.
/// Other keys are ignored, and a chart with nothing to draw is not written. A null value (how
/// NaN is logged) leaves a gap. Throws commercemm::Error when metrics.jsonl is missing or
/// empty, a line is malformed (FILE:LINE: FIELD), or gnuplot is missing or fails.
COMMERCEMM_DECL std::vector<std::filesystem::path> plot_run(const std::filesystem::path& run_dir);

}  // namespace commercemm::cli

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/cli/impl/plot.ipp>
#endif
