#pragma once
// Scores a list of downstream tasks on embedded sets, shaped as metrics.json: retrieval by
// FAISS search (Recall@1/5/10, MRR), categorization by centroid or a fine-tuned head.
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <commercemm/data/fashion_mnist.hpp>
#include <commercemm/eval/benchmark.hpp>
#include <commercemm/eval/categorization.hpp>
#include <commercemm/eval/downstream_tasks.hpp>
#include <commercemm/eval/metrics.hpp>
#include <commercemm/eval/search.hpp>

namespace commercemm::eval {

/// Ranks of the first gallery row of the query's product, searched with FAISS.
inline RetrievalMetrics score_retrieval(const torch::Tensor& queries, const torch::Tensor& query_products,
                                        const torch::Tensor& gallery, const torch::Tensor& gallery_products,
                                        const SearchOptions& search) {
  const InnerProductIndex index(gallery, search);
  const auto k = std::min<std::int64_t>(index.size(), search.kind == SearchOptions::Kind::exact ? index.size() : 100);
  return retrieval_metrics(first_relevant_ranks(index.search(queries, k), query_products, gallery_products));
}


/// A fine-tuned classification head: logits = linear(embedding) / temperature.
struct FinetunedHead {
  std::string task;
  LabelSet labels;
  mutable torch::nn::Linear linear{nullptr};  ///< forward is non-const in LibTorch
  static constexpr double temperature = 0.05;
};

/// Scores `tasks` on embedded sets; a task whose features the sets lack is left out (the
/// reference rows have no image-to-text, for instance). Shaped as metrics.json.
inline nlohmann::json score_tasks(const TaskSets& sets, const std::vector<std::string>& tasks,
                                  const SearchOptions& search, const FinetunedHead* head = nullptr,
                                  const std::vector<DownstreamTask>& known = downstream_tasks()) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& name : tasks) {
    const auto t = downstream_task(name, known);
    if (t.kind == TaskKind::retrieval) {
      const EmbeddedSet& queries = t.pairs ? sets.sources.at(*t.pairs) : sets.test_catalog;
      const auto& q = queries.get(t.query);
      const auto& g = sets.test_catalog.get(t.gallery);
      if (!q.defined() || !g.defined() || queries.size() == 0) continue;
      out[name] = to_json(score_retrieval(q, queries.products, g, sets.test_catalog.products, search));
      continue;
    }
    const bool fashion = t.label == "fashion_mnist";
    const EmbeddedSet& train = fashion ? sets.fashion_train : sets.train_catalog;
    const EmbeddedSet& test = fashion ? sets.fashion_test : sets.test_catalog;
    if (!train.get(t.query).defined() || !test.get(t.query).defined()) continue;
    LabelSet classes;
    torch::Tensor train_labels, test_labels;
    if (fashion) {
      for (const auto& c : data::fashion_mnist_classes) classes.add(std::string(c));
      train_labels = train.labels, test_labels = test.labels;
    } else {
      classes = learn_labels(train, t.label);
      train_labels = labels_of(train, t.label, classes);
      test_labels = labels_of(test, t.label, classes);
    }
    const auto centroid = score_classes(nearest_centroid(train.get(t.query), train_labels, classes.size(), test.get(t.query)),
                                        test_labels, classes.size());
    nlohmann::json j{{"centroid_accuracy", centroid.accuracy}, {"centroid_macro_f1", centroid.macro_f1}};
    if (head && head->task == name) {
      torch::NoGradGuard no_grad;
      const auto predicted = head->linear(test.get(t.query)).argmax(1);
      // The head's classes are its own LabelSet: map the test labels into it.
      torch::Tensor truth = fashion ? test_labels : labels_of(test, t.label, head->labels);
      const auto fine = score_classes(predicted, truth, head->labels.size());
      j["accuracy"] = fine.accuracy, j["macro_f1"] = fine.macro_f1, j["scored_by"] = "finetuned_head";
    } else {
      j["accuracy"] = centroid.accuracy, j["macro_f1"] = centroid.macro_f1, j["scored_by"] = "centroid";
    }
    j["examples"] = test.size();
    j["classes"] = classes.size();
    out[name] = j;
  }
  return out;
}

}  // namespace commercemm::eval
