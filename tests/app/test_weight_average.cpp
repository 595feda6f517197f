// train.ema_decay: nn::MovingAverage's arithmetic by hand on tiny modules; the weights' moving
// average follows the trained weights by the ramped decay (computed by hand from snapshots of
// the weights), leaves the training run itself unchanged, is what a checkpoint serves to
// evaluate, embed and finetune, and survives --resume.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <commercemm/cli/loaded_model.hpp>
#include <commercemm/components.hpp>
#include <commercemm/train/trainer.hpp>
#include <commercemm/train/weight_average.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
namespace fs = std::filesystem;

namespace {
using Tasks = cmm::TaskList<tk::ITC<>, tk::Retrieval<cmm::Image, cmm::Multimodal>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::RandomFusionSplit>;

cmm::Config config(double ema_decay) {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/tiny.toml");
  c.data.dir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
  c.model.image.layers = 1, c.model.text.layers = 1, c.model.fusion.layers = 2;
  c.train.steps = 4;
  c.train.batch_size = 8;
  c.train.warmup_steps = 1;
  c.train.log_every = 2;
  c.train.checkpoint_every = 2;
  c.train.ema_decay = ema_decay;
  return c;
}

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

double largest_difference(const std::map<std::string, torch::Tensor>& expected, const torch::nn::Module& module) {
  double worst = 0;
  for (const auto& p : module.named_parameters())
    worst = std::max(worst, (p.value() - expected.at(p.key())).abs().max().item<double>());
  return worst;
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("commercemm-average-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(app_weight_average)

BOOST_AUTO_TEST_CASE(the_decay_ramps_up_to_its_setting) {
  BOOST_CHECK_CLOSE(cmm::train::weight_average_decay(0.999, 1), 2.0 / 11.0, 1e-12);
  BOOST_CHECK_CLOSE(cmm::train::weight_average_decay(0.999, 90), 91.0 / 100.0, 1e-12);
  BOOST_CHECK_CLOSE(cmm::train::weight_average_decay(0.2, 2), 0.2, 1e-12);  // 3/12 = 0.25, capped
}

BOOST_AUTO_TEST_CASE(an_update_moves_each_weight_by_one_minus_the_decay) {
  torch::nn::Linear average(2, 1), model(2, 1);
  {
    torch::NoGradGuard no_grad;
    average->weight.copy_(torch::tensor({{1.0f, 2.0f}})), average->bias.fill_(0.0f);
    model->weight.copy_(torch::tensor({{3.0f, -2.0f}})), model->bias.fill_(1.0f);
  }
  cmm::nn::MovingAverage pairs(*average, *model, cmm::nn::MovingAverage::Buffers::copied);
  pairs.update(0.75);
  // 0.75 * 1 + 0.25 * 3 = 1.5; 0.75 * 2 + 0.25 * -2 = 1; 0.25 * 1 = 0.25
  BOOST_CHECK(torch::allclose(average->weight, torch::tensor({{1.5f, 1.0f}})));
  BOOST_CHECK_CLOSE(average->bias.item<float>(), 0.25f, 1e-4);
  BOOST_CHECK(torch::allclose(model->weight, torch::tensor({{3.0f, -2.0f}})));  // the model is untouched
  // The pairs outlive a load into the same tensors (Tensor::set_, as a checkpoint load does).
  {
    torch::NoGradGuard no_grad;
    model->weight.set_(torch::tensor({{5.0f, 6.0f}}));
  }
  pairs.update(0.5);  // 0.5 * 1.5 + 0.5 * 5 = 3.25; 0.5 * 1 + 0.5 * 6 = 3.5
  BOOST_CHECK(torch::allclose(average->weight, torch::tensor({{3.25f, 3.5f}})));
  pairs.copy();
  BOOST_CHECK(torch::equal(average->weight, model->weight));
}

BOOST_AUTO_TEST_CASE(buffers_are_copied_or_left_and_a_missing_name_is_named) {
  torch::nn::BatchNorm1d copied(2), left(2), model(2);
  {
    torch::NoGradGuard no_grad;
    model->running_mean.fill_(4.0f), model->weight.fill_(3.0f);
  }
  cmm::nn::MovingAverage(*copied, *model, cmm::nn::MovingAverage::Buffers::copied).update(0.5);
  cmm::nn::MovingAverage(*left, *model, cmm::nn::MovingAverage::Buffers::left).update(0.5);
  BOOST_CHECK(torch::allclose(copied->running_mean, torch::full({2}, 4.0f)));
  BOOST_CHECK(torch::allclose(left->running_mean, torch::zeros({2})));
  BOOST_CHECK(torch::allclose(left->weight, torch::full({2}, 2.0f)));  // 0.5 * 1 + 0.5 * 3

  torch::nn::Linear with_bias(2, 1), without_bias(torch::nn::LinearOptions(2, 1).bias(false));
  BOOST_CHECK_EXCEPTION(cmm::nn::MovingAverage(*with_bias, *without_bias, cmm::nn::MovingAverage::Buffers::left),
                        cmm::Error, [](const cmm::Error& e) {
                          return std::string(e.what()).find("no parameter bias") != std::string::npos;
                        });
}

BOOST_AUTO_TEST_CASE(the_average_follows_the_trained_weights_and_leaves_the_run_unchanged) {
  const auto split = cmm::data::read_split(config(0).data.dir, "train");
  const auto tokenizer = cmm::train::learn_tokenizer(split, config(0).model.text.vocab_size);

  cmm::train::Trainer<Recipe> plain(config(0), tokenizer, split);
  BOOST_CHECK(plain.average().is_empty());
  const auto plain_results = plain.run(2);

  cmm::train::Trainer<Recipe> averaged(config(0.2), tokenizer, split);
  auto expected = snapshot(*averaged.model());
  BOOST_CHECK_EQUAL(largest_difference(expected, *averaged.average()), 0.0);  // starts as a copy
  std::vector<cmm::train::StepResult> results;
  for (std::int64_t step = 1; step <= 2; ++step) {
    results.push_back(averaged.run(step).back());
    const double decay = step == 1 ? 2.0 / 11.0 : 0.2;  // the ramp, then the setting (3/12 > 0.2)
    const auto now = snapshot(*averaged.model());
    for (auto& [name, value] : expected) value = decay * value + (1 - decay) * now.at(name);
    BOOST_CHECK_LT(largest_difference(expected, *averaged.average()), 1e-6);
    BOOST_CHECK_GT(largest_difference(now, *averaged.average()), 1e-4);  // trails, not equals
  }
  // Building the average draws nothing from the generator: the same losses step for step.
  for (std::size_t i = 0; i < 2; ++i)
    for (const auto& [name, value] : plain_results[i].cross_pair.losses)
      BOOST_CHECK_EQUAL(value, results[i].cross_pair.losses.at(name));
  for (const auto& p : averaged.average()->parameters()) BOOST_CHECK(!p.requires_grad());
}

BOOST_AUTO_TEST_CASE(checkpoints_serve_the_average_and_resume_restores_it) {
  const auto c = config(0.5);
  const auto split = cmm::data::read_split(c.data.dir, "train");
  const auto tokenizer = cmm::train::learn_tokenizer(split, c.model.text.vocab_size);
  const auto root = fresh_dir("resume");

  cmm::train::Trainer<Recipe> straight(c, tokenizer, split, root / "straight");
  straight.run();
  const cmm::train::Checkpoint last(root / "straight" / "checkpoints" / "last.pt");
  BOOST_CHECK_EQUAL(last.served_weights(), "average");
  const auto served = cmm::cli::load_model<cmm::DefaultModel>(last, last.config());
  BOOST_CHECK_EQUAL(largest_difference(snapshot(*straight.average()), *served.model), 0.0);
  BOOST_CHECK_GT(largest_difference(snapshot(*straight.model()), *served.model), 1e-4);

  {
    cmm::train::Trainer<Recipe> interrupted(c, tokenizer, split, root / "resumed");
    interrupted.run(3);  // "killed" after step 3: step 2's checkpoint is the last
  }
  const cmm::train::Checkpoint middle(root / "resumed" / "checkpoints" / "last.pt");
  BOOST_REQUIRE_EQUAL(middle.state().step, 2);
  cmm::train::Trainer<Recipe> resumed(middle.config(), middle.tokenizer(), split, root / "resumed");
  resumed.resume(middle);
  resumed.run();
  BOOST_CHECK_LT(largest_difference(snapshot(*straight.average()), *resumed.average()), 1e-5);

  // A run without an average serves its weights.
  cmm::train::Trainer<Recipe> plain(config(0), tokenizer, split, root / "plain");
  plain.run(2);
  BOOST_CHECK_EQUAL(cmm::train::Checkpoint(root / "plain" / "checkpoints" / "last.pt").served_weights(), "model");
  fs::remove_all(root);
}

BOOST_AUTO_TEST_CASE(a_decay_outside_zero_to_one_is_an_error_naming_the_key) {
  for (double bad : {1.0, -0.1, 1.5}) {
    auto c = config(bad);
    try {
      cmm::validate(c);
      BOOST_ERROR("train.ema_decay = " << bad << " was accepted");
    } catch (const cmm::Error& e) {
      BOOST_CHECK_EQUAL(e.where().field, "train.ema_decay");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
