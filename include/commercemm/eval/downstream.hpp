#pragma once
// The paper's seven downstream tasks on a benchmark directory (DESIGN section 7), with the
// names metrics.json uses (image-only categorization has two: the catalog's categories and
// Fashion-MNIST's classes):
//   multimodal_categorization     catalog item (image + text) -> subcategory
//   image_categorization          catalog image -> category
//   fashion_mnist_categorization  Fashion-MNIST image -> its ten classes (image-only, again)
//   image_to_text, text_to_image  a catalog item's image <-> its text, among the test catalog
//   query_to_product              a text query          -> the catalog item (multimodal)
//   image_to_product              a user image          -> the catalog item (multimodal)
//   post_to_product               an image + text post  -> the catalog item (multimodal)
//   <kind>_to_product             every other pair kind of the test split (a dataset's own,
//                                 e.g. review_to_product): its sources' text, image or both
// Retrieval scores Recall@1/5/10 and MRR over the test split's catalog (a hit is any catalog
// item of the right product); categorization scores accuracy and macro-F1, by the nearest
// class centroid of frozen embeddings (centroids from the train split) and, after finetune,
// by the fine-tuned head.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <commercemm/data/fashion_mnist.hpp>
#include <commercemm/eval/embedding_set.hpp>
#include <commercemm/eval/metrics.hpp>
#include <commercemm/eval/search.hpp>

namespace commercemm::eval {

enum class TaskKind { retrieval, categorization };

struct DownstreamTask {
  std::string name;
  TaskKind kind;
  Modality query = Modality::multimodal;    ///< retrieval: the query's embedding; categorization: the input's
  Modality gallery = Modality::multimodal;  ///< retrieval: the gallery's embedding
  std::optional<data::PairKind> pairs;      ///< retrieval from sources of this kind (else catalog items)
  std::string label;                        ///< categorization: "subcategory", "category" or "fashion_mnist"
};

inline const std::vector<DownstreamTask>& downstream_tasks() {
  using M = Modality;
  static const std::vector<DownstreamTask> tasks{
      {"multimodal_categorization", TaskKind::categorization, M::multimodal, M::multimodal, std::nullopt, "subcategory"},
      {"image_categorization", TaskKind::categorization, M::image, M::image, std::nullopt, "category"},
      {"fashion_mnist_categorization", TaskKind::categorization, M::image, M::image, std::nullopt, "fashion_mnist"},
      {"image_to_text", TaskKind::retrieval, M::image, M::text, std::nullopt, ""},
      {"text_to_image", TaskKind::retrieval, M::text, M::image, std::nullopt, ""},
      {"query_to_product", TaskKind::retrieval, M::text, M::multimodal, data::pair_kinds::query, ""},
      {"image_to_product", TaskKind::retrieval, M::image, M::multimodal, data::pair_kinds::image, ""},
      {"post_to_product", TaskKind::retrieval, M::multimodal, M::multimodal, data::pair_kinds::post, ""},
  };
  return tasks;
}

/// The built-in tasks, and `<kind>_to_product` for every other pair kind of `split`: its
/// queries are the sources' text, image, or both fused, as the kind's sources hold.
inline std::vector<DownstreamTask> downstream_tasks(const data::DatasetSplit& split) {
  auto out = downstream_tasks();
  for (const auto& kind : split.pair_kinds()) {
    if (kind == data::pair_kinds::query || kind == data::pair_kinds::image || kind == data::pair_kinds::post) continue;
    const auto [text, image] = split.kind_holds(kind);
    const auto query = text && image ? Modality::multimodal : text ? Modality::text : Modality::image;
    out.push_back({kind + "_to_product", TaskKind::retrieval, query, Modality::multimodal, kind, ""});
  }
  return out;
}

/// The task called `name` among `tasks`; an unknown name is an error listing the valid ones.
inline DownstreamTask downstream_task(const std::string& name,
                                      const std::vector<DownstreamTask>& tasks = downstream_tasks()) {
  std::string known;
  for (const auto& t : tasks) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  throw Error(Location{"--task", 0, name}, "unknown downstream task; the tasks are: " + known);
}

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

/// Nearest class centroid: L2-normalised mean of each class's training features; rows of
/// `test` are assigned the class of the most similar centroid (cosine).
/// [classes, D]: the L2-normalised mean feature of each class (a class with no row is zero).
inline torch::Tensor class_centroids(const torch::Tensor& features, const torch::Tensor& labels, std::int64_t classes) {
  auto sums = torch::zeros({classes, features.size(1)}, torch::kFloat32);
  sums.index_add_(0, labels, features.to(torch::kFloat32));
  return sums / sums.norm(2, 1, true).clamp_min(1e-12);
}

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

/// Ranks of the first gallery row of the query's product, searched with FAISS.
inline RetrievalMetrics score_retrieval(const torch::Tensor& queries, const torch::Tensor& query_products,
                                        const torch::Tensor& gallery, const torch::Tensor& gallery_products,
                                        const SearchOptions& search) {
  const InnerProductIndex index(gallery, search);
  const auto k = std::min<std::int64_t>(index.size(), search.kind == SearchOptions::Kind::exact ? index.size() : 100);
  return retrieval_metrics(first_relevant_ranks(index.search(queries, k), query_products, gallery_products));
}


/// A benchmark directory's splits (train: centroids and fine-tuning; test: scoring), its
/// tasks (the built-in ones and one per pair kind of its own), and Fashion-MNIST when a task
/// needs it.
struct Benchmark {
  data::DatasetSplit train, test;
  std::optional<data::FashionMnist> fashion_train, fashion_test;
  std::vector<DownstreamTask> tasks;

  /// The task called `name` on this benchmark (an error listing them when unknown).
  DownstreamTask task(const std::string& name) const { return downstream_task(name, tasks); }
  /// `names` checked, or every task of the benchmark when empty.
  std::vector<std::string> task_names(const std::vector<std::string>& names = {}) const {
    if (!names.empty()) {
      for (const auto& n : names) task(n);
      return names;
    }
    std::vector<std::string> out;
    for (const auto& t : tasks) out.push_back(t.name);
    return out;
  }

  /// `tasks` empty: every task (Fashion-MNIST included).
  static Benchmark load(const std::string& dir, const std::vector<std::string>& tasks, const Config& config) {
    Benchmark b{data::read_split(dir, "train"), data::read_split(dir, "test"), std::nullopt, std::nullopt, {}};
    b.tasks = downstream_tasks(b.test);
    b.task_names(tasks);  // unknown names fail before any work
    if (tasks.empty() || std::find(tasks.begin(), tasks.end(), "fashion_mnist_categorization") != tasks.end()) {
      auto slice = [](data::FashionMnist f, std::int64_t n) {
        n = std::min(n, f.images.size(0));
        return data::FashionMnist{f.images.slice(0, 0, n), f.labels.slice(0, 0, n)};
      };
      b.fashion_train = slice(data::read_fashion_mnist(data::FashionMnistSplit::train), config.eval.fashion_mnist_train);
      b.fashion_test = slice(data::read_fashion_mnist(data::FashionMnistSplit::test), config.eval.fashion_mnist_test);
    }
    return b;
  }
};


/// The embedded sets the chosen tasks score.
struct TaskSets {
  EmbeddedSet train_catalog, test_catalog;
  std::map<data::PairKind, EmbeddedSet> sources;  ///< test sources by pair kind
  EmbeddedSet fashion_train, fashion_test;
};

namespace detail {
inline EmbeddedSet embed_fashion(const data::FashionMnist& f, const Config& config, const EmbedFunction& embed,
                                 bool keep_pixels) {
  data::ImageOptions options;
  options.size = config.model.image.image_size;
  EmbeddedSet out;
  std::vector<torch::Tensor> images, pixels;
  for (std::int64_t at = 0; at < f.images.size(0); at += config.eval.batch_size) {
    Batch b;
    b.images = data::fashion_mnist_to_model(f.images.slice(0, at, at + config.eval.batch_size), options);
    if (keep_pixels) pixels.push_back(pixel_features(b.images));
    if (!embed) continue;
    const auto started = std::chrono::steady_clock::now();
    images.push_back(embed(b).image.detach().to(torch::kFloat32));
    out.model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  if (!images.empty()) out.image = out.multimodal = torch::cat(images);
  if (!pixels.empty()) out.pixels = torch::cat(pixels);
  out.labels = f.labels;
  out.products = torch::arange(f.labels.size(0), torch::kLong);
  return out;
}
inline bool wants(const std::vector<std::string>& tasks, const std::string& name) {
  return std::find(tasks.begin(), tasks.end(), name) != tasks.end();
}
}  // namespace detail

/// Embeds what `tasks` need with `embed` (empty: pixels only, for the reference rows).
/// `unfused`, when given, supplies the query sets of text-only and image-only sources: their
/// embeddings never pass through the fusion layers, so a fusion-split sweep computes them once.
inline TaskSets embed_benchmark(const Benchmark& bench, std::shared_ptr<const data::Tokenizer> tokenizer,
                                const Config& config, const EmbedFunction& embed, const std::vector<std::string>& tasks,
                                bool keep_pixels, const TaskSets* unfused = nullptr) {
  TaskSets sets;
  data::ProductIndex products;
  bool catalog = false, centroids = false;
  for (const auto& name : tasks) {
    const auto t = bench.task(name);
    if (t.label == "fashion_mnist") continue;
    catalog = true;
    if (t.kind == TaskKind::categorization) centroids = true;
  }
  if (catalog)
    sets.test_catalog = embed_records(data::image_text_records(bench.test, products), bench.test.catalog, tokenizer,
                                      config, embed, keep_pixels);
  if (centroids) {
    data::ProductIndex train_products;
    sets.train_catalog = embed_records(data::image_text_records(bench.train, train_products), bench.train.catalog,
                                       tokenizer, config, embed, keep_pixels);
  }
  for (const auto& name : tasks) {
    const auto t = bench.task(name);
    if (!t.pairs || sets.sources.count(*t.pairs)) continue;
    if (unfused && t.query != Modality::multimodal && unfused->sources.count(*t.pairs))
      sets.sources[*t.pairs] = unfused->sources.at(*t.pairs);
    else
      sets.sources[*t.pairs] = embed_records(data::cross_pair_records(bench.test, products, {*t.pairs}),
                                             bench.test.sources, tokenizer, config, embed, keep_pixels);
  }
  if (detail::wants(tasks, "fashion_mnist_categorization")) {
    if (!bench.fashion_train) throw Error(Location{"", 0, "fashion_mnist"}, "Fashion-MNIST was not loaded");
    sets.fashion_train = detail::embed_fashion(*bench.fashion_train, config, embed, keep_pixels);
    sets.fashion_test = detail::embed_fashion(*bench.fashion_test, config, embed, keep_pixels);
  }
  return sets;
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

/// The raw-pixel reference: every image-bearing embedding replaced by the image's pixels.
inline TaskSets as_pixels(TaskSets sets) {
  auto swap = [](EmbeddedSet& s) {
    s.text = torch::Tensor();
    s.image = s.multimodal = s.pixels;
  };
  swap(sets.train_catalog), swap(sets.test_catalog), swap(sets.fashion_train), swap(sets.fashion_test);
  for (auto& [kind, s] : sets.sources) swap(s);
  return sets;
}

/// The character-trigram TF-IDF reference: every text-bearing embedding replaced by the
/// TF-IDF vector of the text (vocabulary fitted on the training split's texts).
inline TaskSets as_tfidf(TaskSets sets, const TrigramTfidf& tfidf) {
  auto swap = [&](EmbeddedSet& s) {
    s.image = torch::Tensor();
    s.text = s.multimodal = torch::Tensor();
    if (s.items.empty()) return;
    const auto texts = s.texts();
    if (std::all_of(texts.begin(), texts.end(), [](const std::string& x) { return x.empty(); })) return;
    s.text = s.multimodal = tfidf.transform(texts);
  };
  swap(sets.train_catalog), swap(sets.test_catalog), swap(sets.fashion_train), swap(sets.fashion_test);
  for (auto& [kind, s] : sets.sources) swap(s);
  return sets;
}

/// A TF-IDF vocabulary from a split's catalog and source texts.
inline TrigramTfidf fit_tfidf(const data::DatasetSplit& split) {
  TrigramTfidf tfidf;
  tfidf.fit(split.texts());
  return tfidf;
}

}  // namespace commercemm::eval
