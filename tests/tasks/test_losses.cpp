#include <boost/test/unit_test.hpp>

#include <cmath>

#include <torch/types.h>

#include <commercemm/losses/contrastive.hpp>
#include <commercemm/losses/distillation.hpp>

namespace losses = commercemm::losses;

namespace {
double item(const torch::Tensor& t) { return t.item<double>(); }
torch::Tensor t1(double v) { return torch::tensor(v, torch::kDouble); }
}  // namespace

BOOST_AUTO_TEST_SUITE(loss_values)

BOOST_AUTO_TEST_CASE(info_nce_by_hand) {
  // q = [[1,0],[0,1]], k = [[1,0],[0.6,0.8]], temperature 0.5.
  auto q = torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kDouble).view({2, 2});
  auto k = torch::tensor({1.0, 0.0, 0.6, 0.8}, torch::kDouble).view({2, 2});
  // logits row 0: [2, 1.2], row 1: [0, 1.6]
  const double row0 = -2.0 + std::log(std::exp(2.0) + std::exp(1.2));
  const double row1 = -1.6 + std::log(std::exp(0.0) + std::exp(1.6));
  auto out = losses::info_nce(q, k, t1(0.5));
  BOOST_TEST(item(out.loss) == (row0 + row1) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(out.logits.sizes() == torch::IntArrayRef({2, 2}));

  // Only row 1 valid.
  losses::InfoNceOptions only_second{{}, {}, torch::tensor({false, true})};
  BOOST_TEST(item(losses::info_nce(q, k, t1(0.5), only_second).loss) == row1, boost::test_tools::tolerance(1e-12));

  // Same product: key 1 is not a negative of query 0 (and vice versa): both rows become 0 loss.
  auto products = torch::tensor({7, 7}, torch::kLong);
  losses::InfoNceOptions same{products, products, {}};
  BOOST_TEST(item(losses::info_nce(q, k, t1(0.5), same).loss) == 0.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(info_nce_with_extra_keys_by_hand) {
  // The batch of info_nce_by_hand (products 1, 2) and three remembered keys: [0, 1] of product
  // 3 (a negative of both), [1, 0] of product 1 (query 0's own product: left out of its row)
  // and an empty slot (-1: left out of every row). Temperature 0.5.
  auto q = torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kDouble).view({2, 2});
  auto k = torch::tensor({1.0, 0.0, 0.6, 0.8}, torch::kDouble).view({2, 2});
  const losses::InfoNceOptions options{torch::tensor({1, 2}, torch::kLong), torch::tensor({1, 2}, torch::kLong), {}};
  losses::ExtraNegatives extra{torch::tensor({0.0, 1.0, 1.0, 0.0, 0.6, 0.8}, torch::kDouble).view({3, 2}),
                               torch::tensor({3, 1, -1}, torch::kLong)};
  // Row 0 logits [2, 1.2 | 0, (own product), (empty)]; row 1 [0, 1.6 | 2, 0, (empty)].
  const double row0 = -2.0 + std::log(std::exp(2.0) + std::exp(1.2) + std::exp(0.0));
  const double row1 = -1.6 + std::log(std::exp(0.0) + std::exp(1.6) + std::exp(2.0) + std::exp(0.0));
  const commercemm::gather::Local local;
  auto out = losses::info_nce(q, k, t1(0.5), options, local, extra);
  BOOST_TEST(item(out.loss) == (row0 + row1) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(out.logits.sizes() == torch::IntArrayRef({2, 5}));
  // An all-empty memory changes nothing.
  const losses::ExtraNegatives empty{extra.keys, torch::full({3}, -1, torch::kLong)};
  BOOST_TEST(item(losses::info_nce(q, k, t1(0.5), options, local, empty).loss) ==
                 item(losses::info_nce(q, k, t1(0.5), options).loss),
             boost::test_tools::tolerance(1e-12));
  // The extra keys take no gradient; the queries do, through them too (a gradient other than
  // the one an empty memory gives).
  auto qg = q.clone().requires_grad_(true), q_alone = q.clone().requires_grad_(true);
  auto memory = extra.keys.clone().requires_grad_(true);
  losses::info_nce(qg, k, t1(0.5), options, local, {memory, extra.products}).loss.backward();
  losses::info_nce(q_alone, k, t1(0.5), options, local, empty).loss.backward();
  BOOST_TEST(!memory.grad().defined());
  BOOST_TEST((qg.grad() - q_alone.grad()).abs().max().item<double>() > 1e-3);
}

BOOST_AUTO_TEST_CASE(momentum_distillation_by_hand) {
  // info_nce_by_hand's logits [[2, 1.2], [0, 1.6]]; a teacher's [[0, 0], [ln 3, 0]] (uniform on
  // row 0, 3:1 on row 1), masked columns (-1e9) in both; only row 1 valid in the second case.
  auto q = torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kDouble).view({2, 2});
  auto k = torch::tensor({1.0, 0.0, 0.6, 0.8}, torch::kDouble).view({2, 2});
  const auto hard = losses::info_nce(q, k, t1(0.5));
  const auto teacher = torch::tensor({0.0, 0.0, std::log(3.0), 0.0}, torch::kDouble).view({2, 2});
  const auto ls = [](double a, double b, double x) { return x - std::log(std::exp(a) + std::exp(b)); };
  const double soft0 = -(0.5 * ls(2, 1.2, 2) + 0.5 * ls(2, 1.2, 1.2));
  const double soft1 = -(0.75 * ls(0, 1.6, 0) + 0.25 * ls(0, 1.6, 1.6));
  const double hard1 = -ls(0, 1.6, 1.6);
  auto out = losses::distill_info_nce(hard, teacher, 0.4);
  BOOST_TEST(item(out.parts.at("soft")) == (soft0 + soft1) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(item(out.loss) == 0.6 * item(hard.loss) + 0.4 * (soft0 + soft1) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(item(losses::distill_info_nce(hard, teacher, 0.0).loss) == item(hard.loss), boost::test_tools::tolerance(1e-12));
  // valid_rows: the soft term's mean runs over the same rows as the hard one's.
  losses::InfoNceOptions only_second{{}, {}, torch::tensor({false, true})};
  const auto hard_second = losses::info_nce(q, k, t1(0.5), only_second);
  const auto second = losses::distill_info_nce(hard_second, teacher, 0.5, only_second);
  BOOST_TEST(item(second.loss) == 0.5 * hard1 + 0.5 * soft1, boost::test_tools::tolerance(1e-12));
  // A masked column (the query's own product elsewhere in the batch) adds nothing, not NaN.
  auto masked = teacher.clone();
  masked[0][1] = -1e9;
  auto student = hard.logits.clone();
  student[0][1] = -1e9;
  const auto with_mask = losses::distill_info_nce({hard.loss, student, {}}, masked, 1.0);
  BOOST_TEST(item(with_mask.loss) == (-ls(2, -1e9, 2) + soft1) / 2, boost::test_tools::tolerance(1e-9));
  BOOST_CHECK_THROW(losses::distill_info_nce(hard, teacher.narrow(1, 0, 1), 0.4), c10::Error);
}

BOOST_AUTO_TEST_CASE(symmetric_momentum_distillation_by_hand) {
  // a = I, b = [[1, 0], [0.6, 0.8]]; a teacher with a_m = b_m = I: its logits [[2, 0], [0, 2]]
  // both ways. Student a->b [[2, 1.2], [0, 1.6]], b->a [[2, 0], [1.2, 1.6]]; temperature 0.5.
  auto a = torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kDouble).view({2, 2});
  auto b = torch::tensor({1.0, 0.0, 0.6, 0.8}, torch::kDouble).view({2, 2});
  const auto eye = torch::eye(2, torch::kDouble);
  const auto ls = [](double x, double y, double v) { return v - std::log(std::exp(x) + std::exp(y)); };
  const double p = std::exp(2.0) / (std::exp(2.0) + 1.0), q = 1.0 - p;  // teacher softmax of [2, 0]
  const double ab_hard = (-ls(2, 1.2, 2) - ls(0, 1.6, 1.6)) / 2, ba_hard = (-ls(2, 0, 2) - ls(1.2, 1.6, 1.6)) / 2;
  const double ab_soft = (-(p * ls(2, 1.2, 2) + q * ls(2, 1.2, 1.2)) - (q * ls(0, 1.6, 0) + p * ls(0, 1.6, 1.6))) / 2;
  const double ba_soft = (-(p * ls(2, 0, 2) + q * ls(2, 0, 0)) - (q * ls(1.2, 1.6, 1.2) + p * ls(1.2, 1.6, 1.6))) / 2;
  const auto out = losses::symmetric_info_nce(a, b, t1(0.5), {}, commercemm::gather::Local{}, {eye, eye, 0.25});
  BOOST_TEST(item(out.parts.at("hard")) == (ab_hard + ba_hard) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(item(out.parts.at("soft")) == (ab_soft + ba_soft) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(item(out.loss) == 0.75 * (ab_hard + ba_hard) / 2 + 0.25 * (ab_soft + ba_soft) / 2,
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(item(out.parts.at("a_to_b")) == 0.75 * ab_hard + 0.25 * ab_soft, boost::test_tools::tolerance(1e-12));
  // Alpha 0 leaves the teacher out: the plain symmetric loss.
  const auto plain = losses::symmetric_info_nce(a, b, t1(0.5), {}, commercemm::gather::Local{}, {eye, eye, 0.0});
  BOOST_TEST(item(plain.loss) == (ab_hard + ba_hard) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(plain.parts.count("soft") == 0u);
  // No teacher's embeddings for a distillation: a clear stop.
  BOOST_CHECK_THROW(losses::symmetric_info_nce(a, b, t1(0.5), {}, commercemm::gather::Local{}, {{}, {}, 0.25}), c10::Error);
}

BOOST_AUTO_TEST_CASE(symmetric_info_nce_by_hand) {
  auto a = torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kDouble).view({2, 2});
  auto b = torch::tensor({1.0, 0.0, 0.6, 0.8}, torch::kDouble).view({2, 2});
  // b->a logits (t = 1): row 0 [1, 0], row 1 [0.6, 0.8]
  const double ab = ((-1.0 + std::log(std::exp(1.0) + std::exp(0.6))) + (-0.8 + std::log(1.0 + std::exp(0.8)))) / 2;
  const double ba = ((-1.0 + std::log(std::exp(1.0) + 1.0)) + (-0.8 + std::log(std::exp(0.6) + std::exp(0.8)))) / 2;
  auto out = losses::symmetric_info_nce(a, b, t1(1.0));
  BOOST_TEST(item(out.loss) == (ab + ba) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(item(out.parts.at("a_to_b")) == ab, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(identical_batch_gives_log_b_not_nan) {
  auto x = torch::ones({4, 8}, torch::kDouble) / std::sqrt(8.0);
  auto out = losses::symmetric_info_nce(x, x, t1(0.07));
  BOOST_TEST(item(out.loss) == std::log(4.0), boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(kl_by_hand) {
  // Teacher logits [0, ln 3] at T=1 -> p = [0.25, 0.75]; student logits 0 -> q = [0.5, 0.5].
  auto teacher = torch::tensor({0.0, std::log(3.0)}, torch::kDouble).view({1, 2});
  auto student = torch::zeros({1, 2}, torch::kDouble);
  losses::KlOptions unit{1.0, 1.0};
  const double expected = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  auto out = losses::kl_distillation(student, teacher, {}, unit);
  BOOST_TEST(item(out.loss) == expected, boost::test_tools::tolerance(1e-12));
  const double entropy = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  BOOST_TEST(item(out.parts.at("teacher_entropy")) == entropy, boost::test_tools::tolerance(1e-12));
  // Centring by the teacher's own logits makes the teacher uniform.
  auto centred = losses::kl_distillation(student, teacher, teacher[0], unit);
  BOOST_TEST(item(centred.loss) == 0.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(feature_regression_by_hand) {
  auto target = torch::tensor({1.0, 3.0}, torch::kDouble).view({1, 2});  // normalised: [-1, 1]
  auto prediction = torch::tensor({0.0, 0.0}, torch::kDouble).view({1, 2});
  BOOST_TEST(item(losses::feature_regression(prediction, target).loss) == 1.0, boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(masked_cross_entropy_and_binary_match_by_hand) {
  auto logits = torch::tensor({0.0, 0.0, 2.0, 0.0}, torch::kDouble).view({2, 2});
  auto targets = torch::tensor({1, -100}, torch::kLong);
  BOOST_TEST(item(losses::masked_cross_entropy(logits, targets).loss) == std::log(2.0),
             boost::test_tools::tolerance(1e-12));
  auto match = torch::tensor({0.0, 2.0}, torch::kDouble);
  auto labels = torch::tensor({1, 0}, torch::kLong);
  const double expected = (std::log(2.0) + std::log1p(std::exp(2.0))) / 2;
  BOOST_TEST(item(losses::binary_match(match, labels).loss) == expected, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_SUITE_END()
