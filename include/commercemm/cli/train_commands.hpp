#pragma once
// The `pretrain` and `finetune` subcommands of cmm::cli::main<Recipe>.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include <commercemm/cli/common.hpp>
#include <commercemm/cli/loaded_model.hpp>
#include <commercemm/cli/report.hpp>
#include <commercemm/dist/world.hpp>
#include <commercemm/train/finetune.hpp>
#include <commercemm/train/trainer.hpp>

namespace commercemm::cli {

namespace fs = std::filesystem;

template <class Recipe> void add_pretrain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("pretrain", "Pre-train the recipe's tasks on a benchmark's train split");
  auto common = add_common_options(cmd, "runs/pretrain");
  auto resume = std::make_shared<bool>(false);
  auto data_dir = std::make_shared<std::string>();
  cmd->add_flag("--resume", *resume, "Continue from OUT/checkpoints/last.pt (its config, then --set)");
  cmd->add_option("--data", *data_dir, "Benchmark directory (sets data.dir)");
  cmd->callback([common, resume, data_dir] {
    train::install_stop_handlers();
    const fs::path out = common->out;
    std::optional<train::Checkpoint> checkpoint;
    if (*resume) {
      // An exact continuation needs the run's own config: only --set may change it (steps, say).
      if (!common->config.empty() || common->seed)
        throw Error(Location{"pretrain", 0, "--resume"}, "continues the checkpoint's config and seed; "
                                                         "change keys with --set, not --config or --seed");
      checkpoint.emplace(out / "checkpoints" / "last.pt");
      refuse_fixed_overrides(*common, *checkpoint, /*tokenizer=*/true);
    } else {
      if (common->config.empty())
        throw Error(Location{"pretrain", 0, "--config"}, "a config file is required (or --resume)");
      if (!train::CheckpointDirectory(out / "checkpoints", 1).list().empty())
        throw Error(Location{out.string(), 0, "--out"}, "already holds a run's checkpoints; continue it with "
                                                        "--resume or choose another --out");
    }
    Config config = resolve_config(*common, checkpoint ? std::optional<Config>(checkpoint->config()) : std::nullopt);
    if (!data_dir->empty()) config.data.dir = *data_dir;
    // Under torchrun (WORLD_SIZE > 1) join the job first; alone, `world` stays null.
    const auto world = dist::World::join(config.dist, train::resolve_device(config.train.device));
    const auto split = data::read_split(config.data.dir, "train", true, config.data.allow_outside_paths);
    auto tokenizer = checkpoint ? checkpoint->tokenizer() : train::make_tokenizer(config, split);
    train::Trainer<Recipe> trainer(config, tokenizer, split, out, /*pretrained=*/!checkpoint);
    const bool lead = trainer.writes();
    if (checkpoint) {
      trainer.resume(*checkpoint);
      if (trainer.steps_done() > config.train.steps)
        throw Error(Location{"--resume", 0, "train.steps"},
                    "the run is already at step " + std::to_string(trainer.steps_done()) + " of " +
                        std::to_string(config.train.steps) + ": raise it with --set train.steps=N to continue");
      if (lead)
        std::printf("resuming at step %lld of %lld\n", static_cast<long long>(trainer.steps_done()),
                    static_cast<long long>(config.train.steps));
    }
    if (lead) {
      write_json(out / "config.json", to_json(trainer.config()));
      std::printf("pre-training %zu catalog items, %zu pairs; vocabulary %lld; ", split.catalog.size(),
                  split.pairs.size(), static_cast<long long>(trainer.config().model.text.vocab_size));
      if (world) std::printf("%d ranks (%s); ", world->size(), world->backend().c_str());
      std::printf("tasks:");
      for (const auto& [name, weight] : trainer.step().active_tasks()) std::printf(" %s", name.c_str());
      std::printf("\n");
      std::fflush(stdout);
    }
    const auto results = trainer.run();
    if (!lead) {
      if (trainer.stopped()) throw CLI::RuntimeError(130);
      return;
    }
    if (!results.empty()) {
      std::printf("losses at step %lld:", static_cast<long long>(trainer.steps_done()));
      for (const auto* pass : {&results.back().image_text, &results.back().cross_pair})
        for (const auto& [name, value] : pass->losses) std::printf(" %s %.3f", name.c_str(), value);
      std::printf("\n");
    }
    if (trainer.stopped()) {
      std::printf("stopped at step %lld; continue with --resume\n", static_cast<long long>(trainer.steps_done()));
      throw CLI::RuntimeError(130);
    }
    std::printf("done: %s\n", (out / "checkpoints" / "last.pt").c_str());
  });
}

template <class Recipe> void add_finetune_command(CLI::App& app) {
  using Model = typename Recipe::Model;
  auto* cmd = app.add_subcommand("finetune", "Fine-tune a pre-trained checkpoint for one downstream task, then score it");
  auto common = add_common_options(cmd, "runs/finetune");
  auto checkpoint_file = std::make_shared<std::string>();
  auto task_name = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *checkpoint_file, "Pre-trained checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--task", *task_name, "Downstream task (e.g. multimodal_categorization, query_to_product)")->required();
  cmd->add_option("--data", *data_dir, "Benchmark directory (sets data.dir)");
  cmd->callback([common, checkpoint_file, task_name, data_dir] {
    if (idle_rank("finetune")) return;
    const train::Checkpoint checkpoint(*checkpoint_file);
    for (const auto& assignment : common->overrides)
      if (assignment.rfind("train.ema_decay", 0) == 0)
        throw Error(Location{"--set", 0, assignment}, "fine-tuning keeps no weight average (pre-training only)");
    const fs::path out = common->out;
    if (!train::CheckpointDirectory(out / "checkpoints", 1).list().empty())  // a pre-training run's, say
      throw Error(Location{out.string(), 0, "--out"}, "already holds a run's checkpoints; choose another --out");
    Config config = with_model_of(resolve_config(*common, checkpoint.config()), checkpoint, *common);
    config.train.ema_decay = 0;  // starts from the served weights below; keeps no average of its own
    if (!data_dir->empty()) config.data.dir = *data_dir;
    note_cpu_only(config, "finetune");
    torch::manual_seed(static_cast<std::uint64_t>(config.train.seed));
    train::apply_threads(config.train.threads, config.train.precision);
    const auto bench = eval::Benchmark::load(config.data.dir, {*task_name}, config);
    const auto task = bench.task(*task_name);
    Model model(config.model);
    checkpoint.load(checkpoint.served_weights(), *model);
    train::MetricsLog log(out / "metrics.jsonl", -1);
    const auto head = train::finetune(model, task, bench, checkpoint.tokenizer(), config, log);

    train::CheckpointParts parts;
    parts.config = &config;
    parts.tokenizer = checkpoint.tokenizer().get();
    parts.state.kind = "finetune";
    parts.state.step = config.finetune.steps;
    parts.state.extra = {{"task", task.name}, {"from", checkpoint.path().string()}};
    if (head) parts.state.extra["labels"] = head->labels.names();
    parts.model = model.ptr().get();
    parts.finetune = head ? head->linear.ptr().get() : nullptr;
    train::CheckpointDirectory(out / "checkpoints", 1).save(parts);

    const auto embed = embed_function(model, config.eval.fusion_split, config.train.precision);
    const auto sets = eval::embed_benchmark(bench, checkpoint.tokenizer(), config, embed, {task.name}, false);
    const auto metrics = eval::score_tasks(sets, {task.name}, search_options(config), head ? &*head : nullptr, bench.tasks);
    write_json(out / "metrics.json", metrics);
    print_table(metrics, {}, bench);
    std::printf("checkpoint: %s\n", (out / "checkpoints" / "last.pt").c_str());
  });
}

}  // namespace commercemm::cli
