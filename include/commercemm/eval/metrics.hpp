#pragma once
// The downstream metrics of the paper: Recall@1/5/10 and MRR for retrieval, accuracy and
// macro-F1 for categorization. Plain functions over ranks and label tensors, so the search
// (exact or FAISS) and the classifier (head or centroid) stay separate from the scoring.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <commercemm/core/error.hpp>

namespace commercemm::eval {

/// Retrieval scores over `queries` queries; recalls and MRR are fractions in [0, 1].
struct RetrievalMetrics {
  double recall_at_1 = 0, recall_at_5 = 0, recall_at_10 = 0, mrr = 0;
  std::int64_t queries = 0;
};

/// `ranks[q]` is the 1-based position of query q's first relevant gallery entry, or 0 when none
/// was in the top k searched: a miss, counting 0 towards every recall and towards MRR (so MRR
/// is truncated at k, as it is when only the top k come back from the index).
/// Empty input gives all zeros. A negative rank throws Error.
inline RetrievalMetrics retrieval_metrics(const std::vector<std::int64_t>& ranks) {
  RetrievalMetrics out;
  out.queries = static_cast<std::int64_t>(ranks.size());
  if (ranks.empty()) return out;
  std::int64_t at1 = 0, at5 = 0, at10 = 0;
  double reciprocal = 0;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    const auto r = ranks[i];
    if (r < 0) {
      throw Error(Location{"", 0, "ranks"},
                  "rank of query " + std::to_string(i) + " is " + std::to_string(r) + "; must be 0 (miss) or 1-based");
    }
    if (r == 0) continue;
    at1 += r <= 1;
    at5 += r <= 5;
    at10 += r <= 10;
    reciprocal += 1.0 / static_cast<double>(r);
  }
  const auto n = static_cast<double>(ranks.size());
  out.recall_at_1 = static_cast<double>(at1) / n;
  out.recall_at_5 = static_cast<double>(at5) / n;
  out.recall_at_10 = static_cast<double>(at10) / n;
  out.mrr = reciprocal / n;
  return out;
}

/// Categorization scores over `examples` examples with labels in [0, classes).
struct ClassificationMetrics {
  double accuracy = 0, macro_f1 = 0;
  std::int64_t examples = 0, classes = 0;
};

/// `predicted` and `truth` are [N] integer labels in [0, classes) (any device).
/// macro_f1 matches scikit-learn's f1_score(truth, predicted, average="macro"): the unweighted
/// mean of per-class F1 = 2·TP / (2·TP + FP + FN) over the classes that occur in truth or in the
/// predictions (labels absent from both are left out, not counted as 0). A class where precision
/// or recall is undefined (never predicted, or never true) has TP = 0 and so F1 = 0, which is
/// sklearn's zero_division=0 result. `classes` in the result is the label-space size passed in.
/// N = 0 gives zeros. Shapes that differ, non-integer labels or labels outside the range throw Error.
inline ClassificationMetrics classification_metrics(const torch::Tensor& predicted, const torch::Tensor& truth,
                                                    std::int64_t classes) {
  auto check = [&](const torch::Tensor& t, const char* field) {
    if (!t.defined() || t.dim() != 1) {
      throw Error(Location{"", 0, field}, "must be a [N] tensor of labels");
    }
    if (!at::isIntegralType(t.scalar_type(), /*includeBool=*/false)) {
      throw Error(Location{"", 0, field}, std::string("must hold integer labels, got ") + c10::toString(t.scalar_type()));
    }
  };
  check(predicted, "predicted");
  check(truth, "truth");
  if (predicted.size(0) != truth.size(0)) {
    throw Error(Location{"", 0, "predicted"}, "has " + std::to_string(predicted.size(0)) + " labels but truth has " +
                                                  std::to_string(truth.size(0)));
  }
  if (classes <= 0) throw Error(Location{"", 0, "classes"}, "must be positive, got " + std::to_string(classes));

  ClassificationMetrics out;
  out.examples = truth.size(0);
  out.classes = classes;
  if (out.examples == 0) return out;

  const auto p = predicted.to(torch::kCPU, torch::kLong);
  const auto t = truth.to(torch::kCPU, torch::kLong);
  auto check_range = [&](const torch::Tensor& labels, const char* field) {
    const auto lo = labels.min().template item<std::int64_t>();
    const auto hi = labels.max().template item<std::int64_t>();
    if (lo < 0 || hi >= classes) {
      throw Error(Location{"", 0, field}, "labels must lie in [0, " + std::to_string(classes) + "), found " +
                                              std::to_string(lo < 0 ? lo : hi));
    }
  };
  check_range(p, "predicted");
  check_range(t, "truth");

  const auto correct = p.eq(t);
  out.accuracy = correct.sum().template item<double>() / static_cast<double>(out.examples);

  // Per class: TP counts correct predictions of c; TP + FP = times c predicted; TP + FN = times c true.
  const auto tp = torch::bincount(p.masked_select(correct), {}, classes).to(torch::kDouble);
  const auto predicted_count = torch::bincount(p, {}, classes).to(torch::kDouble);
  const auto true_count = torch::bincount(t, {}, classes).to(torch::kDouble);
  const auto denominator = predicted_count + true_count;  // 2·TP + FP + FN
  const auto present = denominator.gt(0);
  const auto f1 = (2 * tp).div(denominator.clamp_min(1));
  out.macro_f1 = f1.masked_select(present).mean().template item<double>();
  return out;
}

inline nlohmann::json to_json(const RetrievalMetrics& m) {
  return nlohmann::json{{"recall@1", m.recall_at_1},
                        {"recall@5", m.recall_at_5},
                        {"recall@10", m.recall_at_10},
                        {"mrr", m.mrr},
                        {"queries", m.queries}};
}

inline nlohmann::json to_json(const ClassificationMetrics& m) {
  return nlohmann::json{{"accuracy", m.accuracy}, {"macro_f1", m.macro_f1}, {"examples", m.examples}, {"classes", m.classes}};
}

}  // namespace commercemm::eval
