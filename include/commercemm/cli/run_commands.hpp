#pragma once
// The subcommands of cmm::cli::main<Recipe> that read a run's files and no model: `plot` and
// `compare`. Definitions: cli/impl/run_commands.ipp (see core/linkage.hpp).
#include <commercemm/core/linkage.hpp>

namespace CLI {
class App;
}

namespace commercemm::cli {

/// `plot --run DIR`: the run's charts as PNG (plot_run).
COMMERCEMM_DECL void add_plot_command(CLI::App& app);
/// `compare RUN...`: the metrics.json of several evaluate runs side by side.
COMMERCEMM_DECL void add_compare_command(CLI::App& app);

}  // namespace commercemm::cli

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/cli/impl/run_commands.ipp>
#endif
