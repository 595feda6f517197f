#pragma once
// Categorization scoring: class labels of items, class centroids of frozen embeddings and
// the nearest-centroid classifier, accuracy and macro-F1 with unseen classes counted wrong.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/data/manifest.hpp>
#include <commercemm/eval/embedding_set.hpp>
#include <commercemm/eval/metrics.hpp>

namespace commercemm::eval {

/// The class of an item for a categorization task ("" when the item has none).
inline const std::string& item_label(const data::Item& item, const std::string& label) {
  return label == "category" ? item.category : item.subcategory;
}

/// Class names -> indices, in first-seen order of the training items.
class LabelSet {
 public:
  LabelSet() = default;
  explicit LabelSet(std::vector<std::string> names) {
    for (auto& n : names) add(n);
  }
  std::int64_t add(const std::string& name) {
    const auto [it, inserted] = index_.try_emplace(name, size());
    if (inserted) names_.push_back(name);
    return it->second;
  }
  /// -1 for a class never seen in training (it can never be predicted, so it counts as wrong).
  std::int64_t find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  std::int64_t size() const { return static_cast<std::int64_t>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::map<std::string, std::int64_t> index_;
  std::vector<std::string> names_;
};

/// Labels of a set's items as [N] int64 (classes not in `classes` -> -1).
inline torch::Tensor labels_of(const EmbeddedSet& set, const std::string& label, const LabelSet& classes) {
  std::vector<std::int64_t> out;
  for (const auto* item : set.items) out.push_back(classes.find(item_label(*item, label)));
  return torch::tensor(out, torch::kLong);
}
/// The classes of a set's items, in first-seen order (the training split defines them).
inline LabelSet learn_labels(const EmbeddedSet& set, const std::string& label) {
  LabelSet classes;
  for (const auto* item : set.items) classes.add(item_label(*item, label));
  return classes;
}

/// [classes, D]: the L2-normalised mean feature of each class (a class with no row is zero).
inline torch::Tensor class_centroids(const torch::Tensor& features, const torch::Tensor& labels, std::int64_t classes) {
  auto sums = torch::zeros({classes, features.size(1)}, torch::kFloat32);
  sums.index_add_(0, labels, features.to(torch::kFloat32));
  return sums / sums.norm(2, 1, true).clamp_min(1e-12);
}

/// Nearest class centroid: rows of `test` are assigned the class of the most similar centroid
/// (cosine) of the training features.
inline torch::Tensor nearest_centroid(const torch::Tensor& train, const torch::Tensor& train_labels,
                                      std::int64_t classes, const torch::Tensor& test) {
  const auto centroids = class_centroids(train, train_labels, classes);
  const auto normed = test.to(torch::kFloat32) / test.to(torch::kFloat32).norm(2, 1, true).clamp_min(1e-12);
  return torch::matmul(normed, centroids.t()).argmax(1);
}

/// Scores a classification; rows whose true class was never seen in training count as wrong.
inline ClassificationMetrics score_classes(const torch::Tensor& predicted, const torch::Tensor& truth,
                                           std::int64_t classes) {
  // Unseen classes become one extra class id, so they count against accuracy and recall.
  const auto t = torch::where(truth.lt(0), torch::full_like(truth, classes), truth);
  return classification_metrics(predicted, t, classes + 1);
}

}  // namespace commercemm::eval
