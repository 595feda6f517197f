#pragma once
// A benchmark directory's splits and tasks, and the embedded sets a list of tasks scores.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/config.hpp>
#include <commercemm/data/fashion_mnist.hpp>
#include <commercemm/data/records.hpp>
#include <commercemm/eval/downstream_tasks.hpp>
#include <commercemm/eval/embedding_set.hpp>

namespace commercemm::eval {

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
    const bool outside = config.data.allow_outside_paths;
    Benchmark b{data::read_split(dir, "train", true, outside), data::read_split(dir, "test", true, outside),
                std::nullopt, std::nullopt, {}};
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

}  // namespace commercemm::eval
