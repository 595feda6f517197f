// --resume continues a run so that its loss curve matches an uninterrupted run step for step:
// the checkpoint carries weights, heads, the EMA teacher, AdamW moments, loader positions and
// the RNG. Also: metrics.jsonl of the resumed run equals the uninterrupted one line for line
// (checkpoints fall on logged steps here; a run stopped by a signal logs its partial window).
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <commercemm/components.hpp>
#include <commercemm/train/trainer.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
namespace fs = std::filesystem;

namespace {
// Every kind of state a resume must restore: MLM/MIM masks (step RNG), an EMA teacher, ITM's
// sampled negatives, learned temperatures, both passes, and a random fusion split.
using Tasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::FeatureRegression, cmm::teachers::Ema<>>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::Retrieval<cmm::Text, cmm::Multimodal>,
                            tk::Retrieval<cmm::Image, cmm::Multimodal>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::RandomFusionSplit>;

cmm::Config config() {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/tiny.toml");
  c.data.dir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
  c.model.image.layers = 1, c.model.text.layers = 1, c.model.fusion.layers = 2;
  c.model.image.dropout = 0.1;  // dropout draws from the global generator: the RNG must be restored
  c.train.steps = 8;
  c.train.batch_size = 16;
  c.train.warmup_steps = 2;
  c.train.log_every = 2;
  c.train.checkpoint_every = 4;
  return c;
}

std::vector<std::string> lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    // elapsed and throughput differ between runs; everything else must not.
    auto j = nlohmann::json::parse(line);
    j.erase("elapsed_s"), j.erase("samples_per_s"), j.erase("step_s");
    out.push_back(j.dump());
  }
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(app_resume)

BOOST_AUTO_TEST_CASE(a_resumed_run_matches_an_uninterrupted_run_step_for_step) {
  const auto c = config();
  const auto split = cmm::data::read_split(c.data.dir, "train");
  const auto tokenizer = cmm::train::learn_tokenizer(split, c.model.text.vocab_size);
  const auto root = fs::temp_directory_path() / ("commercemm-resume-" + std::to_string(::getpid()));
  fs::remove_all(root);

  cmm::train::Trainer<Recipe> straight(c, tokenizer, split, root / "straight");
  const auto all = straight.run();
  BOOST_REQUIRE_EQUAL(all.size(), 8u);

  {
    cmm::train::Trainer<Recipe> interrupted(c, tokenizer, split, root / "resumed");
    // "Killed" after step 7: step 4's checkpoint is the last, and the line logged at step 6
    // must go from metrics.jsonl when the run resumes.
    BOOST_REQUIRE_EQUAL(interrupted.run(7).size(), 7u);
  }
  const cmm::train::Checkpoint checkpoint(root / "resumed" / "checkpoints" / "last.pt");
  BOOST_REQUIRE_EQUAL(checkpoint.state().step, 4);
  torch::manual_seed(12345);  // a fresh process would start from another generator state
  cmm::train::Trainer<Recipe> resumed(checkpoint.config(), checkpoint.tokenizer(), split, root / "resumed");
  resumed.resume(checkpoint);
  const auto rest = resumed.run();
  BOOST_REQUIRE_EQUAL(rest.size(), 4u);

  for (std::size_t i = 0; i < rest.size(); ++i) {
    const auto& a = all[4 + i];
    const auto& b = rest[i];
    BOOST_CHECK_EQUAL(a.step, b.step);
    BOOST_CHECK_EQUAL(a.draw.split.layers_alone, b.draw.split.layers_alone);
    for (const auto& pass : {std::make_pair(&a.image_text, &b.image_text), std::make_pair(&a.cross_pair, &b.cross_pair)}) {
      BOOST_REQUIRE_EQUAL(pass.first->losses.size(), pass.second->losses.size());
      for (const auto& [name, value] : pass.first->losses)
        BOOST_CHECK_MESSAGE(std::abs(value - pass.second->losses.at(name)) <= 1e-5 * std::max(1.0, std::abs(value)),
                            "step " << a.step << " " << name << ": " << value << " uninterrupted, "
                                    << pass.second->losses.at(name) << " resumed");
    }
  }
  // The resumed metrics.jsonl dropped the lines logged after the checkpoint, then continued.
  BOOST_CHECK(lines(root / "straight" / "metrics.jsonl") == lines(root / "resumed" / "metrics.jsonl"));
  fs::remove_all(root);
}

BOOST_AUTO_TEST_SUITE_END()
