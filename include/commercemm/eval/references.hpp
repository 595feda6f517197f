#pragma once
// The reference rows every evaluation table shows (DESIGN section 7): raw-pixel cosine
// similarity on the image side and character-trigram TF-IDF on the text side.
#include <algorithm>
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

/// A TF-IDF vocabulary from a split's catalog and source texts.
inline TrigramTfidf fit_tfidf(const data::DatasetSplit& split) {
  TrigramTfidf tfidf;
  tfidf.fit(split.texts());
  return tfidf;
}

}  // namespace commercemm::eval
