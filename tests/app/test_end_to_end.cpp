// The tiny recipe end to end through the library's app layer: pre-train all 14 tasks, fine-tune
// a categorization head, and score the seven downstream tasks, with metrics.json's shape.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>
#include <filesystem>
#include <string>

#include <commercemm/components.hpp>
#include <commercemm/eval/downstream.hpp>
#include <commercemm/train/finetune.hpp>
#include <commercemm/train/trainer.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
namespace fs = std::filesystem;

namespace {
using Tasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::RandomFusionSplit>;

double mean_total(const std::vector<cmm::train::StepResult>& r, std::size_t from, std::size_t n) {
  double s = 0;
  for (std::size_t i = from; i < from + n; ++i) s += r[i].image_text.total + r[i].cross_pair.total;
  return s / static_cast<double>(n);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(app_end_to_end)

BOOST_AUTO_TEST_CASE(tiny_recipe_pretrain_finetune_evaluate) {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/tiny.toml");
  c.data.dir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
  c.train.steps = 80;
  c.finetune.steps = 40;
  c.eval.fashion_mnist_train = 2000;
  c.eval.fashion_mnist_test = 1000;
  const auto split = cmm::data::read_split(c.data.dir, "train");
  const auto tokenizer = cmm::train::learn_tokenizer(split, c.model.text.vocab_size);
  const auto out = fs::temp_directory_path() / ("commercemm-e2e-" + std::to_string(::getpid()));
  fs::remove_all(out);

  cmm::train::Trainer<Recipe> trainer(c, tokenizer, split, out);
  const auto results = trainer.run();
  const double first = mean_total(results, 0, 10), last = mean_total(results, results.size() - 10, 10);
  BOOST_TEST_MESSAGE("pre-training loss (both passes) " << first << " -> " << last);
  BOOST_CHECK_LT(last, first * 0.9);
  BOOST_CHECK(fs::exists(out / "checkpoints" / "last.pt"));
  BOOST_CHECK(fs::exists(out / "metrics.jsonl"));

  const auto config = trainer.config();
  const auto bench = cmm::eval::Benchmark::load(config.data.dir, {}, config);
  const auto tasks = bench.task_names();
  auto model = trainer.model();
  model->eval();
  const auto embedder = [](auto& m) {
    return [&m](const cmm::Batch& b) {
      torch::NoGradGuard no_grad;
      return m->embed(b);
    };
  };
  const auto sets = cmm::eval::embed_benchmark(bench, tokenizer, config, embedder(model), tasks, true);
  const auto metrics = cmm::eval::score_tasks(sets, tasks, {});
  BOOST_TEST_MESSAGE("pre-trained: " << metrics.dump());
  for (const auto& t : bench.tasks) {
    BOOST_REQUIRE_MESSAGE(metrics.contains(t.name), t.name);
    for (const auto* key : t.kind == cmm::eval::TaskKind::retrieval
                               ? std::vector<const char*>{"recall@1", "recall@5", "recall@10", "mrr"}
                               : std::vector<const char*>{"accuracy", "macro_f1"}) {
      const double v = metrics[t.name][key].get<double>();
      BOOST_CHECK_MESSAGE(v >= 0.0 && v <= 1.0, t.name << " " << key << " = " << v);
    }
  }
  // The bar is the same model untrained (the run's seed, as evaluate's reference row). After
  // 80 tiny steps the image side is far past it (x5.3 image to product, x3.2 image to text,
  // measured on this seed); the text side much less (x1.1 query to product, x1.7 post to
  // product, x2.4 text to image): learning from the multilingual queries is the open
  // gap. Each factor below is what the task reaches now, rounded down, so a regression fails.
  torch::manual_seed(static_cast<std::uint64_t>(config.train.seed));
  cmm::DefaultModel untrained(config.model);
  untrained->eval();
  const auto untrained_metrics =
      cmm::eval::score_tasks(cmm::eval::embed_benchmark(bench, tokenizer, config, embedder(untrained), tasks, false), tasks, {});
  BOOST_TEST_MESSAGE("untrained: " << untrained_metrics.dump());
  const std::pair<const char*, double> factors[] = {{"image_to_product", 4.0}, {"image_to_text", 2.5},
                                                    {"text_to_image", 1.8},    {"post_to_product", 1.4},
                                                    {"query_to_product", 1.05}};
  for (const auto& [task, factor] : factors) {
    const double ours = metrics[task]["mrr"].get<double>(), bar = untrained_metrics[task]["mrr"].get<double>();
    std::printf("  %-18s MRR trained %.3f untrained %.3f (x%.2f, required x%.2f)\n", task, ours, bar, ours / bar, factor);
    BOOST_CHECK_MESSAGE(ours >= factor * bar, task << " MRR " << ours << " < " << factor << "x the untrained " << bar);
  }
  // Centroid categorization on frozen embeddings: above chance (0.1), but pre-training does not
  // yet beat the untrained model's random features here (0.25 against 0.37, measured).
  BOOST_CHECK_GT(metrics["fashion_mnist_categorization"]["accuracy"].get<double>(), 0.15);

  // Fine-tuning a head for subcategories: its loss falls from the centroid start, and the head
  // scores far above chance (99 classes) on products it never saw.
  cmm::train::MetricsLog log(out / "finetune.jsonl", -1);
  const auto& task = cmm::eval::downstream_task("multimodal_categorization");
  const auto head = cmm::train::finetune(model, task, bench, tokenizer, config, log);
  BOOST_REQUIRE(head.has_value());
  const auto curve = cmm::train::read_jsonl(out / "finetune.jsonl");
  BOOST_REQUIRE_GE(curve.size(), 2u);
  BOOST_CHECK_LT(curve.back()["loss"][task.name].get<double>(), curve.front()["loss"][task.name].get<double>());
  const auto tuned = cmm::eval::score_tasks(
      cmm::eval::embed_benchmark(bench, tokenizer, config, embedder(model), {task.name}, false), {task.name}, {}, &*head);
  BOOST_TEST_MESSAGE("fine-tuned: " << tuned.dump());
  BOOST_CHECK_EQUAL(tuned[task.name]["scored_by"].get<std::string>(), "finetuned_head");
  BOOST_CHECK_GT(tuned[task.name]["accuracy"].get<double>(), 5.0 / 99.0);
  fs::remove_all(out);
}

BOOST_AUTO_TEST_CASE(every_task_trains_under_bf16_autocast) {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/tiny.toml");
  c.data.dir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
  c.train.precision = "bf16";
  c.train.steps = 2;
  c.train.batch_size = 16;
  const auto split = cmm::data::read_split(c.data.dir, "train");
  cmm::train::Trainer<Recipe> trainer(c, cmm::train::learn_tokenizer(split, c.model.text.vocab_size), split);
  const auto results = trainer.run();
  BOOST_REQUIRE_EQUAL(results.size(), 2u);
  BOOST_CHECK_EQUAL(results[1].image_text.losses.size() + results[1].cross_pair.losses.size(), 14u);
  for (const auto* pass : {&results[1].image_text, &results[1].cross_pair})
    for (const auto& [name, value] : pass->losses) BOOST_CHECK_MESSAGE(std::isfinite(value), name << " = " << value);
}

BOOST_AUTO_TEST_SUITE_END()
