#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/eval/metrics.hpp>

#include "support.hpp"

namespace eval = commercemm::eval;
namespace tt = boost::test_tools;

namespace {
torch::Tensor labels(std::vector<std::int64_t> v) { return torch::tensor(v, torch::kLong); }

}  // namespace

BOOST_AUTO_TEST_SUITE(eval_metrics)

BOOST_AUTO_TEST_CASE(retrieval_metrics_by_hand) {
  // Ranks 1, 3, miss, 7, 12 over 5 queries:
  //   recall@1 = 1/5 (rank 1); recall@5 = 2/5 (1, 3); recall@10 = 3/5 (1, 3, 7)
  //   MRR = (1 + 1/3 + 0 + 1/7 + 1/12) / 5 = (84 + 28 + 12 + 7) / 84 / 5 = 131/420
  const auto m = eval::retrieval_metrics({1, 3, 0, 7, 12});
  BOOST_TEST(m.queries == 5);
  BOOST_TEST(m.recall_at_1 == 0.2, tt::tolerance(1e-12));
  BOOST_TEST(m.recall_at_5 == 0.4, tt::tolerance(1e-12));
  BOOST_TEST(m.recall_at_10 == 0.6, tt::tolerance(1e-12));
  BOOST_TEST(m.mrr == 131.0 / 420.0, tt::tolerance(1e-12));

  // Boundaries: rank 5 counts for @5, rank 10 for @10, rank 11 for neither.
  const auto b = eval::retrieval_metrics({5, 10, 11, 1});
  BOOST_TEST(b.recall_at_1 == 0.25, tt::tolerance(1e-12));
  BOOST_TEST(b.recall_at_5 == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(b.recall_at_10 == 0.75, tt::tolerance(1e-12));
  BOOST_TEST(b.mrr == (0.2 + 0.1 + 1.0 / 11 + 1.0) / 4, tt::tolerance(1e-12));

  const auto all_misses = eval::retrieval_metrics({0, 0});
  BOOST_TEST(all_misses.queries == 2);
  BOOST_TEST(all_misses.recall_at_10 == 0.0);
  BOOST_TEST(all_misses.mrr == 0.0);
}

BOOST_AUTO_TEST_CASE(retrieval_metrics_empty_and_bad) {
  const auto m = eval::retrieval_metrics({});
  BOOST_TEST(m.queries == 0);
  BOOST_TEST(m.recall_at_1 == 0.0);
  BOOST_TEST(m.recall_at_5 == 0.0);
  BOOST_TEST(m.recall_at_10 == 0.0);
  BOOST_TEST(m.mrr == 0.0);
  BOOST_CHECK_THROW(eval::retrieval_metrics({1, -1}), commercemm::Error);
}

BOOST_AUTO_TEST_CASE(classification_metrics_by_hand) {
  // classes = 4; class 2 is never predicted, class 3 occurs nowhere (left out of the mean).
  //   truth     0 0 0 1 1 2 2 2
  //   predicted 0 0 1 1 0 0 1 1
  // accuracy = 3/8 (positions 0, 1, 3).
  // class 0: TP 2, predicted 4 (FP 2), true 3 (FN 1): F1 = 2·2 / (2·2 + 2 + 1) = 4/7
  // class 1: TP 1, predicted 4 (FP 3), true 2 (FN 1): F1 = 2 / (2 + 3 + 1) = 1/3
  // class 2: TP 0, never predicted:                    F1 = 0
  // macro-F1 = (4/7 + 1/3 + 0) / 3 = 19/63  (not 19/84: class 3 is not averaged in)
  const auto m = eval::classification_metrics(labels({0, 0, 1, 1, 0, 0, 1, 1}), labels({0, 0, 0, 1, 1, 2, 2, 2}), 4);
  BOOST_TEST(m.examples == 8);
  BOOST_TEST(m.classes == 4);
  BOOST_TEST(m.accuracy == 0.375, tt::tolerance(1e-12));
  BOOST_TEST(m.macro_f1 == 19.0 / 63.0, tt::tolerance(1e-12));

  // A class that is predicted but never true counts too (precision 0, recall undefined -> F1 0):
  // truth [0, 1], predicted [0, 2]: F1 = 1, 0, 0 -> macro 1/3; accuracy 1/2.
  const auto only_predicted = eval::classification_metrics(labels({0, 2}), labels({0, 1}), 3);
  BOOST_TEST(only_predicted.accuracy == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(only_predicted.macro_f1 == 1.0 / 3.0, tt::tolerance(1e-12));

  // Perfect predictions, int32 labels.
  const auto perfect = eval::classification_metrics(torch::tensor({2, 0, 1}, torch::kInt), torch::tensor({2, 0, 1}, torch::kInt), 3);
  BOOST_TEST(perfect.accuracy == 1.0);
  BOOST_TEST(perfect.macro_f1 == 1.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(classification_metrics_errors_and_empty) {
  BOOST_CHECK_THROW(eval::classification_metrics(labels({0, 1}), labels({0, 1, 1}), 2), commercemm::Error);
  BOOST_CHECK_THROW(eval::classification_metrics(labels({0, 1}).view({1, 2}), labels({0, 1}).view({1, 2}), 2),
                    commercemm::Error);
  BOOST_CHECK_THROW(eval::classification_metrics(labels({0, 2}), labels({0, 1}), 2), commercemm::Error);
  BOOST_CHECK_THROW(eval::classification_metrics(labels({0, -1}), labels({0, 1}), 2), commercemm::Error);
  BOOST_CHECK_THROW(eval::classification_metrics(torch::zeros({2}), labels({0, 1}), 2), commercemm::Error);
  BOOST_TEST(error_of([] { eval::classification_metrics(labels({0, 1}), labels({0, 1, 1}), 2); }) ==
             "predicted: has 2 labels but truth has 3");

  const auto empty = eval::classification_metrics(labels({}), labels({}), 5);
  BOOST_TEST(empty.examples == 0);
  BOOST_TEST(empty.accuracy == 0.0);
  BOOST_TEST(empty.macro_f1 == 0.0);
}

BOOST_AUTO_TEST_CASE(metrics_json) {
  eval::RetrievalMetrics r{0.5, 0.75, 1.0, 0.625, 4};
  const auto rj = eval::to_json(r);
  BOOST_TEST(rj.at("recall@1").get<double>() == 0.5);
  BOOST_TEST(rj.at("recall@5").get<double>() == 0.75);
  BOOST_TEST(rj.at("recall@10").get<double>() == 1.0);
  BOOST_TEST(rj.at("mrr").get<double>() == 0.625);
  BOOST_TEST(rj.at("queries").get<std::int64_t>() == 4);
  BOOST_TEST(rj.size() == 5u);

  eval::ClassificationMetrics c{0.875, 0.5, 8, 3};
  const auto cj = eval::to_json(c);
  BOOST_TEST(cj.dump() == R"({"accuracy":0.875,"classes":3,"examples":8,"macro_f1":0.5})");
}

BOOST_AUTO_TEST_SUITE_END()
