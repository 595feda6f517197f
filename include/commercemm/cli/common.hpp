#pragma once
// What every app subcommand shares: --config, --set, --seed, --out, and how the run's config
// is assembled from them (file, or a checkpoint's own config, then overrides).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <commercemm/core/config_io.hpp>
#include <commercemm/dist/environment.hpp>
#include <commercemm/train/checkpoint.hpp>

namespace commercemm::cli {

struct CommonOptions {
  std::string config;                  ///< TOML file; empty = the checkpoint's config (or the defaults)
  std::vector<std::string> overrides;  ///< --set key=value, applied in order
  std::optional<std::int64_t> seed;
  std::string out;
};

/// Adds --config, --set, --seed and --out (with `default_out`) to `cmd`.
inline std::shared_ptr<CommonOptions> add_common_options(CLI::App* cmd, const std::string& default_out) {
  auto o = std::make_shared<CommonOptions>();
  o->out = default_out;
  cmd->add_option("--config", o->config, "TOML config file (see examples/configs)")->check(CLI::ExistingFile);
  cmd->add_option("--set", o->overrides, "Override a config key, e.g. --set train.steps=100 (repeatable)");
  cmd->add_option("--seed", o->seed, "Seed (sets train.seed)");
  cmd->add_option("--out", o->out, "Output directory")->capture_default_str();
  return o;
}

/// The config of a command: --config FILE, else `base` (a checkpoint's), else the defaults;
/// then --set and --seed.
inline Config resolve_config(const CommonOptions& o, const std::optional<Config>& base = std::nullopt) {
  Config config = !o.config.empty() ? load_config(o.config) : base ? *base : Config{};
  apply_overrides(config, o.overrides);
  if (o.seed) {
    config.train.seed = *o.seed;
    validate(config, "--seed");
  }
  return config;
}

/// A checkpoint's model with a new run's settings: the model sizes always come from the
/// checkpoint (they must match its weights); everything else from `settings`.
inline Config with_model_of(Config settings, const train::Checkpoint& checkpoint, const CommonOptions& o) {
  for (const auto& assignment : o.overrides)
    if (assignment.rfind("model.", 0) == 0)
      throw Error(Location{"--set", 0, assignment}, "the model's sizes come from the checkpoint " +
                                                        checkpoint.path().string() + " and cannot change");
  if (!o.config.empty() && to_json(settings.model) != to_json(checkpoint.config().model))
    std::fprintf(stderr, "note: the model's sizes come from the checkpoint, not from %s's [model]\n", o.config.c_str());
  settings.model = checkpoint.config().model;
  validate(settings);
  return settings;
}

/// evaluate, embed and finetune run on rank 0 alone when launched under torchrun: the other
/// ranks say so and exit at once (scoring is seconds; sharding it would buy nothing here).
inline bool idle_rank(const char* command) {
  const auto env = dist::environment();
  if (!env.distributed() || env.rank == 0) return false;
  std::printf("[rank %d] %s runs on rank 0 alone; nothing to do here\n", env.rank, command);
  return true;
}

inline void write_json(const std::filesystem::path& file, const nlohmann::json& j) {
  write_atomically(file, [&](const std::filesystem::path& temporary) {
    std::ofstream out(temporary);
    out << j.dump(2) << '\n';
    if (!out) throw Error(Location{file.string(), 0, ""}, "cannot write");
  });
}

}  // namespace commercemm::cli
