// Task hyper-parameters and schedule options from the config: they reach the tasks and the
// schedule, a key the recipe does not use is an error, and the resolved values are kept.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;

namespace {
using Model = cmm::DefaultModel;
const cmm::data::SpecialTokens kSpecial{0, 1, 2};

cmm::Config tiny(std::initializer_list<const char*> overrides = {}) {
  cmm::Config c;
  c.model = cmm::presets::model("tiny");
  c.model.text.vocab_size = 200;
  c.train.steps = 10;
  for (const auto* o : overrides) cmm::apply_override(c, o);
  return c;
}

cmm::Batch pairs(std::int64_t b, std::int64_t image_size) {
  torch::manual_seed(9);
  cmm::Batch batch;
  batch.images = torch::randn({b, 3, image_size, image_size});
  batch.text_ids = torch::randint(3, 200, {b, 6}, torch::kLong);
  batch.text_mask = torch::ones({b, 6}, torch::kLong);
  batch.product_ids = torch::arange(b, torch::kLong);
  return batch;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cmm::Error& e) {
    return e.what();
  }
  return "";
}
bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

using ItcRecipe = cmm::Recipe<Model, cmm::TaskList<tk::ITC<>>, cmm::schedules::FixedFusionSplit<0>>;
using DropoutRecipe = cmm::Recipe<Model, cmm::TaskList<tk::Retrieval<cmm::Text, cmm::Image>>,
                                  cmm::schedules::ModalityDropout<cmm::schedules::FixedFusionSplit<0>>>;
using RandomRecipe = cmm::Recipe<Model, cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>>, cmm::schedules::RandomFusionSplit>;
}  // namespace

BOOST_AUTO_TEST_SUITE(options)

BOOST_AUTO_TEST_CASE(a_temperature_set_in_toml_is_the_one_the_itc_loss_uses) {
  // Fixed at 0.5: the step's ITC loss equals symmetric InfoNCE at 0.5 computed by hand.
  const auto config = tiny({"tasks.itc.temperature=0.5", "tasks.itc.learn_temperature=false"});
  torch::manual_seed(0);
  cmm::train::Step<ItcRecipe> step(Model(config.model), config, kSpecial);
  const auto batch = pairs(6, config.model.image.image_size);
  cmm::TaskContext ctx{0, {}, kSpecial.mask, {}};
  const auto result = step.image_text_pass(batch, ctx);
  // The default (0.07) gives another loss: the option is not a no-op.
  torch::manual_seed(0);
  cmm::train::Step<ItcRecipe> plain(Model(config.model), tiny(), kSpecial);
  const double with_default = plain.image_text_pass(batch, ctx).losses.at("itc");
  torch::NoGradGuard no_grad;
  auto& m = *step.model();
  const auto image = m.embed_image(m.encode_image(batch.images));
  const auto text = m.embed_text(m.encode_text(batch.text_ids, batch.text_mask));
  const auto logits = torch::matmul(image, text.t()) / 0.5;
  const auto targets = torch::arange(6, torch::kLong);
  auto ce = [&](const torch::Tensor& l) { return -torch::log_softmax(l, 1).gather(1, targets.unsqueeze(1)).mean(); };
  const double by_hand = ((ce(logits) + ce(logits.t())) / 2).item<double>();
  BOOST_TEST(result.losses.at("itc") == by_hand, boost::test_tools::tolerance(1e-5));
  BOOST_TEST(result.parts.at("itc/temperature") == 0.5, boost::test_tools::tolerance(1e-6));
  // Not learned: no gradient, so no optimizer moves it.
  BOOST_TEST(!step.heads().named_parameters()["itc.log_inverse"].requires_grad());
  BOOST_TEST(std::abs(with_default - by_hand) > 1e-3);
}

BOOST_AUTO_TEST_CASE(every_resolved_option_is_in_the_config) {
  const auto config = tiny({"tasks.mlm.mask_prob=0.3", "schedule.split_weights=[1, 0, 0]"});
  torch::manual_seed(0);
  cmm::train::Step<RandomRecipe> step(Model(config.model), config, kSpecial);
  const auto& tasks = step.config().tasks;
  BOOST_TEST(tasks.at("mlm").options.at("mask_prob").value.get<double>() == 0.3);
  BOOST_TEST(tasks.at("mlm").options.at("random_token_share").value.get<double>() == 0.1);  // a default
  BOOST_TEST(tasks.at("mim_kl").options.at("teacher_temperature").value.get<double>() == 0.04);
  BOOST_TEST(step.config().schedule.at("split_weights").value.dump() == "[1.0,0.0,0.0]");
  BOOST_TEST(step.schedule().draw(5).split.layers_alone == 0);  // weight only on split 0
  // ... and it survives the JSON round trip a checkpoint makes.
  const auto back = cmm::config_from_json(cmm::to_json(step.config()));
  BOOST_TEST(back.tasks.at("mlm").options.at("mask_prob").value.get<double>() == 0.3);
}

BOOST_AUTO_TEST_CASE(mask_prob_reaches_the_masked_view) {
  // mask_prob 0.5 masks about half the tokens of the MLM view (default: 15%).
  for (double p : {0.15, 0.5}) {
    const auto config = tiny({("tasks.mlm.mask_prob=" + std::to_string(p)).c_str()});
    torch::manual_seed(0);
    cmm::train::Step<cmm::Recipe<Model, cmm::TaskList<tk::MLM>, cmm::schedules::FixedFusionSplit<0>>> step(
        Model(config.model), config, kSpecial);
    const auto batch = pairs(64, config.model.image.image_size);
    cmm::TaskContext ctx{0, {}, kSpecial.mask, {}};
    const auto keys = cmm::SampleKeys::of(batch, static_cast<std::uint64_t>(config.train.seed), 0);
    const auto [ids, labels] = tk::mask_tokens(batch.text_ids, batch.text_mask, kSpecial.mask, 200, keys,
                                               tk::MLM::token_masking(step.options<0>()), 3);
    const double share = labels.ne(-100).sum().item<double>() / static_cast<double>(labels.numel());
    BOOST_TEST(std::abs(share - p) < 0.05);
    BOOST_TEST(step.image_text_pass(batch, ctx).ran);
  }
}

BOOST_AUTO_TEST_CASE(keys_the_recipe_does_not_use_are_errors_with_their_line) {
  auto step_of = [](const cmm::Config& c) {
    return [c] {
      cmm::train::Step<RandomRecipe> s(Model(c.model), c, kSpecial);
    };
  };
  auto e = error_of(step_of(tiny({"tasks.mlm.mask_prb=0.3"})));
  BOOST_TEST(has(e, "tasks.mlm.mask_prb: not an option of task 'mlm' (did you mean 'mask_prob'?)"));
  e = error_of(step_of(tiny({"tasks.mlm.mask_prob=\"x\""})));
  BOOST_TEST(has(e, "tasks.mlm.mask_prob: expected a number"));
  e = error_of(step_of(tiny({"tasks.mlm.mask_prob=1.5"})));
  BOOST_TEST(has(e, "tasks.mlm.mask_prob: must be in [0, 1]"));
  e = error_of(step_of(tiny({"tasks.itm.weight=1"})));
  BOOST_TEST(has(e, "tasks.itm: this recipe has no such task"));
  // RandomFusionSplit has no modality dropout: drop_text would silently do nothing.
  e = error_of(step_of(tiny({"schedule.drop_text=0.5"})));
  BOOST_TEST(has(e, "schedule.drop_text: not an option of this recipe's schedule (valid keys: split_weights)"));
  // From a file: the error names the file and the line.
  const auto path = std::filesystem::temp_directory_path() / "cmm_options_test.toml";
  std::ofstream(path) << "[model]\npreset = \"tiny\"\n[tasks.mim_kl]\nprototypes = 64\nteacher_temprature = 0.1\n";
  const auto from_file = cmm::load_config(path.string());
  e = error_of(step_of(from_file));
  BOOST_TEST_MESSAGE(e);
  BOOST_TEST(has(e, "cmm_options_test.toml:5: tasks.mim_kl.teacher_temprature: not an option of task 'mim_kl' "
                    "(did you mean 'teacher_temperature'?)"));
  // A value the task's check() refuses: the file and the line too.
  std::ofstream(path) << "[model]\npreset = \"tiny\"\n[tasks.mlm]\n\nmask_prob = 1.5\n";
  e = error_of(step_of(cmm::load_config(path.string())));
  BOOST_TEST(has(e, "cmm_options_test.toml:5: tasks.mlm.mask_prob: must be in [0, 1]"), e);
}

BOOST_AUTO_TEST_CASE(itm_takes_a_negative_temperature_only_with_a_policy_that_reads_it) {
  using HardRecipe = cmm::Recipe<Model, cmm::TaskList<tk::ITM<>>, cmm::schedules::FixedFusionSplit<0>>;
  using RandomItmRecipe =
      cmm::Recipe<Model, cmm::TaskList<tk::ITM<cmm::negatives::Random>>, cmm::schedules::FixedFusionSplit<0>>;
  static_assert(cmm::negatives::tempered<cmm::negatives::Hard> && !cmm::negatives::tempered<cmm::negatives::Random>);
  const auto c = tiny({"tasks.itm.negative_temperature=0.2"});
  BOOST_TEST(error_of([&] { cmm::train::Step<HardRecipe> s(Model(c.model), c, kSpecial); }) == "");
  // negatives::Random draws uniformly: the temperature would do nothing, so it is no option.
  const auto e = error_of([&] { cmm::train::Step<RandomItmRecipe> s(Model(c.model), c, kSpecial); });
  BOOST_TEST_MESSAGE(e);
  BOOST_TEST(has(e, "tasks.itm.negative_temperature: not an option of task 'itm'"));
  BOOST_TEST(error_of([&] { cmm::train::Step<RandomItmRecipe> s(Model(c.model), tiny(), kSpecial); }) == "");
}

BOOST_AUTO_TEST_CASE(modality_dropout_without_a_pass_b_task_is_an_error) {
  using PassARecipe = cmm::Recipe<Model, cmm::TaskList<tk::ITC<>>,
                                  cmm::schedules::ModalityDropout<cmm::schedules::FixedFusionSplit<0>>>;
  const auto e = error_of([] {
    const auto c = tiny({"schedule.drop_image=0.3"});
    cmm::train::Step<PassARecipe> s(Model(c.model), c, kSpecial);
  });
  BOOST_TEST_MESSAGE(e);
  BOOST_TEST(has(e, "schedule.drop_image: drops a modality from pass B's sources"));
  BOOST_TEST(error_of([] {
               const auto c = tiny();
               cmm::train::Step<PassARecipe> s(Model(c.model), c, kSpecial);
             }) == "");
  BOOST_TEST(error_of([] {  // with a pass-B task the share applies
               const auto c = tiny({"schedule.drop_image=0.3"});
               cmm::train::Step<DropoutRecipe> s(Model(c.model), c, kSpecial);
             }) == "");
}

BOOST_AUTO_TEST_CASE(schedule_drop_text_drops_that_share_of_the_texts) {
  const auto config = tiny({"schedule.drop_text=0.5", "schedule.drop_image=0.2"});
  torch::manual_seed(0);
  cmm::train::Step<DropoutRecipe> step(Model(config.model), config, kSpecial);
  auto source = pairs(200, config.model.image.image_size), target = pairs(200, config.model.image.image_size);
  std::int64_t text = 0, image = 0, eligible = 0;
  for (std::int64_t s = 0; s < 3; ++s) {
    cmm::TaskContext ctx{s, {}, kSpecial.mask, {}};
    const auto r = step.cross_pair_pass(source, target, ctx, step.schedule().draw(s));
    text += r.dropped_text, image += r.dropped_image, eligible += r.droppable;
  }
  BOOST_TEST(eligible == 600);
  BOOST_TEST(std::abs(static_cast<double>(text) / 600.0 - 0.5) < 0.06);   // ~4 sigma
  BOOST_TEST(std::abs(static_cast<double>(image) / 600.0 - 0.2) < 0.05);
}

// [tasks.retrieval_*] memory: the last targets join the next batches' keys as negatives, by
// hand on 2-d embeddings (temperature 0.5 fixed), and the ring buffer wraps.
BOOST_AUTO_TEST_CASE(a_retrieval_memory_adds_the_last_targets_as_negatives) {
  using Task = tk::Retrieval<cmm::Text, cmm::Image, cmm::gather::Local>;
  tk::RetrievalOptions o;
  o.temperature = 0.5, o.learn_temperature = false, o.memory = 3;
  cmm::ModelConfig model;
  model.embed_dim = 2;
  auto head = Task::make_head(model, o);
  BOOST_REQUIRE(head->memory);
  const auto view_of = [](cmm::Batch& source, cmm::Batch& target, torch::Tensor queries, torch::Tensor keys) {
    cmm::CrossPairView view{&source, &target, {}, {}, {}, {}};
    view.source_embeddings.text = std::move(queries), view.target_embeddings.image = std::move(keys);
    return view;
  };
  const auto batch_of = [](std::initializer_list<std::int64_t> products) {
    cmm::Batch b;
    b.product_ids = torch::tensor(std::vector<std::int64_t>(products), torch::kLong);
    b.text_ids = torch::ones({b.product_ids.size(0), 2}, torch::kLong);
    return b;
  };
  cmm::TaskContext ctx;
  int unused_model = 0;
  // Step 1, empty memory: info_nce_by_hand's batch (products 1, 2).
  auto s1 = batch_of({1, 2}), t1 = batch_of({1, 2});
  const auto k1 = torch::tensor({1.0f, 0.0f, 0.6f, 0.8f}).view({2, 2});
  auto first = Task::loss(head, unused_model, view_of(s1, t1, torch::eye(2), k1), ctx, o);
  const double row0 = -2.0 + std::log(std::exp(2.0) + std::exp(1.2)), row1 = -1.6 + std::log(1.0 + std::exp(1.6));
  BOOST_TEST(first.loss.item<double>() == (row0 + row1) / 2, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(torch::equal(head->memory->products, torch::tensor({1, 2, -1}, torch::kLong)));
  BOOST_TEST(torch::equal(head->memory->keys.narrow(0, 0, 2), k1));
  // Step 2 (products 3, 4; keys [0, 1], [1, 0]): step 1's keys are negatives of both rows.
  auto s2 = batch_of({3, 4}), t2 = batch_of({3, 4});
  const auto k2 = torch::tensor({0.0f, 1.0f, 1.0f, 0.0f}).view({2, 2});
  auto second = Task::loss(head, unused_model, view_of(s2, t2, torch::eye(2), k2), ctx, o);
  // Row 0 (query [1, 0]): positive 0, batch 2, memory 2 and 1.2; row 1 ([0, 1]): positive 0,
  // batch 2, memory 0 and 1.6.
  const double r0 = std::log(1.0 + std::exp(2.0) + std::exp(2.0) + std::exp(1.2));
  const double r1 = std::log(1.0 + std::exp(2.0) + 1.0 + std::exp(1.6));
  BOOST_TEST(second.loss.item<double>() == (r0 + r1) / 2, boost::test_tools::tolerance(1e-6));
  // The ring wrapped: slot 2 then slot 0; the next write goes to slot 1.
  BOOST_TEST(torch::equal(head->memory->products, torch::tensor({4, 2, 3}, torch::kLong)));
  BOOST_TEST(head->memory->next.item<std::int64_t>() == 1);
  BOOST_TEST(torch::equal(head->memory->keys[0], k2[1]));
  // A query of a remembered product leaves that memory row out (product 2 is in slot 1).
  auto s3 = batch_of({2, 5}), t3 = batch_of({2, 5});
  auto third = Task::loss(head, unused_model, view_of(s3, t3, torch::eye(2), k2), ctx, o);
  BOOST_TEST(third.logits[0][3].item<double>() < -1e8);
  BOOST_TEST(third.logits[1][3].item<double>() == 1.6, boost::test_tools::tolerance(1e-6));
  // More keys than rows: the last `rows` stay.
  head->memory->push(torch::arange(8, torch::kFloat).view({4, 2}), torch::tensor({6, 7, 8, 9}, torch::kLong));
  BOOST_TEST(torch::equal(std::get<0>(head->memory->products.sort()), torch::tensor({7, 8, 9}, torch::kLong)));
  // Before memory_start the memory fills but takes no part.
  auto later = o;
  later.memory_start = 1;
  auto late = Task::make_head(model, later);
  cmm::TaskContext at_1;
  at_1.step = 1;
  Task::loss(late, unused_model, view_of(s1, t1, torch::eye(2), k1), ctx, later);  // step 0: fills
  BOOST_TEST(Task::loss(late, unused_model, view_of(s2, t2, torch::eye(2), k2), ctx, later).logits.size(1) == 2);
  const auto used = Task::loss(late, unused_model, view_of(s2, t2, torch::eye(2), k2), at_1, later);
  BOOST_TEST(used.logits.size(1) == 5);
  // A memory of another size than the options ask for (a --resume with another value).
  auto other = o;
  other.memory = 4;
  BOOST_TEST(has(error_of([&] { Task::loss(head, unused_model, view_of(s2, t2, torch::eye(2), k2), ctx, other); }),
                 "tasks.retrieval_text_image.memory: 4 rows, but the checkpoint's memory has 3"));
  // Off by default: no buffers, so checkpoints without a memory load unchanged.
  BOOST_TEST(Task::make_head(model, tk::RetrievalOptions{})->buffers().empty());
  using MemoryRecipe = cmm::Recipe<Model, cmm::TaskList<Task>, cmm::schedules::FixedFusionSplit<0>>;
  auto bad = tiny({"tasks.retrieval_text_image.memory=-1"});
  BOOST_TEST(has(error_of([&] { cmm::train::Step<MemoryRecipe> s(Model(bad.model), bad, kSpecial); }),
                 "tasks.retrieval_text_image.memory"));
  auto idle = tiny({"tasks.retrieval_text_image.memory_start=10"});
  BOOST_TEST(has(error_of([&] { cmm::train::Step<MemoryRecipe> s(Model(idle.model), idle, kSpecial); }),
                 "tasks.retrieval_text_image.memory_start: does nothing"));
}

// distill: ALBEF's mix of the hard InfoNCE and the cross-entropy against the momentum model's
// softmax; momentum_keys: the keys, in the batch and in the memory, are the momentum model's.
// By hand on 2-d embeddings (temperature 0.5 fixed).
BOOST_AUTO_TEST_CASE(momentum_keys_and_distillation_read_the_momentum_embeddings) {
  using Task = tk::Retrieval<cmm::Text, cmm::Image, cmm::gather::Local>;
  tk::RetrievalOptions o;
  o.temperature = 0.5, o.learn_temperature = false, o.distill = 0.4;
  cmm::ModelConfig model;
  model.embed_dim = 2;
  auto head = Task::make_head(model, o);
  cmm::Batch source, target;
  source.product_ids = target.product_ids = torch::tensor({1, 2}, torch::kLong);
  source.text_ids = torch::ones({2, 2}, torch::kLong);
  const auto queries = torch::eye(2).requires_grad_();
  const auto keys = torch::tensor({1.0f, 0.0f, 0.6f, 0.8f}).view({2, 2}).requires_grad_();
  const auto teacher_queries = torch::tensor({0.8f, 0.6f, 0.0f, 1.0f}).view({2, 2}).requires_grad_();
  const auto teacher_keys = torch::eye(2).requires_grad_();
  const auto view_of = [&](bool momentum) {
    cmm::CrossPairView view{&source, &target, {}, {}, {}, {}};
    view.source_embeddings.text = queries, view.target_embeddings.image = keys;
    if (momentum) view.momentum_source.text = teacher_queries, view.momentum_target.image = teacher_keys;
    return view;
  };
  cmm::TaskContext ctx;
  int unused_model = 0;
  auto out = Task::loss(head, unused_model, view_of(true), ctx, o);
  // Student logits [[2, 1.2], [0, 1.6]], the momentum model's [[1.6, 1.2], [0, 2]].
  const auto log_softmax = [](double a, double b, double x) { return x - std::log(std::exp(a) + std::exp(b)); };
  const auto softmax = [&](double a, double b, double x) { return std::exp(log_softmax(a, b, x)); };
  const double hard = (-log_softmax(2, 1.2, 2) - log_softmax(0, 1.6, 1.6)) / 2;
  const double soft = (-(softmax(1.6, 1.2, 1.6) * log_softmax(2, 1.2, 2) + softmax(1.6, 1.2, 1.2) * log_softmax(2, 1.2, 1.2)) -
                       (softmax(0, 2, 0) * log_softmax(0, 1.6, 0) + softmax(0, 2, 2) * log_softmax(0, 1.6, 1.6))) / 2;
  BOOST_TEST(out.parts.at("hard").item<double>() == hard, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(out.parts.at("soft").item<double>() == soft, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(out.loss.item<double>() == 0.6 * hard + 0.4 * soft, boost::test_tools::tolerance(1e-6));
  out.loss.backward();  // the student learns; the momentum embeddings take no gradient
  BOOST_TEST(queries.grad().defined());
  BOOST_TEST(keys.grad().defined());
  BOOST_TEST(!teacher_queries.grad().defined());
  BOOST_TEST(!teacher_keys.grad().defined());
  // Without momentum embeddings in the view, a clear stop rather than a silent fallback.
  BOOST_CHECK_THROW(Task::loss(head, unused_model, view_of(false), ctx, o), c10::Error);

  // momentum_keys with a memory of 2 rows: the keys are the momentum model's ([[1, 0], [0, 1]]:
  // logits [[2, 0], [0, 2]]), the memory keeps them, and the trained model's targets are unused.
  auto moco = o;
  moco.distill = 0, moco.memory = 2, moco.momentum_keys = true;
  auto moco_head = Task::make_head(model, moco);
  queries.mutable_grad() = torch::Tensor(), keys.mutable_grad() = torch::Tensor();
  const auto first = Task::loss(moco_head, unused_model, view_of(true), ctx, moco);
  BOOST_TEST(first.loss.item<double>() == -log_softmax(2, 0, 2), boost::test_tools::tolerance(1e-6));
  first.loss.backward();
  BOOST_TEST(queries.grad().defined());
  BOOST_TEST(!keys.grad().defined());
  BOOST_TEST(!teacher_keys.grad().defined());
  BOOST_TEST(torch::equal(moco_head->memory->keys, torch::eye(2)));
  BOOST_CHECK_THROW(Task::loss(moco_head, unused_model, view_of(false), ctx, moco), c10::Error);

  // What the task asks the step to embed with the momentum model.
  BOOST_TEST(Task::momentum_needs(o).target.has(cmm::Modality::image));
  BOOST_TEST(Task::momentum_needs(o).source.has(cmm::Modality::text));
  BOOST_TEST(Task::momentum_needs(moco).target.has(cmm::Modality::image));
  BOOST_TEST(Task::momentum_needs(moco).source.empty());
  BOOST_TEST(Task::momentum_needs(tk::RetrievalOptions{}).target.empty());
  // Config errors: each names its key.
  using MomentumRecipe = cmm::Recipe<Model, cmm::TaskList<Task>, cmm::schedules::FixedFusionSplit<0>>;
  const auto step_error = [](cmm::Config c) {
    return error_of([&] { cmm::train::Step<MomentumRecipe> s(Model(c.model), c, kSpecial); });
  };
  BOOST_TEST(has(step_error(tiny({"tasks.retrieval_text_image.distill=1"})), "tasks.retrieval_text_image.distill: must be in [0, 1)"));
  for (const auto* key : {"tasks.retrieval_text_image.distill=0.4", "tasks.retrieval_text_image.momentum_keys=true"}) {
    const auto no_average = step_error(tiny({key}));
    BOOST_TEST(has(no_average, "tasks.retrieval_text_image: reads a momentum model"));
    BOOST_TEST(has(no_average, "set train.ema_decay"));
  }
}

// The step embeds pass B's rows with the momentum model it is given: with distill, the hard
// part is the plain task's loss; with momentum_keys, the memory holds the momentum model's
// embeddings of the targets. Without a momentum model the pass stops with an error.
BOOST_AUTO_TEST_CASE(the_step_embeds_with_the_momentum_model) {
  using Task = tk::Retrieval<cmm::Text, cmm::Image>;
  using Recipe = cmm::Recipe<Model, cmm::TaskList<Task>, cmm::schedules::FixedFusionSplit<0>>;
  const auto plain_config = tiny();
  const auto distilled = tiny({"train.ema_decay=0.99", "tasks.retrieval_text_image.distill=0.4"});
  const auto moco = tiny({"train.ema_decay=0.99", "tasks.retrieval_text_image.memory=16",
                          "tasks.retrieval_text_image.momentum_keys=true"});
  torch::manual_seed(3);
  Model weights(plain_config.model);
  torch::manual_seed(4);
  Model momentum(plain_config.model);
  momentum->eval();
  const auto copy_of = [&](const Model& m) {
    Model c(plain_config.model);
    torch::NoGradGuard no_grad;
    auto to = c->named_parameters();
    for (const auto& p : m->named_parameters()) to[p.key()].copy_(p.value());
    return c;
  };
  cmm::train::Step<Recipe> plain(copy_of(weights), plain_config, kSpecial);
  cmm::train::Step<Recipe> step(copy_of(weights), distilled, kSpecial);
  cmm::train::Step<Recipe> keys_step(copy_of(weights), moco, kSpecial);
  auto source = pairs(8, plain_config.model.image.image_size), target = pairs(8, plain_config.model.image.image_size);
  cmm::TaskContext ctx{0, {}, kSpecial.mask, {}};
  BOOST_TEST(has(error_of([&] { step.cross_pair_pass(source, target, ctx, step.schedule().draw(0)); }),
                 "a task reads the momentum model, but the step was given none"));
  step.set_momentum_model(momentum);
  keys_step.set_momentum_model(momentum);
  const auto r = step.cross_pair_pass(source, target, ctx, step.schedule().draw(0));
  const auto p = plain.cross_pair_pass(source, target, ctx, plain.schedule().draw(0));
  const double hard = r.parts.at("retrieval_text_image/hard"), soft = r.parts.at("retrieval_text_image/soft");
  BOOST_TEST(hard == p.losses.at("retrieval_text_image"), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(r.losses.at("retrieval_text_image") == 0.6 * hard + 0.4 * soft, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(std::abs(soft - hard) > 1e-3);  // another model's softmax: not the one-hot target
  // momentum_keys: the memory holds the momentum model's embeddings of the targets.
  keys_step.cross_pair_pass(source, target, ctx, keys_step.schedule().draw(0));
  const auto& memory = keys_step.heads().template get<0>()->memory;
  torch::NoGradGuard no_grad;
  const auto expected = momentum->embed_image(momentum->encode_image(target.images));
  const auto trained = keys_step.model()->embed_image(keys_step.model()->encode_image(target.images));
  BOOST_TEST(torch::allclose(memory->keys.narrow(0, 0, 8), expected, 1e-5, 1e-6));
  BOOST_TEST(!torch::allclose(memory->keys.narrow(0, 0, 8), trained, 1e-3, 1e-3));
}

// tasks.itc.distill: pass A embeds the unmasked view with the momentum model; the hard part
// is the plain ITC loss, and the mix is the step's loss. Without ema_decay, an error.
BOOST_AUTO_TEST_CASE(itc_distills_the_momentum_models_softmax) {
  const auto plain_config = tiny({"tasks.itc.temperature=0.5", "tasks.itc.learn_temperature=false"});
  auto config = plain_config;
  cmm::apply_override(config, "train.ema_decay=0.99");
  cmm::apply_override(config, "tasks.itc.distill=0.4");
  torch::manual_seed(0);
  cmm::train::Step<ItcRecipe> plain(Model(config.model), plain_config, kSpecial);
  torch::manual_seed(0);
  cmm::train::Step<ItcRecipe> step(Model(config.model), config, kSpecial);
  BOOST_TEST(step.needs_momentum_model());
  BOOST_TEST(!plain.needs_momentum_model());
  torch::manual_seed(5);
  Model momentum(config.model);
  momentum->eval();
  const auto batch = pairs(6, config.model.image.image_size);
  cmm::TaskContext ctx{0, {}, kSpecial.mask, {}};
  BOOST_TEST(has(error_of([&] { step.image_text_pass(batch, ctx); }), "a task reads the momentum model, but the step was given none"));
  step.set_momentum_model(momentum);
  const auto r = step.image_text_pass(batch, ctx);
  const double hard = r.parts.at("itc/hard"), soft = r.parts.at("itc/soft");
  BOOST_TEST(hard == plain.image_text_pass(batch, ctx).losses.at("itc"), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(r.losses.at("itc") == 0.6 * hard + 0.4 * soft, boost::test_tools::tolerance(1e-6));
  // The soft term by hand from the momentum model's embeddings, image to text direction.
  torch::NoGradGuard no_grad;
  auto& m = *step.model();
  const auto student = torch::matmul(m.embed_image(m.encode_image(batch.images)),
                                     m.embed_text(m.encode_text(batch.text_ids, batch.text_mask)).t()) / 0.5;
  const auto teacher = torch::matmul(momentum->embed_image(momentum->encode_image(batch.images)),
                                     momentum->embed_text(momentum->encode_text(batch.text_ids, batch.text_mask)).t()) / 0.5;
  const double image_to_text_soft =
      -(torch::softmax(teacher, 1) * torch::log_softmax(student, 1)).sum(1).mean().item<double>();
  const auto student_t = student.t(), teacher_t = teacher.t();
  const double text_to_image_soft =
      -(torch::softmax(teacher_t, 1) * torch::log_softmax(student_t, 1)).sum(1).mean().item<double>();
  BOOST_TEST(soft == (image_to_text_soft + text_to_image_soft) / 2, boost::test_tools::tolerance(1e-5));
  // Errors name the key.
  BOOST_TEST(has(error_of([&] { cmm::train::Step<ItcRecipe> s(Model(config.model), tiny({"tasks.itc.distill=0.4"}), kSpecial); }),
                 "tasks.itc: reads a momentum model"));
  BOOST_TEST(has(error_of([&] { cmm::train::Step<ItcRecipe> s(Model(config.model), tiny({"tasks.itc.distill=-0.1"}), kSpecial); }),
                 "tasks.itc.distill: must be in [0, 1)"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(accumulation)

// train.accumulate = 2 on a batch of 8 takes the step one pass over the 8 takes, for the
// non-contrastive tasks: MLM (normalised by the whole batch's masked tokens, which differ
// between the micro-batches), MIM-kl (its centre moves once per step) and MIM-fr. Plain SGD,
// so parameters differ exactly as gradients do.
BOOST_AUTO_TEST_CASE(two_micro_batches_of_b_equal_one_batch_of_2b) {
  using Recipe = cmm::Recipe<Model, cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>>,
                             cmm::schedules::FixedFusionSplit<0>>;
  auto run = [](std::int64_t accumulate) {
    auto config = tiny({("train.accumulate=" + std::to_string(accumulate)).c_str()});
    torch::manual_seed(0);
    cmm::train::Step<Recipe> step(Model(config.model), config, kSpecial);
    torch::optim::SGD sgd(step.parameters(), torch::optim::SGDOptions(0.5));
    const auto batch = pairs(8, config.model.image.image_size);
    const auto r = step.run(&batch, nullptr, nullptr, sgd, 3);
    step.run(&batch, nullptr, nullptr, sgd, 4);  // a second step sees the first one's MIM-kl centre
    std::map<std::string, torch::Tensor> state;
    for (auto& p : step.model()->named_parameters()) state[p.key()] = p.value().detach().clone();
    for (auto& p : step.heads().named_parameters()) state["heads." + p.key()] = p.value().detach().clone();
    for (auto& p : step.heads().named_buffers()) state["heads." + p.key()] = p.value().clone();
    return std::make_tuple(r.image_text.losses, state, step.counters());
  };
  const auto [whole_loss, whole, whole_counts] = run(1);
  const auto [micro_loss, micro, micro_counts] = run(2);
  BOOST_TEST(micro_counts.backward == 4);
  BOOST_TEST(micro_counts.optimizer_steps == 2);
  BOOST_TEST(whole_counts.backward == 2);
  for (const auto& [task, value] : whole_loss)
    BOOST_TEST_CONTEXT(task) { BOOST_TEST(micro_loss.at(task) == value, boost::test_tools::tolerance(1e-5)); }
  double worst = 0, moved = 0;
  for (const auto& [name, tensor] : whole) worst = std::max(worst, (micro.at(name) - tensor).abs().max().item<double>());
  torch::manual_seed(0);
  Model untouched(tiny().model);
  for (auto& p : untouched->named_parameters()) moved = std::max(moved, (whole.at(p.key()) - p.value()).abs().max().item<double>());
  BOOST_TEST(worst < 1e-5);
  BOOST_TEST(moved > 1e-3);  // the step did move the weights
}

BOOST_AUTO_TEST_CASE(a_batch_that_does_not_divide_is_refused_with_the_key) {
  auto config = tiny({"train.accumulate=16"});
  torch::manual_seed(0);
  cmm::train::Step<ItcRecipe> step(Model(config.model), config, kSpecial);
  torch::optim::SGD sgd(step.parameters(), torch::optim::SGDOptions(0.5));
  const auto batch = pairs(8, config.model.image.image_size);
  BOOST_TEST(has(error_of([&] { step.run(&batch, nullptr, nullptr, sgd, 0); }), "train.accumulate: a batch of 8 rows"));
  BOOST_TEST(has(error_of([] { tiny({"train.accumulate=0"}); }), "train.accumulate: must be at least 1"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ema_teacher)

// teacher <- m teacher + (1 - m) student after each optimizer step, m from the config.
BOOST_AUTO_TEST_CASE(the_ema_update_follows_the_formula_with_the_configured_momentum) {
  using Recipe = cmm::Recipe<Model, cmm::TaskList<tk::MIM<cmm::losses::FeatureRegression, cmm::teachers::Ema<996>>>,
                             cmm::schedules::FixedFusionSplit<0>>;
  const auto config = tiny({"tasks.mim_fr.teacher_momentum=0.75"});
  torch::manual_seed(0);
  cmm::train::Step<Recipe> step(Model(config.model), config, kSpecial);
  torch::optim::SGD sgd(step.parameters(), torch::optim::SGDOptions(0.5));
  const auto teacher = step.teacher_module();
  BOOST_REQUIRE(teacher);
  std::map<std::string, torch::Tensor> before;
  for (auto& p : teacher->named_parameters()) before[p.key()] = p.value().detach().clone();
  const auto batch = pairs(4, config.model.image.image_size);
  step.run(&batch, nullptr, nullptr, sgd, 0);
  const auto student = step.model()->image_encoder()->named_parameters();
  double worst = 0, moved = 0;
  for (auto& p : teacher->named_parameters()) {
    const auto expected = before.at(p.key()) * 0.75 + student[p.key()].detach() * 0.25;
    worst = std::max(worst, (p.value() - expected).abs().max().item<double>());
    moved = std::max(moved, (p.value() - before.at(p.key())).abs().max().item<double>());
  }
  BOOST_TEST(worst < 1e-6);
  BOOST_TEST(moved > 1e-4);  // the student moved, so the teacher did
  auto bad = tiny({"tasks.mim_fr.teacher_momentum=1.5"});
  BOOST_TEST(has(error_of([&] { cmm::train::Step<Recipe> s(Model(bad.model), bad, kSpecial); }),
                 "tasks.mim_fr.teacher_momentum: must be in (0, 1)"));
}

BOOST_AUTO_TEST_SUITE_END()
