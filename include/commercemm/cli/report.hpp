#pragma once
// Scoring helpers shared by evaluate and finetune, and the evaluation table: one row per
// task, the model's scores and, on the primary metric (Recall@1 or accuracy), the reference
// rows of DESIGN section 7 and chance.
#include <cstdio>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include <commercemm/eval/downstream.hpp>
#include <commercemm/fusion/fusion.hpp>
#include <commercemm/train/autocast.hpp>

namespace commercemm::cli {

/// Inference at the run's precision (bf16 autocast when train.precision is "bf16").
template <class Model>
eval::EmbedFunction embed_function(Model& model, std::int64_t split, const std::string& precision) {
  return [&model, split, precision](const Batch& b) {
    torch::NoGradGuard no_grad;
    train::AutocastGuard autocast(precision);
    return model->embed(b, FusionSplit{split});
  };
}

inline eval::SearchOptions search_options(const Config& config) {
  eval::SearchOptions o;
  o.kind = *eval::parse_search_kind(config.eval.search);  // validate() admits only known kinds
  const auto& e = config.eval;  // 0 keeps SearchOptions' default; validate() checked the rest
  const auto set = [](int& option, std::int64_t value) { if (value > 0) option = static_cast<int>(value); };
  set(o.hnsw_m, e.hnsw_m), set(o.ef_construction, e.ef_construction), set(o.ef_search, e.ef_search);
  set(o.ivf_lists, e.ivf_lists), set(o.pq_bytes, e.pq_bytes), set(o.nprobe, e.nprobe);
  return o;
}

/// Chance on the primary metric: one over the products of the test catalog (retrieval) or
/// over the classes (categorization).
inline double chance(const eval::DownstreamTask& task, const nlohmann::json& scores, const eval::Benchmark& bench) {
  if (task.kind == eval::TaskKind::categorization) return 1.0 / scores.value("classes", 1.0);
  std::set<std::string> products;
  for (const auto& item : bench.test.catalog) products.insert(item.product_id);
  return 1.0 / static_cast<double>(std::max<std::size_t>(products.size(), 1));
}

/// `references`: {"untrained": metrics, "raw_pixels": metrics, "trigram_tfidf": metrics,
/// "model_plus_tfidf": metrics}
/// (any may be missing; a task a reference cannot do shows "-").
inline void print_table(const nlohmann::json& metrics, const nlohmann::json& references, const eval::Benchmark& bench) {
  std::printf("\n%-30s %8s %8s %8s | %9s %10s %8s %9s %8s\n", "task", "R@1/acc", "R@10/F1", "MRR", "untrained",
              "raw pixels", "tf-idf", "+tf-idf", "chance");
  auto primary = [](const nlohmann::json& scores, bool retrieval) {
    return scores.value(retrieval ? "recall@1" : "accuracy", 0.0);
  };
  auto reference = [&](const char* row, const std::string& task, bool retrieval) {
    if (!references.contains(row) || !references[row].contains(task)) return std::string("       -");
    char text[16];
    std::snprintf(text, sizeof text, "%8.4f", primary(references[row][task], retrieval));
    return std::string(text);
  };
  for (const auto& task : bench.tasks) {
    if (!metrics.contains(task.name)) continue;
    const auto& name = task.name;
    const auto& scores = metrics[name];
    const bool retrieval = task.kind == eval::TaskKind::retrieval;
    const double second = scores.value(retrieval ? "recall@10" : "macro_f1", 0.0);
    const std::string mrr = retrieval ? std::to_string(scores.value("mrr", 0.0)).substr(0, 6) : "-";
    std::printf("%-30s %8.4f %8.4f %8s | %9s %10s %8s %9s %8.4f\n", name.c_str(), primary(scores, retrieval), second,
                mrr.c_str(), reference("untrained", name, retrieval).c_str(),
                reference("raw_pixels", name, retrieval).c_str(), reference("trigram_tfidf", name, retrieval).c_str(),
                reference("model_plus_tfidf", name, retrieval).c_str(), chance(task, scores, bench));
  }
  std::printf("categorization: accuracy, macro-F1; retrieval: Recall@1, Recall@10, MRR; the reference columns and "
              "chance are on the first; +tf-idf: the model's cosine plus eval.hybrid_weight times TF-IDF's\n");
  std::fflush(stdout);
}

}  // namespace commercemm::cli
