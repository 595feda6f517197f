#pragma once
// `describe --config FILE [--json]`: what a config builds, before anything is trained:
// parameters per part, the embedding size, the tokens each input turns into, and every task's
// hyper-parameters and the schedule's options as the recipe resolves them (defaults included).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <commercemm/core/config_io.hpp>
#include <commercemm/model.hpp>
#include <commercemm/train/recipe_options.hpp>

namespace commercemm::cli {

/// The description of ModelT built from `config`, as JSON.
template <class ModelT> nlohmann::json describe(const ModelConfig& config) {
  ModelT model(config);
  const auto heads = parameter_count(*model->image_head) + parameter_count(*model->text_head) +
                     parameter_count(*model->multimodal_head);
  const auto image_tokens = 1 + config.image.num_patches(), text_tokens = 1 + config.text.max_length;
  nlohmann::json j;
  j["preset"] = config.preset;
  j["parameters"] = {{"image_encoder", parameter_count(*model->image_encoder())},
                     {"text_encoder", parameter_count(*model->text_encoder())},
                     {"fusion", parameter_count(*model->fusion())},
                     {"embedding_heads", heads},
                     {"total", parameter_count(*model)}};
  j["embed_dim"] = config.embed_dim;
  j["tokens"] = {{"image", image_tokens}, {"text", text_tokens}, {"fused", image_tokens + text_tokens}};
  j["fusion_splits"] = config.fusion.layers + 1;
  j["config"] = to_json(config);
  return j;
}

inline std::string format_count(std::int64_t n) {
  char buffer[32];
  if (n >= 1000000) std::snprintf(buffer, sizeof buffer, "%.2fM", static_cast<double>(n) / 1e6);
  else if (n >= 1000) std::snprintf(buffer, sizeof buffer, "%.1fK", static_cast<double>(n) / 1e3);
  else std::snprintf(buffer, sizeof buffer, "%lld", static_cast<long long>(n));
  return buffer;
}

/// The recipe's tasks (weight and hyper-parameters) and schedule options as `config` sets
/// them; keys the recipe does not use are errors here too.
template <class Recipe> nlohmann::json describe_recipe(Config config) {
  train::read_task_options<typename Recipe::TaskTuple>(config);
  train::read_schedule_options<typename Recipe::Schedule>(config);
  const auto j = to_json(config);
  return {{"tasks", j["tasks"]}, {"schedule", j.value("schedule", nlohmann::json::object())}};
}

template <class Recipe> void add_describe_command(CLI::App& app) {
  using ModelT = typename Recipe::Model;
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("describe", "Print parameter counts per part, embedding size and token counts");
  cmd->add_option("--config", options->config, "TOML config file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", options->overrides, "Override a config key, e.g. --set model.image.layers=4");
  cmd->add_flag("--json", options->json, "Print JSON instead of a table");
  cmd->callback([options] {
    auto config = load_config(options->config);
    apply_overrides(config, options->overrides);
    auto j = describe<ModelT>(config.model);
    const auto recipe = describe_recipe<Recipe>(config);
    j["tasks"] = recipe["tasks"];
    j["schedule"] = recipe["schedule"];
    if (options->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("model preset %s, embeddings of dimension %lld\n", config.model.preset.c_str(),
                static_cast<long long>(config.model.embed_dim));
    std::printf("  %-16s %14s\n", "part", "parameters");
    for (const char* part : {"image_encoder", "text_encoder", "fusion", "embedding_heads", "total"}) {
      const auto n = j["parameters"][part].template get<std::int64_t>();
      std::printf("  %-16s %14s  (%lld)\n", part, format_count(n).c_str(), static_cast<long long>(n));
    }
    std::printf("tokens per input: image %lld (CLS + %lld patches), text up to %lld (CLS + %lld), fused up to %lld\n",
                j["tokens"]["image"].template get<long long>(), static_cast<long long>(config.model.image.num_patches()),
                j["tokens"]["text"].template get<long long>(), static_cast<long long>(config.model.text.max_length),
                j["tokens"]["fused"].template get<long long>());
    std::printf("fusion splits: 0 (deepest) .. %lld (two towers)\n", static_cast<long long>(config.model.fusion.layers));
    std::printf("tasks (weight, hyper-parameters):\n");
    for (const auto& [name, task] : recipe["tasks"].items()) {
      std::printf("  %-34s %s\n", name.c_str(), task.dump().c_str());
    }
    std::printf("schedule: %s\n", recipe["schedule"].dump().c_str());
  });
}

}  // namespace commercemm::cli
