// Checkpoints: atomic writes survive a SIGKILL mid-save, a file round-trips config, tokenizer,
// state and weights, the directory keeps the newest N, and damage is a clear error.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/components.hpp>
#include <commercemm/train/checkpoint.hpp>
#include <commercemm/train/trainer.hpp>

namespace cmm = commercemm;
namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("commercemm-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
std::string read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
std::shared_ptr<const cmm::data::ByteLevelBpe> small_bpe() {
  return std::make_shared<const cmm::data::ByteLevelBpe>(
      cmm::data::train_byte_level_bpe({"red apple", "green apple", "red shoe", "blue shoe"}, {300, 1}));
}
// The parts every checkpoint has: config, tokenizer, model.
cmm::train::CheckpointParts model_parts(const cmm::Config& config, const cmm::data::ByteLevelBpe& bpe,
                                        cmm::DefaultModel& model, std::int64_t step = 0) {
  cmm::train::CheckpointParts parts;
  parts.config = &config;
  parts.tokenizer = &bpe;
  parts.state.step = step;
  parts.model = model.ptr().get();
  return parts;
}
cmm::Config tiny_config(std::int64_t vocab) {
  cmm::Config c;
  c.model = cmm::presets::model("tiny");
  c.model.text.vocab_size = vocab;
  return c;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(app_checkpoint)

BOOST_AUTO_TEST_CASE(a_save_killed_midway_leaves_the_previous_file_intact) {
  const auto dir = fresh_dir("atomic");
  const auto target = dir / "last.pt";
  cmm::write_atomically(target, [](const fs::path& t) { std::ofstream(t) << "the complete old checkpoint"; });
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    // The child dies by SIGKILL halfway through writing the new version: no handler, no cleanup.
    cmm::write_atomically(target, [](const fs::path& t) {
      std::ofstream out(t);
      out << "half of the new";
      out.flush();
      ::raise(SIGKILL);
    });
    ::_exit(0);  // not reached
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_REQUIRE(WIFSIGNALED(status));
  BOOST_CHECK_EQUAL(WTERMSIG(status), SIGKILL);
  BOOST_CHECK_EQUAL(read(target), "the complete old checkpoint");
  // The stray temporary is named so that nothing mistakes it for a checkpoint, and it is swept.
  std::size_t stray = 0;
  for (const auto& e : fs::directory_iterator(dir)) stray += e.path().extension() == ".tmp";
  BOOST_CHECK_EQUAL(stray, 1u);
  cmm::train::CheckpointDirectory(dir, 3).remove_stray_temporaries();
  stray = 0;
  for (const auto& e : fs::directory_iterator(dir)) stray += e.path().extension() == ".tmp";
  BOOST_CHECK_EQUAL(stray, 0u);
  // A writer that throws also leaves the old file and no temporary.
  BOOST_CHECK_THROW(cmm::write_atomically(target, [](const fs::path&) { throw std::runtime_error("disk full"); }),
                    std::runtime_error);
  BOOST_CHECK_EQUAL(read(target), "the complete old checkpoint");
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_round_trips_config_tokenizer_state_and_weights) {
  const auto dir = fresh_dir("roundtrip");
  const auto bpe = small_bpe();
  auto config = tiny_config(bpe->vocab_size());
  config.train.seed = 7;
  config.eval.search = "hnsw";
  config.tasks["itc"].weight = 8;
  torch::manual_seed(1);
  cmm::DefaultModel model(config.model);
  auto optimizer = cmm::train::make_adamw({model.ptr().get()}, 1e-3, 0.05);
  auto parts = model_parts(config, *bpe, model, 42);
  parts.state.image_text = {3, 5};
  parts.state.cross_pair = {1, 2};
  parts.optimizer = optimizer.get();
  cmm::train::save_checkpoint(dir / "c.pt", parts);

  const cmm::train::Checkpoint c(dir / "c.pt");
  BOOST_CHECK_EQUAL(cmm::to_json(c.config()).dump(), cmm::to_json(config).dump());
  BOOST_CHECK_EQUAL(c.state().step, 42);
  BOOST_CHECK_EQUAL(c.state().image_text.batch, 5);
  BOOST_CHECK_EQUAL(c.state().cross_pair.epoch, 1);
  BOOST_CHECK(c.tokenizer()->encode("red apple shoe") == bpe->encode("red apple shoe"));
  torch::manual_seed(2);
  cmm::DefaultModel other(c.config().model);
  c.load("model", *other);
  const auto a = model->named_parameters(), b = other->named_parameters();
  for (const auto& p : a) BOOST_CHECK(torch::equal(p.value(), b[p.key()]));
  BOOST_CHECK(!c.has("finetune"));
  BOOST_CHECK_THROW(c.load("heads", *other), cmm::Error);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(the_directory_keeps_the_newest_n_and_last_pt_is_the_newest) {
  const auto dir = fresh_dir("keep");
  const auto bpe = small_bpe();
  const auto config = tiny_config(bpe->vocab_size());
  cmm::DefaultModel model(config.model);
  cmm::train::CheckpointDirectory checkpoints(dir, 2);
  for (std::int64_t step : {10, 20, 30}) checkpoints.save(model_parts(config, *bpe, model, step));
  const auto files = checkpoints.list();
  BOOST_REQUIRE_EQUAL(files.size(), 2u);
  BOOST_CHECK_EQUAL(files[0].filename().string(), "step-0000020.pt");
  BOOST_CHECK_EQUAL(files[1].filename().string(), "step-0000030.pt");
  BOOST_CHECK_EQUAL(cmm::train::Checkpoint(checkpoints.last()).state().step, 30);
  // Only step-<digits>.pt counts: not last.pt, temporaries or look-alikes.
  for (const char* name : {"step-.pt", "step-12a.pt", "step-0000040.pt.tmp", "xstep-0000050.pt", "step-7.ptx"})
    std::ofstream(dir / name) << "x";
  BOOST_CHECK_EQUAL(checkpoints.list().size(), 2u);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_damaged_or_missing_checkpoint_is_an_error_naming_the_file) {
  const auto dir = fresh_dir("damaged");
  const auto bpe = small_bpe();
  const auto config = tiny_config(bpe->vocab_size());
  cmm::DefaultModel model(config.model);
  cmm::train::save_checkpoint(dir / "good.pt", model_parts(config, *bpe, model));
  const auto bytes = read(dir / "good.pt");
  std::ofstream(dir / "cut.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  for (const auto* name : {"cut.pt", "absent.pt"}) {
    try {
      cmm::train::Checkpoint c(dir / name);
      BOOST_FAIL("expected an error for " << name);
    } catch (const cmm::Error& e) {
      BOOST_CHECK_MESSAGE(std::string(e.what()).find(name) != std::string::npos, e.what());
    }
  }
  // A bit flipped anywhere in a record (weights, or the TorchScript code LibTorch's parser
  // crashes on) fails that record's CRC-32 before LibTorch reads it; so does the fuzzer's find.
  BOOST_REQUIRE(cmm::train::Checkpoint(dir / "good.pt").state().step == 0);
  for (const double where : {0.1, 0.5, 0.9}) {
    auto flipped = bytes;
    flipped[static_cast<std::size_t>(where * static_cast<double>(bytes.size()))] ^= 0x10;
    std::ofstream(dir / "flipped.pt", std::ios::binary | std::ios::trunc) << flipped;
    try {
      cmm::train::Checkpoint c(dir / "flipped.pt");
      BOOST_FAIL("a flipped bit at " << where << " went unnoticed");
    } catch (const cmm::Error& e) {
      BOOST_CHECK_MESSAGE(std::string(e.what()).find("flipped.pt: damaged checkpoint") != std::string::npos, e.what());
    }
  }
  const auto fuzzed = fs::path(COMMERCEMM_SOURCE_DIR) / "tests/fuzz/regressions/checkpoint";
  for (const auto& entry : fs::directory_iterator(fuzzed))
    BOOST_CHECK_THROW(cmm::train::Checkpoint c(entry.path()), cmm::Error);
  // A checkpoint of other sizes does not load into this model, and says which part.
  auto bigger = config;
  bigger.model.fusion.layers += 1;
  cmm::DefaultModel other(bigger.model);
  try {
    cmm::train::Checkpoint(dir / "good.pt").load("model", *other);
    BOOST_FAIL("expected a mismatch error");
  } catch (const cmm::Error& e) {
    BOOST_CHECK_MESSAGE(std::string(e.what()).find("model") != std::string::npos, e.what());
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(weight_decay_skips_biases_norms_tokens_and_positions) {
  const auto config = tiny_config(300);
  cmm::DefaultModel model(config.model);
  std::int64_t decayed = 0, exempt = 0;
  for (const auto& p : model->named_parameters()) {
    const bool d = cmm::train::decays(p.key(), p.value());
    (d ? decayed : exempt) += 1;
    if (p.key().find("bias") != std::string::npos || p.key().find("norm") != std::string::npos ||
        p.key().find("cls_token") != std::string::npos || p.key().find("positions") != std::string::npos)
      BOOST_CHECK_MESSAGE(!d, p.key() << " must not decay");
    if (p.key().find("qkv.weight") != std::string::npos) BOOST_CHECK_MESSAGE(d, p.key() << " must decay");
  }
  auto optimizer = cmm::train::make_adamw({model.ptr().get()}, 1e-3, 0.05);
  BOOST_REQUIRE_EQUAL(optimizer->param_groups().size(), 2u);
  BOOST_CHECK_EQUAL(static_cast<std::int64_t>(optimizer->param_groups()[0].params().size()), decayed);
  BOOST_CHECK_EQUAL(static_cast<std::int64_t>(optimizer->param_groups()[1].params().size()), exempt);
  BOOST_CHECK_EQUAL(static_cast<torch::optim::AdamWOptions&>(optimizer->param_groups()[1].options()).weight_decay(), 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
