// Pre-trains the full CommerceMM recipe (5 image-text tasks + 9 omni-retrieval tasks, random
// fusion split) on the embedded emoji-commerce slice and scores held-out retrieval against
// the same model untrained.
//   commercemm_pretrain_demo [--config examples/configs/tiny.toml] [--steps N] [--data DIR]
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "pretrain_common.hpp"

namespace cmm = commercemm;
namespace tk = commercemm::tasks;

using Model = cmm::DefaultModel;
using Tasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;
using Recipe = cmm::Recipe<Model, Tasks, cmm::schedules::RandomFusionSplit>;

int main(int argc, char** argv) {
  CLI::App app{"Pre-train the CommerceMM recipe on the embedded emoji-commerce slice"};
  std::string config_file = "examples/configs/tiny.toml", data_dir = "data/emoji-commerce";
  std::vector<std::string> overrides;
  app.add_option("--config", config_file, "TOML config")->check(CLI::ExistingFile);
  app.add_option("--data", data_dir, "benchmark directory written by `commercemm data emoji`");
  app.add_option("--set", overrides, "override a config key, e.g. --set train.steps=50");
  CLI11_PARSE(app, argc, argv);
  try {
    auto config = cmm::load_config(config_file);
    for (const auto& o : overrides) cmm::apply_override(config, o);
    const auto data = example::load(data_dir, 2000);
    config.model.text.vocab_size = data.tokenizer->vocab_size();
    std::printf("%zu training products, %zu held-out; vocabulary %lld; %lld steps of batch %lld\n",
                data.train.catalog.size(), data.held_out.catalog.size(),
                static_cast<long long>(config.model.text.vocab_size), static_cast<long long>(config.train.steps),
                static_cast<long long>(config.train.batch_size));
    torch::manual_seed(config.train.seed);
    cmm::train::Step<Recipe> step(Model(config.model), config, data.tokenizer->special_tokens());
    const auto [i2t0, q2p0] = example::held_out_recall(step.model(), data, config);
    example::pretrain(step, data, config, std::max<std::int64_t>(1, config.train.steps / 10));
    const auto [i2t, q2p] = example::held_out_recall(step.model(), data, config);
    const double chance = 1.0 / static_cast<double>(data.held_out.catalog.size());
    std::printf("\nheld-out Recall@1        untrained  pre-trained  (chance %.4f)\n", chance);
    std::printf("  image -> text           %8.4f     %8.4f\n", i2t0, i2t);
    std::printf("  query -> product        %8.4f     %8.4f\n", q2p0, q2p);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
