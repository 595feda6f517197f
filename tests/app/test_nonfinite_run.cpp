// A training run meets non-finite gradients: a lone one is skipped and logged with its items,
// train.max_nonfinite in a row stop the run, its last checkpoint from a good step intact.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include <commercemm/components.hpp>
#include <commercemm/train/trainer.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
namespace fs = std::filesystem;

namespace {
using Tasks = cmm::TaskList<tk::MLM, tk::ITC<>, tk::Retrieval<cmm::Text, cmm::Multimodal>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::RandomFusionSplit>;

cmm::Config config() {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/tiny.toml");
  c.data.dir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
  c.model.image.layers = 1, c.model.text.layers = 1, c.model.fusion.layers = 1;
  c.train.steps = 10;
  c.train.batch_size = 8;
  c.train.log_every = 1;
  c.train.checkpoint_every = 2;
  c.train.keep_checkpoints = 10;
  c.train.max_nonfinite = 3;
  return c;
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("commercemm-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

// A tiny run on the embedded train split, into a fresh directory, whose first parameter's
// gradient is NaN in the steps `bad(steps done)` selects.
struct PoisonedRun {
  template <class Bad>
  PoisonedRun(const std::string& name, Bad bad)
      : split(cmm::data::read_split(config().data.dir, "train")),
        out(fresh_dir(name)),
        trainer(config(), cmm::train::learn_tokenizer(split, config().model.text.vocab_size), split, out) {
    auto p = trainer.model()->parameters().front();
    p.register_hook([this, bad](torch::Tensor g) {
      return bad(trainer.steps_done()) ? g * std::numeric_limits<float>::quiet_NaN() : g;
    });
  }
  PoisonedRun(const PoisonedRun&) = delete;
  PoisonedRun& operator=(const PoisonedRun&) = delete;

  cmm::data::DatasetSplit split;
  fs::path out;
  cmm::train::Trainer<Recipe> trainer;
};
}  // namespace

BOOST_AUTO_TEST_SUITE(nonfinite_run)

BOOST_AUTO_TEST_CASE(a_lone_bad_step_is_skipped_logged_and_the_run_goes_on) {
  PoisonedRun run("nonfinite-lone", [](std::int64_t step) { return step == 4; });  // the fifth step
  auto& trainer = run.trainer;
  const auto& out = run.out;
  const auto results = trainer.run();
  BOOST_REQUIRE_EQUAL(results.size(), 10u);
  for (std::size_t i = 0; i < results.size(); ++i) BOOST_TEST(results[i].skipped == (i == 4), "step " << i);
  BOOST_TEST(trainer.step().counters().skipped_updates == 1);
  const auto events = cmm::train::read_jsonl(out / "nonfinite.jsonl");
  BOOST_REQUIRE_EQUAL(events.size(), 1u);
  BOOST_TEST(events[0]["step"].get<int>() == 5);  // steps done, as in metrics.jsonl
  BOOST_TEST(events[0]["what"].get<std::string>() == "gradient");
  BOOST_TEST(events[0]["in_a_row"].get<int>() == 1);
  BOOST_TEST(events[0]["items"].size() == 8u);  // the batch's item ids
  BOOST_TEST(events[0]["items"][0].get<std::string>().rfind("c:", 0) == 0u);
  // metrics.jsonl has no line for the skipped step, and no NaN anywhere.
  const auto metrics = cmm::train::read_jsonl(out / "metrics.jsonl");
  BOOST_TEST(metrics.size() == 9u);
  for (const auto& line : metrics) {
    BOOST_TEST(line["step"].get<int>() != 5);
    for (const auto& [name, value] : line["loss"].items()) BOOST_TEST(std::isfinite(value.get<double>()), name);
  }
  BOOST_TEST(fs::exists(out / "checkpoints" / "step-0000010.pt"));
}

BOOST_AUTO_TEST_CASE(max_nonfinite_in_a_row_stop_the_run_with_the_last_good_checkpoint_intact) {
  PoisonedRun run("nonfinite-stop", [](std::int64_t step) { return step >= 3; });  // every step from the fourth on
  auto& trainer = run.trainer;
  const auto& out = run.out;
  std::string message;
  try {
    trainer.run();
  } catch (const cmm::Error& e) {
    message = e.what();
  }
  BOOST_TEST_MESSAGE(message);
  BOOST_TEST(message.find("train.max_nonfinite: 3 steps in a row had a non-finite loss or gradient (step 6: "
                          "gradient in pass A (image-text pairs))") != std::string::npos, message);
  BOOST_TEST(message.find("step-0000002.pt, is from a good step") != std::string::npos, message);
  BOOST_TEST(trainer.steps_done() == 6);
  // Steps 4 and 6 were skipped: no checkpoint of theirs pushed the good one out.
  const auto files = cmm::train::CheckpointDirectory(out / "checkpoints", 10).list();
  BOOST_REQUIRE_EQUAL(files.size(), 1u);
  BOOST_TEST(files[0].filename() == "step-0000002.pt");
  const cmm::train::Checkpoint checkpoint(files[0]);
  BOOST_TEST(checkpoint.state().step == 2);
  const auto events = cmm::train::read_jsonl(out / "nonfinite.jsonl");
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  for (int i = 0; i < 3; ++i) BOOST_TEST(events[i]["in_a_row"].get<int>() == i + 1);
  // The weights the run stopped with are the last good update's: finite.
  for (const auto& p : trainer.model()->parameters()) BOOST_TEST(torch::isfinite(p).all().item<bool>());
}

BOOST_AUTO_TEST_SUITE_END()
