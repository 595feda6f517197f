// Two training steps of the full 14-task recipe on two ranks, each holding half of the global
// batch, against one process holding all of it: the same losses and, after the updates, the
// same parameters and buffers (two retrieval tasks keep a key memory, which the second step
// uses: every rank must remember the global batch's keys in the same order; one remembers a
// momentum model's keys, and ITC and another task distil that model's softmax over the global
// batch).
#include "support.hpp"

#include <map>
#include <string>

#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
namespace dist = commercemm::dist;

namespace {

using Model = cmm::DefaultModel;
using AllTasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                               tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;
using Schedule = cmm::schedules::ModalityDropout<cmm::schedules::RandomFusionSplit>;
using Recipe = cmm::Recipe<Model, AllTasks, Schedule>;
constexpr std::int64_t kRows = 8;  // the global batch of each pass
const cmm::data::SpecialTokens kSpecial{0, 1, 2};

cmm::Config tiny_config() {
  cmm::Config c;
  c.model = cmm::presets::model("tiny");
  c.model.text.vocab_size = 200;
  c.train.steps = 10;
  c.train.grad_clip = 0.5;  // clipping sees the global gradient norm
  cmm::apply_override(c, "tasks.retrieval_image_multimodal.memory=12");
  cmm::apply_override(c, "tasks.retrieval_text_text.memory=6");  // wraps within the two steps
  // A momentum model's keys in one memory and its softmax in one distilled task.
  cmm::apply_override(c, "train.ema_decay=0.9");
  cmm::apply_override(c, "tasks.retrieval_image_multimodal.momentum_keys=true");
  cmm::apply_override(c, "tasks.retrieval_text_multimodal.distill=0.4");
  cmm::apply_override(c, "tasks.itc.distill=0.4");
  return c;
}

cmm::schedules::ScheduleOptions schedule_options(const cmm::Config& c) {
  cmm::schedules::ScheduleOptions o;
  o.depth = c.model.fusion.layers;
  o.seed = 3;
  o.drop_text = 0.25;
  o.drop_image = 0.25;
  return o;
}

// Texts of different lengths (each rank's shard pads to its own longest), repeated products.
cmm::Batch text_image_batch(std::uint64_t seed, std::int64_t image_size) {
  torch::manual_seed(seed);
  cmm::Batch b;
  b.images = torch::randn({kRows, 3, image_size, image_size});
  b.text_ids = torch::randint(3, 200, {kRows, 9}, torch::kLong);
  b.text_mask = torch::zeros({kRows, 9}, torch::kLong);
  for (std::int64_t i = 0; i < kRows; ++i) b.text_mask[i].narrow(0, 0, 2 + (i * 5) % 8).fill_(1);
  b.text_ids = b.text_ids * b.text_mask;
  b.product_ids = torch::tensor({0, 1, 2, 3, 0, 5, 6, 3}, torch::kLong);
  return b;
}

// Rows [first, first + n) of a batch, with their global indices; a modality the slice lacks
// entirely is left out, as the loader leaves it out of a shard.
cmm::Batch rows(const cmm::Batch& b, std::int64_t first, std::int64_t n) {
  cmm::Batch out;
  auto slice = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, first, n).clone() : t; };
  const bool text = !b.text_present.defined() || slice(b.text_present).any().item<bool>();
  const bool image = !b.image_present.defined() || slice(b.image_present).any().item<bool>();
  if (text) {
    out.text_ids = slice(b.text_ids), out.text_mask = slice(b.text_mask), out.text_present = slice(b.text_present);
    const auto longest = out.text_mask.sum(1).max().item<std::int64_t>();  // as collate pads
    out.text_ids = out.text_ids.narrow(1, 0, longest), out.text_mask = out.text_mask.narrow(1, 0, longest);
  }
  if (image) out.images = slice(b.images), out.image_present = slice(b.image_present);
  out.product_ids = slice(b.product_ids);
  out.sample_index = torch::arange(first, first + n, torch::kLong);
  return out;
}

struct Outcome {
  std::map<std::string, double> losses;
  std::map<std::string, torch::Tensor> state;  // parameters and buffers after the step
};

Outcome one_step(const cmm::Batch& a, const cmm::Batch& source, const cmm::Batch& target) {
  const auto config = tiny_config();
  torch::manual_seed(0);
  cmm::train::Step<Recipe> step(Model(config.model), config, kSpecial, schedule_options(config));
  torch::manual_seed(7);  // the momentum model: other weights than the trained model's
  Model momentum(config.model);
  momentum->eval();
  step.set_momentum_model(momentum);
  torch::optim::SGD sgd(step.parameters(), torch::optim::SGDOptions(0.1));
  step.run(&a, &source, &target, sgd, 1);
  const auto result = step.run(&a, &source, &target, sgd, 2);
  Outcome out;
  for (const auto* pass : {&result.image_text, &result.cross_pair})
    for (const auto& [name, value] : pass->losses) out.losses[name] = value;
  for (auto& p : step.model()->named_parameters()) out.state["model." + p.key()] = p.value().detach().clone();
  for (auto& p : step.heads().named_parameters()) out.state["heads." + p.key()] = p.value().detach().clone();
  for (auto& p : step.heads().named_buffers()) out.state["heads." + p.key()] = p.value().clone();
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(step_parity)

BOOST_AUTO_TEST_CASE(two_ranks_take_the_single_process_step_of_all_14_tasks) {
  const int r = dist_test::world().rank();
  const auto size = cmm::presets::model("tiny").image.image_size;
  const auto pass_a = text_image_batch(1, size);
  // Pass B sources: rank 0's half are text-only queries (its shard has no image tensor at
  // all); rank 1's are two image-only views and two posts with both (modality dropout acts
  // on those): the ranks must still agree on which networks run.
  auto source = text_image_batch(2, size), target = text_image_batch(3, size);
  target.product_ids = source.product_ids.clone();
  source.text_present = torch::tensor({1, 1, 1, 1, 0, 0, 1, 1}, torch::kBool);
  source.image_present = torch::tensor({0, 0, 0, 0, 1, 1, 1, 1}, torch::kBool);
  source.text_mask = source.text_mask * source.text_present.unsqueeze(1).to(torch::kLong);
  source.text_ids = source.text_ids * source.text_mask;
  source.images = source.images * source.image_present.view({-1, 1, 1, 1}).to(torch::kFloat);

  Outcome reference;
  {
    dist::LocalScope alone;
    reference = one_step(pass_a, source, target);
  }
  const auto half = kRows / 2;
  const auto mine = one_step(rows(pass_a, r * half, half), rows(source, r * half, half), rows(target, r * half, half));

  BOOST_REQUIRE(mine.losses.size() == 14);
  for (const auto& [name, value] : reference.losses)
    BOOST_TEST_CONTEXT(name) { BOOST_TEST(mine.losses.at(name) == value, boost::test_tools::tolerance(1e-4)); }
  double worst = 0;
  std::string where;
  for (const auto& [name, tensor] : reference.state) {
    const double diff = (mine.state.at(name) - tensor).abs().max().item<double>();
    if (diff > worst) worst = diff, where = name;
  }
  BOOST_TEST_MESSAGE("largest parameter difference " << worst << " at " << where);
  BOOST_TEST(worst < 1e-5);
  // And the step did move the weights (a comparison of untouched weights proves nothing).
  torch::manual_seed(0);
  const auto config = tiny_config();
  Model untouched(config.model);
  BOOST_TEST((untouched->text_encoder()->token_embedding() - mine.state.at("model.text_encoder.embedding.weight"))
                 .abs().max().item<double>() > 1e-4);
}

BOOST_AUTO_TEST_SUITE_END()
