#pragma once
// Definitions of cli/run_commands.hpp (see core/linkage.hpp).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <commercemm/cli/plot.hpp>
#include <commercemm/cli/run_commands.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/eval/downstream_tasks.hpp>

namespace commercemm::cli {

COMMERCEMM_DECL void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "Draw a run's metrics.jsonl (and fusion_sweep.jsonl) as PNG charts with gnuplot");
  auto run = std::make_shared<std::string>();
  cmd->add_option("--run", *run, "Run directory holding metrics.jsonl")->required()->check(CLI::ExistingDirectory);
  cmd->callback([run] {
    for (const auto& file : plot_run(*run)) std::printf("wrote %s\n", file.c_str());
  });
}

COMMERCEMM_DECL void add_compare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("compare", "Print the metrics.json of several evaluate runs side by side");
  auto runs = std::make_shared<std::vector<std::string>>();
  cmd->add_option("runs", *runs, "Directories holding metrics.json (or the files)")->required();
  cmd->callback([runs] {
    std::vector<std::pair<std::string, nlohmann::json>> rows;
    for (const auto& run : *runs) {
      const std::filesystem::path file = std::filesystem::is_directory(run) ? std::filesystem::path(run) / "metrics.json" : std::filesystem::path(run);
      std::ifstream in(file);
      if (!in) throw Error(Location{file.string(), 0, ""}, "cannot open");
      const auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_discarded() || !j.is_object()) throw Error(Location{file.string(), 0, ""}, "not a metrics.json object");
      rows.emplace_back(std::filesystem::is_directory(run) ? std::filesystem::path(run).filename().string() : run, j);
    }
    // The built-in tasks, then any <kind>_to_product a run's dataset added.
    auto columns = eval::downstream_tasks();
    for (const auto& [name, j] : rows)
      for (const auto& [key, value] : j.items()) {
        const bool known = std::any_of(columns.begin(), columns.end(), [&](const auto& t) { return t.name == key; });
        if (!known && key.size() > 11 && key.substr(key.size() - 11) == "_to_product")
          columns.push_back({key, eval::TaskKind::retrieval, Modality::multimodal, Modality::multimodal, std::nullopt, ""});
      }
    std::printf("%-22s", "run");
    for (const auto& t : columns) std::printf(" %13.13s", t.name.c_str());
    std::printf("\n");
    for (const auto& [name, j] : rows) {
      std::printf("%-22s", name.c_str());
      for (const auto& t : columns) {
        if (!j.contains(t.name)) {
          std::printf(" %13s", "-");
          continue;
        }
        const char* key = t.kind == eval::TaskKind::retrieval ? "recall@1" : "accuracy";
        std::printf(" %13.4f", j[t.name].value(key, 0.0));
      }
      std::printf("\n");
    }
    std::printf("(Recall@1 for retrieval, accuracy for categorization)\n");
  });
}

}  // namespace commercemm::cli
