#pragma once
// What every app subcommand shares: --config, --set, --seed, --out, and how the run's config
// is assembled from them (file, or a checkpoint's own config, then overrides).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

/// The keys that choose the tokenizer, which a checkpoint carries.
inline constexpr std::string_view tokenizer_keys[] = {"data.tokenizer", "data.vocab", "data.merges", "data.ngram"};

/// Refuses --set keys that a checkpoint fixes: the model's sizes (they must match its
/// weights) and, with `tokenizer` (a resumed run keeps its vocabulary), how text is tokenized.
inline void refuse_fixed_overrides(const CommonOptions& o, const train::Checkpoint& checkpoint, bool tokenizer) {
  for (const auto& assignment : o.overrides) {
    const auto key = assignment.substr(0, assignment.find('='));
    if (key.rfind("model.", 0) == 0)
      throw Error(Location{"--set", 0, assignment}, "the model's sizes come from the checkpoint " +
                                                        checkpoint.path().string() + " and cannot change");
    if (tokenizer && std::find(std::begin(tokenizer_keys), std::end(tokenizer_keys), key) != std::end(tokenizer_keys))
      throw Error(Location{"--set", 0, assignment}, "the tokenizer comes from the checkpoint " +
                                                        checkpoint.path().string() + " and cannot change");
  }
}

/// Scoring and embedding read a checkpoint's weights and tokenizer with the [eval] and data
/// loading keys; a --set of anything else (train.lr, tasks.*, data.augment) would do nothing,
/// so it is an error. `train_keys`: the train.* keys the command does read.
inline void refuse_training_overrides(const CommonOptions& o, const char* command,
                                      std::initializer_list<std::string_view> train_keys) {
  static constexpr std::string_view unread[] = {"tasks.", "schedule.", "finetune.", "dist.", "data.augment",
                                                "data.pair_kinds", "data.pair_sampling"};
  for (const auto& assignment : o.overrides) {
    const std::string_view key = std::string_view(assignment).substr(0, assignment.find('='));
    bool does_nothing = key.rfind("train.", 0) == 0 &&
                        std::find(train_keys.begin(), train_keys.end(), key.substr(6)) == train_keys.end();
    for (const auto prefix : unread) does_nothing = does_nothing || key.rfind(prefix, 0) == 0;
    for (const auto fixed : tokenizer_keys) does_nothing = does_nothing || key == fixed;
    if (does_nothing)
      throw Error(Location{"--set", 0, assignment}, std::string("does nothing in `") + command +
                                                        "`, which reads the checkpoint's weights and tokenizer");
  }
}

/// A checkpoint's model with a new run's settings: the model sizes always come from the
/// checkpoint (they must match its weights); everything else from `settings`.
inline Config with_model_of(Config settings, const train::Checkpoint& checkpoint, const CommonOptions& o) {
  refuse_fixed_overrides(o, checkpoint, /*tokenizer=*/false);
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
