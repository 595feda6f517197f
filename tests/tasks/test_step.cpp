#include <boost/test/unit_test.hpp>

#include <cmath>
#include <tuple>
#include <utility>

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

#include "support.hpp"

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
using tasks_test::kSpecial;
using tasks_test::tiny_config;

namespace {
using Model = cmm::DefaultModel;
using Schedule = cmm::schedules::RandomFusionSplit;

using PassA = std::tuple<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                         tk::ITM<cmm::negatives::Hard>>;
using AllTasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>,
                               tk::ITC<>, tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;

// Random items, the first with two padding tokens.
cmm::Batch image_text_batch(std::int64_t b, std::uint64_t seed) {
  auto batch = tasks_test::random_batch(b, seed);
  batch.text_mask.narrow(1, 6, 2).select(0, 0).fill_(0);
  return batch;
}

// Sources mixing queries (text only), views (image only) and posts (both).
std::pair<cmm::Batch, cmm::Batch> cross_pair_batch(std::int64_t b, std::uint64_t seed) {
  auto source = image_text_batch(b, seed), target = image_text_batch(b, seed + 1);
  target.product_ids = source.product_ids.clone();
  source.text_present = torch::ones({b}, torch::kBool);
  source.image_present = torch::ones({b}, torch::kBool);
  for (std::int64_t i = 0; i < b; i += 3) source.image_present[i] = false;
  for (std::int64_t i = 1; i < b; i += 3) source.text_present[i] = false;
  return {source, target};
}

template <class Tasks, class Schedule = cmm::schedules::RandomFusionSplit, class Update = cmm::update::OneStep>
struct Fixture {
  using Recipe = cmm::Recipe<Model, Tasks, Schedule, Update>;
  explicit Fixture(cmm::Config config = tiny_config())
      : step(Model(config.model), config, kSpecial),
        optimizer(step.parameters(), torch::optim::AdamWOptions(1e-3)) {}
  cmm::train::Step<Recipe> step;
  torch::optim::AdamW optimizer;
};

// Every non-empty subset of the five pass-A tasks, as a TaskList, from a bit mask.
template <unsigned Mask, std::size_t... I>
auto subset_list(std::index_sequence<I...>)
    -> cmm::TaskList<std::tuple_element_t<I, PassA>...>;
template <unsigned Mask, class Picked, std::size_t I> struct pick;
template <unsigned Mask, std::size_t... P, std::size_t I>
struct pick<Mask, std::index_sequence<P...>, I> {
  using next = std::conditional_t<(Mask >> I) & 1u, std::index_sequence<P..., I>, std::index_sequence<P...>>;
  using type = typename pick<Mask, next, I + 1>::type;
};
template <unsigned Mask, std::size_t... P>
struct pick<Mask, std::index_sequence<P...>, 5> { using type = std::index_sequence<P...>; };
template <unsigned Mask>
using Subset = decltype(subset_list<Mask>(typename pick<Mask, std::index_sequence<>, 0>::type{}));
}  // namespace

BOOST_AUTO_TEST_SUITE(step_planner)

BOOST_AUTO_TEST_CASE(all_fourteen_tasks_make_two_backward_passes) {
  Fixture<AllTasks> f;
  BOOST_TEST(f.step.active_tasks().size() == 14u);
  const auto a = image_text_batch(6, 1);
  const auto [source, target] = cross_pair_batch(6, 2);
  f.step.model()->reset_calls();
  const auto result = f.step.run(&a, &source, &target, f.optimizer, 0);
  BOOST_TEST(f.step.counters().backward == 2);
  BOOST_TEST(f.step.counters().optimizer_steps == 1);
  BOOST_TEST(result.image_text.losses.size() == 5u);
  BOOST_TEST(result.cross_pair.losses.size() == 9u);
  BOOST_TEST(result.cross_pair.losses.count("retrieval_text_multimodal") == 1u);
  const auto& calls = f.step.model()->calls();
  BOOST_TEST(calls.image_encoder == 3);  // pass A: masked view + clean teacher; pass B: one call
  BOOST_TEST(calls.text_encoder == 2);   // one per pass
  BOOST_TEST(calls.fusion == 2);         // pass A shared view + ITM negatives in one call; pass B one
  for (const auto& [name, value] : result.image_text.losses) BOOST_TEST(std::isfinite(value), name);
  for (const auto& [name, value] : result.cross_pair.losses) BOOST_TEST(std::isfinite(value), name);
}

BOOST_AUTO_TEST_CASE(separate_views_encode_the_unmasked_inputs_once_more) {
  auto config = tiny_config();
  config.train.views = "separate";
  Fixture<AllTasks> f(config);
  const auto a = image_text_batch(6, 1);
  const auto [source, target] = cross_pair_batch(6, 2);
  f.step.model()->reset_calls();
  const auto result = f.step.run(&a, &source, &target, f.optimizer, 0);
  const auto& calls = f.step.model()->calls();
  BOOST_TEST(calls.image_encoder == 3);  // pass A: masked view, unmasked view (also MIM's teacher); pass B: one
  BOOST_TEST(calls.text_encoder == 3);   // pass A: masked and unmasked; pass B: one
  BOOST_TEST(calls.fusion == 2);         // pass A: both views and ITM's negatives in one call; pass B: one
  BOOST_TEST(result.image_text.losses.size() == 5u);
  for (const auto& [name, value] : result.image_text.losses) BOOST_TEST(std::isfinite(value), name);
}

BOOST_AUTO_TEST_CASE(separate_views_without_masking_are_an_error) {
  auto config = tiny_config();
  config.train.views = "separate";
  BOOST_CHECK_EXCEPTION(Fixture<cmm::TaskList<tk::ITC<>>>{config}, cmm::Error,
                        [](const cmm::Error& e) { return e.where().field == "train.views"; });
}

// ITC reads the unmasked view: next to MLM and MIM its loss is what it is alone, on the same
// weights and batch; with one shared masked view it is not.
BOOST_AUTO_TEST_CASE(itc_sees_the_unmasked_view) {
  using Masking = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>, tk::ITM<cmm::negatives::Hard>>;
  const auto a = image_text_batch(6, 21);
  const auto itc_loss = [&]<class Tasks>(Tasks, const std::string& views) {
    auto config = tiny_config();
    config.train.views = views;
    torch::manual_seed(5);
    Fixture<Tasks> f(config);
    return f.step.run(&a, nullptr, nullptr, f.optimizer, 0).image_text.losses.at("itc");
  };
  const double alone = itc_loss(cmm::TaskList<tk::ITC<>>{}, "shared");  // nothing masked: one view
  const double separate = itc_loss(Masking{}, "separate"), shared = itc_loss(Masking{}, "shared");
  BOOST_TEST(separate == alone, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(std::abs(shared - alone) > 1e-4, "shared " << shared << " alone " << alone);
}

BOOST_AUTO_TEST_CASE(itc_only_never_fuses) {
  Fixture<cmm::TaskList<tk::ITC<>>> f;
  const auto a = image_text_batch(4, 3);
  const auto [source, target] = cross_pair_batch(4, 4);
  f.step.model()->reset_calls();
  f.step.run(&a, &source, &target, f.optimizer, 0);
  BOOST_TEST(f.step.model()->calls().fusion == 0);
  BOOST_TEST(f.step.model()->calls().image_encoder == 1);
  BOOST_TEST(f.step.counters().backward == 1);
  BOOST_TEST(f.step.counters().cross_pair_passes == 0);
}

BOOST_AUTO_TEST_CASE(pass_b_only_never_builds_pass_a) {
  Fixture<cmm::TaskList<tk::Retrieval<cmm::Text, cmm::Image>>> f;
  const auto a = image_text_batch(4, 5);
  const auto [source, target] = cross_pair_batch(6, 6);
  f.step.model()->reset_calls();
  const auto result = f.step.run(&a, &source, &target, f.optimizer, 0);
  BOOST_TEST(f.step.counters().image_text_passes == 0);
  BOOST_TEST(!result.image_text.ran);
  BOOST_TEST(f.step.model()->calls().fusion == 0);  // no multimodal embedding asked for
  BOOST_TEST(f.step.model()->calls().text_encoder == 1);
  BOOST_TEST(f.step.model()->calls().image_encoder == 1);
}

BOOST_AUTO_TEST_CASE(every_subset_of_pass_a_compiles_and_steps) {
  int stepped = 0;
  [&]<unsigned... M>(std::integer_sequence<unsigned, M...>) {
    (([&] {
       Fixture<Subset<M + 1>> f;
       const auto a = image_text_batch(4, M);
       const auto r = f.step.run(&a, nullptr, nullptr, f.optimizer, 0);
       BOOST_TEST(r.image_text.ran);
       BOOST_TEST(r.image_text.losses.size() == static_cast<std::size_t>(__builtin_popcount(M + 1)));
       BOOST_TEST(std::isfinite(r.image_text.total));
       ++stepped;
     }()),
     ...);
  }(std::make_integer_sequence<unsigned, 31>{});
  BOOST_TEST(stepped == 31);
}

BOOST_AUTO_TEST_CASE(identical_batch_gives_no_nan) {
  Fixture<AllTasks> f;
  auto a = image_text_batch(5, 7);
  a.images = a.images.narrow(0, 0, 1).expand({5, 3, 32, 32}).contiguous();
  a.text_ids = a.text_ids.narrow(0, 0, 1).expand({5, 8}).contiguous();
  a.text_mask = torch::ones({5, 8}, torch::kLong);
  a.product_ids = torch::zeros({5}, torch::kLong);  // one product: no negative exists anywhere
  auto [source, target] = cross_pair_batch(5, 8);
  source.product_ids.zero_();
  target.product_ids.zero_();
  for (int s = 0; s < 3; ++s) {
    const auto r = f.step.run(&a, &source, &target, f.optimizer, s);
    for (const auto& [name, value] : r.image_text.losses) BOOST_TEST(std::isfinite(value), name);
    for (const auto& [name, value] : r.cross_pair.losses) BOOST_TEST(std::isfinite(value), name);
  }
  for (const auto& p : f.step.parameters()) BOOST_TEST(torch::isfinite(p).all().item<bool>());
}

// The whole story (both passes, gradients, optimizer state, buffers) is in test_nonfinite.cpp.
BOOST_AUTO_TEST_CASE(nan_loss_skips_the_update) {
  Fixture<cmm::TaskList<tk::ITC<>>> f;
  auto a = image_text_batch(4, 9);
  a.images[0][0][0][0] = std::nan("");
  const auto before = f.step.model()->image_head->weight.clone();
  const auto r = f.step.run(&a, nullptr, nullptr, f.optimizer, 3);
  BOOST_TEST(r.skipped);
  BOOST_TEST(r.image_text.nonfinite.rfind("loss of tasks.itc is ", 0) == 0u, r.image_text.nonfinite);
  BOOST_TEST(f.step.model()->image_head->weight.equal(before));
}

BOOST_AUTO_TEST_CASE(weights_switch_tasks_and_unknown_names_fail) {
  auto config = tiny_config();
  config.tasks["itm"].weight = 0.0;
  config.tasks["mlm"].weight = 0.5;
  Fixture<AllTasks> f(config);
  BOOST_TEST(f.step.active_tasks().size() == 13u);
  const auto a = image_text_batch(4, 10);
  const auto r = f.step.run(&a, nullptr, nullptr, f.optimizer, 0);
  BOOST_TEST(r.image_text.losses.count("itm") == 0u);
  auto bad = tiny_config();
  bad.tasks["itcc"].weight = 1.0;
  BOOST_CHECK_EXCEPTION((Fixture<AllTasks>(bad)), cmm::Error, [](const cmm::Error& e) {
    return e.where().field == "tasks.itcc" && std::string(e.what()).find("did you mean 'itc'") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(per_pass_update_steps_twice) {
  Fixture<AllTasks, Schedule, cmm::update::PerPass> f;
  const auto a = image_text_batch(4, 11);
  const auto [source, target] = cross_pair_batch(4, 12);
  f.step.run(&a, &source, &target, f.optimizer, 0);
  BOOST_TEST(f.step.counters().optimizer_steps == 2);
}

BOOST_AUTO_TEST_CASE(ema_teacher_follows_the_student) {
  using Ema = cmm::teachers::Ema<900>;
  Fixture<cmm::TaskList<tk::MIM<cmm::losses::FeatureRegression, Ema>, tk::MIM<cmm::losses::KL, Ema>>> f;
  const auto a = image_text_batch(4, 13);
  const auto r = f.step.run(&a, nullptr, nullptr, f.optimizer, 0);
  BOOST_TEST(r.image_text.losses.size() == 2u);
  BOOST_TEST(f.step.model()->calls().image_encoder == 1);  // the EMA copy is not the model
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sampling)

// Keys for rows 0..n-1 at (seed 1, step `step`).
cmm::SampleKeys keys_for(std::int64_t rows, std::int64_t step = 0) {
  cmm::SampleKeys keys{1, step, {}};
  for (std::int64_t i = 0; i < rows; ++i) keys.index.push_back(i);
  return keys;
}

BOOST_AUTO_TEST_CASE(hard_negatives_never_share_a_product) {
  torch::manual_seed(1);
  const auto products = torch::tensor({0, 0, 1, 2, 2, 3}, torch::kLong);
  const auto own = torch::arange(6, torch::kLong);
  const auto ok = cmm::negatives::allowed(own, 6, products, products);
  for (int trial = 0; trial < 50; ++trial) {
    const auto sim = torch::randn({6, 6});
    const auto picked = cmm::negatives::Hard::sample(sim, ok, keys_for(6, trial).uniforms(cmm::random::Stream::itm_text));
    for (int i = 0; i < 6; ++i) {
      const auto j = picked[i].item<std::int64_t>();
      BOOST_REQUIRE(j >= 0);
      BOOST_TEST(products[j].item<std::int64_t>() != products[i].item<std::int64_t>());
    }
  }
  // NaN and all-zero similarities fall back to uniform; one product everywhere: no negative.
  const auto nan = torch::full({3, 3}, std::nan(""));
  const auto three = torch::arange(3, torch::kLong), distinct = torch::tensor({0, 1, 2}, torch::kLong);
  const auto picked = cmm::negatives::Hard::sample(nan, cmm::negatives::allowed(three, 3, distinct, distinct), {0.1, 0.5, 0.9});
  BOOST_TEST(picked.ge(0).all().item<bool>());
  BOOST_TEST(picked.ne(three).all().item<bool>());
  const auto same = torch::zeros({3}, torch::kLong);
  const auto none = cmm::negatives::Random::sample(torch::zeros({3, 3}), cmm::negatives::allowed(three, 3, same, same), {0.1, 0.5, 0.9});
  BOOST_TEST(none.eq(-1).all().item<bool>());
}

BOOST_AUTO_TEST_CASE(negatives_invert_the_cdf) {
  // Weights of row 0 over columns (1, 2) are 1/3 and 2/3 (Random: uniform 1/2 each).
  const auto ok = cmm::negatives::allowed(torch::tensor({0}, torch::kLong), 3);
  auto w = torch::tensor({{0.0, 1.0, 2.0}}, torch::kDouble);
  BOOST_TEST(cmm::negatives::detail::draw(w, ok, {0.30})[0].item<std::int64_t>() == 1);
  BOOST_TEST(cmm::negatives::detail::draw(w, ok, {0.34})[0].item<std::int64_t>() == 2);
  BOOST_TEST(cmm::negatives::Random::sample(w, ok, {0.49})[0].item<std::int64_t>() == 1);
  BOOST_TEST(cmm::negatives::Random::sample(w, ok, {0.51})[0].item<std::int64_t>() == 2);
}

BOOST_AUTO_TEST_CASE(hard_negatives_follow_similarity) {
  auto sim = torch::zeros({1, 3});
  sim[0][2] = 1.0;  // for row 0, column 2 is far more similar than column 1
  const auto ok = cmm::negatives::allowed(torch::tensor({0}, torch::kLong), 3);
  int picked_two = 0;
  for (int t = 0; t < 200; ++t)
    picked_two += cmm::negatives::Hard::sample(sim, ok, keys_for(1, t).uniforms(cmm::random::Stream::itm_text))[0].item<std::int64_t>() == 2;
  BOOST_TEST(picked_two > 190);  // softmax(1/0.07) vs 1: essentially always
}

BOOST_AUTO_TEST_CASE(token_masking_rates) {
  const auto ids = torch::randint(10, 1000, {200, 100}, torch::kLong);
  auto mask = torch::ones({200, 100}, torch::kLong);
  mask.narrow(1, 90, 10).fill_(0);
  const auto keys = keys_for(200, 3);
  const auto [masked, labels] = tk::mask_tokens(ids, mask, 5, 1000, keys);
  const auto chosen = labels.ne(-100);
  const double rate = chosen.sum().item<double>() / 18000.0;
  BOOST_TEST(std::abs(rate - 0.15) < 0.01);
  BOOST_TEST(!chosen.narrow(1, 90, 10).any().item<bool>());  // padding never masked
  BOOST_TEST(labels.index({chosen}).equal(ids.index({chosen})));
  const double n = chosen.sum().item<double>();
  const double as_mask = masked.index({chosen}).eq(5).sum().item<double>() / n;
  const double kept = masked.index({chosen}).eq(ids.index({chosen})).sum().item<double>() / n;
  BOOST_TEST(std::abs(as_mask - 0.8) < 0.03);
  BOOST_TEST(std::abs(kept - 0.1) < 0.03);  // (random picks equal to the original are rare)
  BOOST_TEST(masked.index({chosen.logical_not()}).equal(ids.index({chosen.logical_not()})));
  const auto patches = tk::mask_patches(64, 0.4, keys_for(4));
  BOOST_TEST(patches.sum(1).eq(26).all().item<bool>());
}

// A row's draws depend on its global index, not on its batch, its position or the padding.
BOOST_AUTO_TEST_CASE(masks_follow_the_global_row_not_the_batch) {
  const auto ids = torch::randint(10, 1000, {4, 30}, torch::kLong);
  const auto mask = torch::ones({4, 30}, torch::kLong);
  const auto whole = tk::mask_tokens(ids, mask, 5, 1000, keys_for(4, 7));
  // Rows 2 and 3 alone, as a second rank holds them, padded to a longer length.
  const auto tail = torch::constant_pad_nd(ids.narrow(0, 2, 2), {0, 10}, 0);
  const auto tail_mask = torch::constant_pad_nd(mask.narrow(0, 2, 2), {0, 10}, 0);
  const auto shard = tk::mask_tokens(tail, tail_mask, 5, 1000, cmm::SampleKeys{1, 7, {2, 3}});
  BOOST_TEST(shard.first.narrow(1, 0, 30).equal(whole.first.narrow(0, 2, 2)));
  BOOST_TEST(shard.second.narrow(1, 0, 30).equal(whole.second.narrow(0, 2, 2)));
  const auto patches = tk::mask_patches(16, 0.5, keys_for(4, 7));
  BOOST_TEST(tk::mask_patches(16, 0.5, cmm::SampleKeys{1, 7, {2, 3}}).equal(patches.narrow(0, 2, 2)));
  BOOST_TEST(!tk::mask_patches(16, 0.5, keys_for(4, 8)).equal(patches));  // another step, other draws
}

BOOST_AUTO_TEST_SUITE_END()
