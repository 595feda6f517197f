#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/schedules/schedules.hpp>

namespace sch = commercemm::schedules;
using commercemm::Error;

static_assert(sch::Schedule<sch::FixedFusionSplit<0>>);
static_assert(sch::Schedule<sch::FixedFusionSplit<3>>);
static_assert(sch::Schedule<sch::RandomFusionSplit>);
static_assert(sch::Schedule<sch::LinearSplitRamp>);
static_assert(sch::Schedule<sch::ModalityDropout<sch::RandomFusionSplit>>);
static_assert(sch::Schedule<sch::ModalityDropout<sch::LinearSplitRamp>>);
static_assert(sch::Schedule<sch::ModalityDropout<sch::FixedFusionSplit<2>>>);
static_assert(!sch::Schedule<int>);

namespace {

sch::ScheduleOptions options(std::int64_t depth, std::uint64_t seed = 7) {
  sch::ScheduleOptions o;
  o.depth = depth;
  o.seed = seed;
  o.total_steps = 20000;
  return o;
}

// Runs `make()` and checks it throws an Error whose field is `field`.
template <class F>
void expect_error_on(F make, const std::string& field) {
  try {
    make();
    BOOST_ERROR("expected an Error on field " + field);
  } catch (const Error& e) {
    BOOST_TEST(e.where().field == field);
    BOOST_TEST(std::string(e.what()).find(field) != std::string::npos);
  }
}

template <class S>
std::vector<double> split_frequencies(const S& schedule, std::int64_t depth, std::int64_t from,
                                      std::int64_t count) {
  std::vector<double> freq(static_cast<std::size_t>(depth + 1), 0.0);
  for (std::int64_t step = from; step < from + count; ++step) {
    const auto s = schedule.draw(step).split.layers_alone;
    BOOST_REQUIRE(s >= 0);
    BOOST_REQUIRE(s <= depth);
    freq[static_cast<std::size_t>(s)] += 1.0 / static_cast<double>(count);
  }
  return freq;
}

commercemm::Batch both_modalities(std::int64_t rows) {
  commercemm::Batch b;
  b.text_ids = torch::ones({rows, 4}, torch::kLong);
  b.text_mask = torch::ones({rows, 4}, torch::kLong);
  b.images = torch::zeros({rows, 3, 2, 2});
  return b;
}

std::vector<bool> to_vector(const torch::Tensor& mask) {
  auto m = mask.to(torch::kBool).contiguous();
  std::vector<bool> out;
  for (std::int64_t i = 0; i < m.size(0); ++i) out.push_back(m[i].item<bool>());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(schedules)

BOOST_AUTO_TEST_CASE(fixed_split_is_always_s) {
  const sch::FixedFusionSplit<2> fixed(options(4));
  for (std::int64_t step = 0; step < 100; ++step) {
    const auto d = fixed.draw(step);
    BOOST_TEST(d.split.layers_alone == 2);
    BOOST_TEST(d.drop_text == 0.0);
    BOOST_TEST(d.drop_image == 0.0);
  }
  BOOST_TEST(sch::FixedFusionSplit<4>(options(4)).draw(0).split.layers_alone == 4);
  expect_error_on([] { sch::FixedFusionSplit<5> f(options(4)); }, "depth");
  expect_error_on([] { sch::FixedFusionSplit<0> f(options(-1)); }, "depth");
}

BOOST_AUTO_TEST_CASE(random_split_is_a_pure_function_of_seed_and_step) {
  const sch::RandomFusionSplit a(options(6, 11));
  const sch::RandomFusionSplit b(options(6, 11));
  // Draw b's steps in reverse: the order of calls must not matter (a resumed run).
  std::vector<std::int64_t> forward, backward(500);
  for (std::int64_t step = 0; step < 500; ++step) forward.push_back(a.draw(step).split.layers_alone);
  for (std::int64_t step = 499; step >= 0; --step)
    backward[static_cast<std::size_t>(step)] = b.draw(step).split.layers_alone;
  BOOST_TEST(forward == backward);
  BOOST_TEST(a.draw(123).split.layers_alone == a.draw(123).split.layers_alone);

  const sch::RandomFusionSplit other_seed(options(6, 12));
  int differ = 0;
  for (std::int64_t step = 0; step < 500; ++step)
    differ += other_seed.draw(step).split.layers_alone != forward[static_cast<std::size_t>(step)];
  BOOST_TEST(differ > 300);
}

BOOST_AUTO_TEST_CASE(random_split_uniform_covers_every_split) {
  const std::int64_t depth = 6;
  const auto freq = split_frequencies(sch::RandomFusionSplit(options(depth)), depth, 0, 20000);
  for (double f : freq) BOOST_TEST(std::abs(f - 1.0 / (depth + 1)) < 0.02);
}

BOOST_AUTO_TEST_CASE(random_split_matches_explicit_weights) {
  auto o = options(4);
  o.split_weights = {4.0, 0.0, 1.0, 2.0, 3.0};  // normalised: .4 .0 .1 .2 .3
  const auto freq = split_frequencies(sch::RandomFusionSplit(o), 4, 0, 20000);
  const std::vector<double> expected{0.4, 0.0, 0.1, 0.2, 0.3};
  for (std::size_t s = 0; s < expected.size(); ++s) BOOST_TEST(std::abs(freq[s] - expected[s]) < 0.02);
  BOOST_TEST(freq[1] == 0.0);  // zero weight: never drawn

  auto last_zero = options(2);
  last_zero.split_weights = {1.0, 1.0, 0.0};
  BOOST_TEST(split_frequencies(sch::RandomFusionSplit(last_zero), 2, 0, 5000)[2] == 0.0);
}

BOOST_AUTO_TEST_CASE(random_split_rejects_bad_weights) {
  auto wrong_length = options(3);
  wrong_length.split_weights = {1.0, 1.0, 1.0};
  expect_error_on([&] { sch::RandomFusionSplit r(wrong_length); }, "split_weights");
  auto negative = options(2);
  negative.split_weights = {1.0, -0.5, 1.0};
  expect_error_on([&] { sch::RandomFusionSplit r(negative); }, "split_weights");
  auto zeros = options(2);
  zeros.split_weights = {0.0, 0.0, 0.0};
  expect_error_on([&] { sch::RandomFusionSplit r(zeros); }, "split_weights");
  auto nan = options(1);
  nan.split_weights = {1.0, std::nan("")};
  expect_error_on([&] { sch::RandomFusionSplit r(nan); }, "split_weights");
  expect_error_on([] { sch::RandomFusionSplit r(options(-2)); }, "depth");
}

BOOST_AUTO_TEST_CASE(linear_ramp_moves_from_p0_to_p1) {
  const std::int64_t depth = 4;
  auto o = options(depth);
  o.total_steps = 200000;
  o.two_tower_start = 0.1;
  o.two_tower_end = 0.8;
  const sch::LinearSplitRamp ramp(o);
  BOOST_TEST(ramp.two_tower_probability(0) == 0.1);
  BOOST_TEST(ramp.two_tower_probability(o.total_steps) == 0.8);
  BOOST_TEST(ramp.two_tower_probability(10 * o.total_steps) == 0.8);
  // Over the first and last 1% of training p(t) moves by 0.007, well inside the tolerance.
  const auto start = split_frequencies(ramp, depth, 0, 2000);
  const auto end = split_frequencies(ramp, depth, o.total_steps - 2000, 2000);
  BOOST_TEST(std::abs(start[depth] - 0.1) < 0.03);
  BOOST_TEST(std::abs(end[depth] - 0.8) < 0.03);
  // The fused splits share the rest uniformly.
  for (std::int64_t s = 0; s < depth; ++s) {
    BOOST_TEST(std::abs(start[static_cast<std::size_t>(s)] - 0.9 / depth) < 0.03);
    BOOST_TEST(std::abs(end[static_cast<std::size_t>(s)] - 0.2 / depth) < 0.03);
  }
  BOOST_TEST(ramp.draw(777).split.layers_alone == sch::LinearSplitRamp(o).draw(777).split.layers_alone);
  BOOST_TEST(sch::LinearSplitRamp(options(0)).draw(5).split.layers_alone == 0);
}

BOOST_AUTO_TEST_CASE(linear_ramp_rejects_bad_options) {
  auto steps = options(2);
  steps.total_steps = 0;
  expect_error_on([&] { sch::LinearSplitRamp r(steps); }, "total_steps");
  auto start = options(2);
  start.two_tower_start = 1.5;
  expect_error_on([&] { sch::LinearSplitRamp r(start); }, "two_tower_start");
  auto end = options(2);
  end.two_tower_end = -0.1;
  expect_error_on([&] { sch::LinearSplitRamp r(end); }, "two_tower_end");
}

BOOST_AUTO_TEST_CASE(modality_dropout_wraps_its_base) {
  auto o = options(3);
  o.drop_text = 0.2;
  o.drop_image = 0.3;
  const sch::ModalityDropout<sch::RandomFusionSplit> dropout(o);
  const sch::RandomFusionSplit base(o);
  for (std::int64_t step = 0; step < 50; ++step) {
    const auto d = dropout.draw(step);
    BOOST_TEST(d.split.layers_alone == base.draw(step).split.layers_alone);
    BOOST_TEST(d.drop_text == 0.2);
    BOOST_TEST(d.drop_image == 0.3);
  }
  const auto j = sch::to_json(dropout.draw(0));
  BOOST_TEST(j.at("split").get<std::int64_t>() == base.draw(0).split.layers_alone);
  BOOST_TEST(j.at("drop_text").get<double>() == 0.2);
  BOOST_TEST(j.at("drop_image").get<double>() == 0.3);

  auto bad_text = options(3);
  bad_text.drop_text = 1.2;
  expect_error_on([&] { sch::ModalityDropout<sch::FixedFusionSplit<0>> m(bad_text); }, "drop_text");
  auto bad_image = options(3);
  bad_image.drop_image = -0.2;
  expect_error_on([&] { sch::ModalityDropout<sch::FixedFusionSplit<0>> m(bad_image); }, "drop_image");
  auto too_much = options(3);
  too_much.drop_text = 0.6;
  too_much.drop_image = 0.6;
  expect_error_on([&] { sch::ModalityDropout<sch::FixedFusionSplit<0>> m(too_much); }, "drop_image");
  // The base's own validation still runs.
  expect_error_on([] { sch::ModalityDropout<sch::FixedFusionSplit<9>> m(options(3)); }, "depth");
}

BOOST_AUTO_TEST_CASE(apply_dropout_drops_the_requested_share) {
  const std::int64_t rows = 20000;
  auto batch = both_modalities(rows);
  const sch::Draw draw{commercemm::FusionSplit{0}, 0.15, 0.25};
  sch::apply_modality_dropout(batch, draw, 3, 42);
  BOOST_REQUIRE(batch.text_present.defined());
  BOOST_REQUIRE(batch.image_present.defined());
  BOOST_TEST(batch.text_present.scalar_type() == torch::kBool);
  BOOST_TEST(batch.text_present.sizes() == torch::IntArrayRef({rows}));
  BOOST_TEST(batch.image_present.sizes() == torch::IntArrayRef({rows}));
  const auto text = batch.text_present;
  const auto image = batch.image_present;
  const double text_dropped = (~text).sum().item<double>() / rows;
  const double image_dropped = (~image).sum().item<double>() / rows;
  BOOST_TEST(std::abs(text_dropped - 0.15) < 0.01);
  BOOST_TEST(std::abs(image_dropped - 0.25) < 0.01);
  BOOST_TEST((text | image).all().item<bool>());  // never both

  // Deterministic for (seed, step); another step drops other rows.
  auto again = both_modalities(rows);
  sch::apply_modality_dropout(again, draw, 3, 42);
  BOOST_TEST(torch::equal(again.text_present, text));
  BOOST_TEST(torch::equal(again.image_present, image));
  auto next = both_modalities(rows);
  sch::apply_modality_dropout(next, draw, 3, 43);
  BOOST_TEST(!torch::equal(next.text_present, text));
}

BOOST_AUTO_TEST_CASE(apply_dropout_keeps_the_only_modality) {
  auto batch = both_modalities(6);
  batch.text_present = torch::tensor({1, 0, 1, 1, 0, 1}).to(torch::kBool);
  batch.image_present = torch::tensor({1, 1, 0, 1, 1, 1}).to(torch::kBool);
  const auto text_before = batch.text_present.clone();
  // Everything eligible loses its text: rows lacking a modality must be left alone.
  sch::apply_modality_dropout(batch, sch::Draw{commercemm::FusionSplit{0}, 1.0, 0.0}, 1, 0);
  BOOST_TEST(to_vector(batch.text_present) == (std::vector<bool>{false, false, true, false, false, false}));
  BOOST_TEST(to_vector(batch.image_present) == (std::vector<bool>{true, true, false, true, true, true}));
  BOOST_TEST(to_vector(text_before) == (std::vector<bool>{true, false, true, true, false, true}));  // input mask not aliased

  // All images instead.
  auto images = both_modalities(4);
  sch::apply_modality_dropout(images, sch::Draw{commercemm::FusionSplit{0}, 0.0, 1.0}, 1, 0);
  BOOST_TEST(to_vector(images.text_present) == (std::vector<bool>(4, true)));
  BOOST_TEST(to_vector(images.image_present) == (std::vector<bool>(4, false)));
}

BOOST_AUTO_TEST_CASE(apply_dropout_leaves_batches_it_cannot_touch) {
  auto nothing = both_modalities(8);
  sch::apply_modality_dropout(nothing, sch::Draw{}, 1, 0);
  BOOST_TEST(!nothing.text_present.defined());
  BOOST_TEST(!nothing.image_present.defined());

  commercemm::Batch text_only;
  text_only.text_ids = torch::ones({8, 4}, torch::kLong);
  sch::apply_modality_dropout(text_only, sch::Draw{commercemm::FusionSplit{0}, 0.5, 0.5}, 1, 0);
  BOOST_TEST(!text_only.text_present.defined());

  auto bad = both_modalities(4);
  expect_error_on([&] { sch::apply_modality_dropout(bad, sch::Draw{commercemm::FusionSplit{0}, 0.7, 0.7}, 1, 0); },
                  "drop_image");
  bad.text_present = torch::ones({5}, torch::kBool);
  expect_error_on([&] { sch::apply_modality_dropout(bad, sch::Draw{commercemm::FusionSplit{0}, 0.5, 0.0}, 1, 0); },
                  "text_present");
}

BOOST_AUTO_TEST_SUITE_END()
