// A NaN or infinite loss or gradient, in pass A or pass B, skips the step's update: the
// parameters, the AdamW moments, the heads' buffers (MIM-kl's centre) and the EMA teacher are
// bitwise what they were, and the result says what was found where. The next good step learns.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include <torch/optim/adamw.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

#include "support.hpp"

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
using tasks_test::kSpecial;
using tasks_test::random_batch;
using tasks_test::tiny_config;

namespace {
using Model = cmm::DefaultModel;
// An EMA teacher and MIM-kl's centre (both moved outside the optimizer), both passes.
using Tasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL, cmm::teachers::Ema<996>>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class Update = cmm::update::OneStep>
struct Fixture {
  using Recipe = cmm::Recipe<Model, Tasks, cmm::schedules::RandomFusionSplit, Update>;
  Fixture()
      : step(Model(tiny_config().model), tiny_config(), kSpecial),
        optimizer(step.parameters(), torch::optim::AdamWOptions(1e-3)),
        a(random_batch(6, 1)), source(random_batch(6, 2)), target(random_batch(6, 3)) {}

  cmm::train::StepResult run(std::int64_t k) { return step.run(&a, &source, &target, optimizer, k); }

  // Everything an update may change, as bytes: equal bytes are bitwise-equal state.
  std::string state() {
    torch::serialize::OutputArchive archive, model, heads, teacher, moments;
    step.model()->save(model);
    step.heads().save(heads);
    step.teacher_module()->save(teacher);
    optimizer.save(moments);
    archive.write("model", model), archive.write("heads", heads), archive.write("teacher", teacher);
    archive.write("optimizer", moments);
    std::ostringstream bytes;
    archive.save_to(bytes);
    return bytes.str();
  }
  torch::Tensor center() {
    for (const auto& b : step.heads().named_buffers())
      if (b.key().find("center") != std::string::npos) return b.value().clone();
    BOOST_FAIL("no MIM-kl centre among the heads' buffers");
    return {};
  }

  cmm::train::Step<Recipe> step;
  torch::optim::AdamW optimizer;
  cmm::Batch a, source, target;
};
}  // namespace

BOOST_AUTO_TEST_SUITE(nonfinite)

BOOST_AUTO_TEST_CASE(the_state_bytes_see_a_one_ulp_change) {  // so equal bytes below mean something
  Fixture f;
  f.run(0);
  const auto before = f.state();
  BOOST_TEST(f.state() == before);
  {
    torch::NoGradGuard no_grad;
    auto p = f.step.model()->parameters().back();
    p.view(-1)[0] = std::nextafter(p.view(-1)[0].item<float>(), 1e9f);
  }
  BOOST_TEST(f.state() != before);
}

BOOST_AUTO_TEST_CASE(a_nan_loss_in_pass_a_skips_the_update_and_leaves_every_state_untouched) {
  Fixture f;
  f.run(0);  // AdamW moments, a moved centre and teacher exist before the bad step
  const auto before = f.state();
  const auto center = f.center();
  f.a.images[2][1][3][4] = kNaN;  // one pixel of one image
  const auto r = f.run(1);
  BOOST_TEST(r.skipped);
  BOOST_TEST(r.image_text.nonfinite.find("loss of tasks.") == 0u, r.image_text.nonfinite);
  BOOST_TEST(r.image_text.nonfinite.find("nan") != std::string::npos, r.image_text.nonfinite);
  BOOST_TEST(r.cross_pair.nonfinite.empty());
  BOOST_TEST(f.state() == before);
  BOOST_TEST(torch::equal(f.center(), center));  // MIM-kl moved it in the forward; it is put back
  BOOST_TEST(f.step.counters().skipped_updates == 1);
  BOOST_TEST(f.step.counters().optimizer_steps == 1);
  BOOST_TEST(f.step.counters().backward == 3);  // step 0: two; step 1: pass B only
  for (const auto& p : f.step.parameters())
    if (p.grad().defined()) BOOST_TEST(p.grad().abs().sum().item<double>() == 0.0);

  f.a = random_batch(6, 1);  // a good batch again: the run goes on and learns
  const auto good = f.run(2);
  BOOST_TEST(!good.skipped);
  BOOST_TEST(f.state() != before);
  for (const auto& p : f.step.parameters()) BOOST_TEST(torch::isfinite(p).all().item<bool>());
}

BOOST_AUTO_TEST_CASE(an_infinite_loss_in_pass_b_skips_the_update_though_pass_a_was_fine) {
  Fixture f;
  f.run(0);
  const auto before = f.state();
  f.target.images[0].fill_(std::numeric_limits<float>::infinity());
  const auto r = f.run(1);
  BOOST_TEST(r.skipped);
  BOOST_TEST(r.image_text.nonfinite.empty());
  BOOST_TEST(r.cross_pair.nonfinite.find("loss of tasks.") == 0u, r.cross_pair.nonfinite);
  BOOST_TEST(f.state() == before);
  BOOST_TEST(f.step.counters().skipped_updates == 1);
}

// A finite loss whose gradient is not: a hook poisons one parameter's gradient in the chosen
// backward (the counter says which pass is running: 2k for pass A of step k, 2k + 1 for B).
BOOST_AUTO_TEST_CASE(a_nan_gradient_in_either_pass_skips_the_update) {
  for (const int pass : {0, 1}) {
    Fixture f;
    f.run(0);
    const auto before = f.state();
    auto p = f.step.model()->parameters().front();
    const std::int64_t poisoned_backward = 2 + pass;
    p.register_hook([&f, poisoned_backward](torch::Tensor g) {
      return f.step.counters().backward == poisoned_backward ? g * kNaN : g;
    });
    const auto r = f.run(1);
    BOOST_TEST(r.skipped);
    BOOST_TEST((pass == 0 ? r.image_text.nonfinite : r.cross_pair.nonfinite) == "gradient");
    BOOST_TEST((pass == 0 ? r.cross_pair.nonfinite : r.image_text.nonfinite).empty());
    for (const auto& [name, value] : r.image_text.losses) BOOST_TEST(std::isfinite(value), name);
    BOOST_TEST(f.state() == before, "pass " << pass);
    const auto next = f.run(2);  // the hook is quiet now
    BOOST_TEST(!next.skipped);
  }
}

// update::PerPass steps after each pass: pass B's skip must not undo pass A's update.
BOOST_AUTO_TEST_CASE(with_an_update_per_pass_only_the_bad_pass_is_skipped) {
  Fixture<cmm::update::PerPass> f;
  f.run(0);
  const auto before = f.state();
  f.target.images[0].fill_(kNaN);
  const auto r = f.run(1);
  BOOST_TEST(r.skipped);
  BOOST_TEST(f.step.counters().optimizer_steps == 3);  // step 0: two; step 1: pass A's
  BOOST_TEST(f.step.counters().skipped_updates == 1);
  BOOST_TEST(f.state() != before);
}

BOOST_AUTO_TEST_SUITE_END()
