#pragma once
// The reference rows every evaluation table shows (DESIGN section 7): raw-pixel cosine
// similarity on the image side and character-trigram TF-IDF on the text side.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <commercemm/data/manifest.hpp>
#include <commercemm/eval/baselines.hpp>
#include <commercemm/eval/benchmark.hpp>

namespace commercemm::eval {

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

/// The hybrid row: the model's embeddings, each joined with its text's TF-IDF vector scaled by
/// sqrt(weight), so that an inner product is the model's cosine plus `weight` times the TF-IDF
/// cosine: learned and lexical evidence summed, as hybrid search engines rank. `tfidf` is
/// as_tfidf of the same sets. Image embeddings get zeros in the lexical part (an image query
/// scores by the model alone), as do items without text. Only the TF-IDF columns some catalog
/// text uses are kept: every task ranks or averages catalog rows, so the other columns add
/// nothing to any score, and the sets stay small. Fashion-MNIST (no text) is left as it is.
inline TaskSets as_hybrid(TaskSets model, const TaskSets& tfidf, double weight) {
  torch::Tensor used;  // [V] bool: a column some catalog text has
  for (const auto* catalog : {&tfidf.train_catalog, &tfidf.test_catalog}) {
    if (!catalog->text.defined() || catalog->text.size(0) == 0) continue;
    const auto u = catalog->text.ne(0).any(0);
    used = used.defined() ? used.logical_or(u) : u;
  }
  if (!used.defined()) return model;  // no catalog text: nothing lexical to add
  const auto columns = used.nonzero().squeeze(1);
  const double scale = std::sqrt(weight);
  auto join = [&](EmbeddedSet& s, const EmbeddedSet& t) {
    if (s.items.empty()) return;
    const auto lexical = t.text.defined() ? t.text.index_select(1, columns).mul(scale)
                                          : torch::zeros({s.size(), columns.size(0)}, torch::kFloat32);
    auto unit = [](const torch::Tensor& x) { return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12); };
    if (s.image.defined()) s.image = torch::cat({unit(s.image), torch::zeros_like(lexical)}, 1);
    if (s.text.defined()) s.text = torch::cat({unit(s.text), lexical}, 1);
    if (s.multimodal.defined()) s.multimodal = torch::cat({unit(s.multimodal), lexical}, 1);
  };
  join(model.train_catalog, tfidf.train_catalog), join(model.test_catalog, tfidf.test_catalog);
  for (auto& [kind, s] : model.sources) join(s, tfidf.sources.at(kind));
  return model;
}

/// A TF-IDF vocabulary from a split's catalog and source texts.
inline TrigramTfidf fit_tfidf(const data::DatasetSplit& split) {
  TrigramTfidf tfidf;
  tfidf.fit(split.texts());
  return tfidf;
}

}  // namespace commercemm::eval
