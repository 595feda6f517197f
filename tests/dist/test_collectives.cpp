#include "support.hpp"

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <commercemm/dist/all_gather.hpp>
#include <commercemm/dist/consistency.hpp>
#include <commercemm/dist/gradient_reducer.hpp>
#include <commercemm/losses/contrastive.hpp>

namespace cmm = commercemm;
namespace dist = commercemm::dist;

using JoinedWorld = dist_test::JoinedWorld;
BOOST_TEST_GLOBAL_FIXTURE(JoinedWorld);

BOOST_AUTO_TEST_SUITE(collectives)

BOOST_AUTO_TEST_CASE(gather_rows_concatenates_shards_of_different_sizes_and_sums_gradients_back) {
  const int r = dist_test::world().rank();
  // Rank 0 holds 2 rows, rank 1 holds 3: row i of the global batch is [i, 10 i, 100 i].
  auto row = [](std::int64_t i) { return torch::tensor({1.0, 10.0, 100.0}) * static_cast<double>(i); };
  std::vector<torch::Tensor> mine;
  for (std::int64_t i = r == 0 ? 0 : 2; i < (r == 0 ? 2 : 5); ++i) mine.push_back(row(i));
  auto x = torch::stack(mine).requires_grad_();
  const auto gathered = dist::gather_rows(x);
  BOOST_TEST(gathered.offset == (r == 0 ? 0 : 2));
  BOOST_REQUIRE(gathered.all.size(0) == 5);
  for (std::int64_t i = 0; i < 5; ++i) BOOST_TEST(gathered.all[i].equal(row(i)));
  // Both ranks' losses reach every row; each rank's slice gets the sum of both.
  const auto w = torch::arange(15, torch::kFloat).view({5, 3});
  (gathered.all * w * (r + 1.0)).sum().backward();
  BOOST_TEST(x.grad().equal(w.narrow(0, gathered.offset, x.size(0)) * 3.0));  // (1 + 2) w
  // Without gradient (ids, masks): bools travel too.
  const auto flags = dist::gather_rows(torch::full({r + 1}, r == 1, torch::kBool)).all;
  BOOST_TEST(flags.equal(torch::tensor({false, true, true})));
}

BOOST_AUTO_TEST_CASE(info_nce_across_ranks_equals_one_process_on_the_whole_batch) {
  const int r = dist_test::world().rank();
  torch::manual_seed(5);  // the same global batch on both ranks
  auto normalized = [](torch::Tensor t) { return t / t.norm(2, 1, true); };
  const auto queries = normalized(torch::randn({8, 6})), keys = normalized(torch::randn({8, 6}));
  const auto products = torch::tensor({0, 1, 2, 3, 0, 5, 6, 3}, torch::kLong);
  const auto valid = torch::tensor({1, 1, 0, 1, 0, 0, 1, 1}, torch::kBool);  // 3 rows here, 2 there
  const auto temperature = torch::tensor(0.1);

  auto q_ref = queries.clone().requires_grad_(), k_ref = keys.clone().requires_grad_();
  torch::Tensor reference;
  {
    dist::LocalScope alone;
    reference = cmm::losses::info_nce(q_ref, k_ref, temperature, {products, products, valid}).loss;
    reference.backward();
  }
  auto q = queries.narrow(0, 4 * r, 4).clone().requires_grad_(), k = keys.narrow(0, 4 * r, 4).clone().requires_grad_();
  const auto mine = [&](const torch::Tensor& t) { return t.narrow(0, 4 * r, 4); };
  const auto loss = cmm::losses::info_nce(q, k, temperature, {mine(products), mine(products), mine(valid)},
                                          cmm::gather::AcrossRanks{}).loss;
  loss.backward();
  // The ranks' losses average to the reference; gradients averaged over the ranks (as the
  // gradient all-reduce does) equal the reference's rows.
  BOOST_TEST(dist::sum_over_ranks(loss.item<double>()) / 2 == reference.item<double>(), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(torch::allclose(q.grad() / 2, mine(q_ref.grad()), 1e-5, 1e-7));
  BOOST_TEST(torch::allclose(k.grad() / 2, mine(k_ref.grad()), 1e-5, 1e-7));
}

BOOST_AUTO_TEST_CASE(gradient_reducer_averages_in_buckets_and_leaves_unused_parameters_alone) {
  const int r = dist_test::world().rank();
  torch::manual_seed(3);
  torch::nn::Linear first(4, 8), second(8, 2), unused(3, 3), late(8, 2);
  std::vector<torch::Tensor> params;
  for (auto* m : {&first, &second, &unused, &late})
    for (auto& p : (*m)->parameters()) params.push_back(p);
  torch::manual_seed(4);
  const auto inputs = torch::randn({6, 4});
  auto loss_of = [&](const torch::Tensor& x, bool use_late) {
    auto h = torch::tanh(first(x));
    auto out = second(h).pow(2).sum();
    if (use_late) out = out + late(h).sum();
    return dist::global_mean(out, x.size(0));
  };
  auto grads = [&] {
    std::vector<torch::Tensor> g;
    for (auto& p : params) g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
    return g;
  };
  auto zero = [&] { for (auto& p : params) p.mutable_grad() = torch::Tensor(); };
  // Reference: one process, the whole batch; two backward passes, the second one also
  // reaching `late`, which the first did not (the reducer learned not to expect it).
  std::vector<torch::Tensor> reference;
  {
    dist::LocalScope alone;
    loss_of(inputs, false).backward();
    loss_of(inputs, true).backward();
    reference = grads();
  }
  zero();
  // Tiny buckets, so several all-reduces run, in order, while the backward goes on.
  dist::GradientReducer reducer(params, dist_test::world().gradients(), 64);
  BOOST_TEST(reducer.bucket_count() > 3);
  const auto shard = inputs.narrow(0, 3 * r, 3);
  for (bool use_late : {false, true}) {
    reducer.begin(0);
    loss_of(shard, use_late).backward();
    reducer.finish();
  }
  const auto averaged = grads();
  for (std::size_t i = 0; i < params.size(); ++i) {
    BOOST_TEST_CONTEXT("parameter " << i) {
      BOOST_REQUIRE(averaged[i].defined() == reference[i].defined());
      if (reference[i].defined()) BOOST_TEST(torch::allclose(averaged[i], reference[i], 1e-5, 1e-7));
    }
  }
  BOOST_TEST(!unused->weight.grad().defined());  // no rank used it: untouched, as alone
}

BOOST_AUTO_TEST_CASE(a_rank_with_another_config_is_named) {
  const int r = dist_test::world().rank();
  BOOST_CHECK_NO_THROW(dist::check_same(dist_test::world().collectives(), "config", dist::fingerprint("same")));
  try {
    dist::check_same(dist_test::world().collectives(), "recipe or config", dist::fingerprint(r == 0 ? "a" : "b"));
    BOOST_FAIL("a different fingerprint must throw on every rank");
  } catch (const cmm::Error& e) {
    BOOST_TEST(std::string(e.what()).find("rank 1 started with another recipe or config than rank 0") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(broadcast_gives_every_rank_rank_zeros_weights) {
  const int r = dist_test::world().rank();
  torch::manual_seed(100 + r);  // different weights on each rank
  torch::nn::Linear layer(5, 3);
  dist::broadcast_from_rank0(dist_test::world().collectives(), *layer);
  auto both = dist::gather_rows(layer->weight.detach().reshape({1, -1})).all;
  BOOST_TEST(both[0].equal(both[1]));
  torch::manual_seed(100);
  torch::nn::Linear rank_zero(5, 3);
  BOOST_TEST(layer->weight.equal(rank_zero->weight));
}

BOOST_AUTO_TEST_SUITE_END()
