#pragma once
// The reference rows every evaluation table shows (DESIGN section 7): features that need no
// training, so a model that does not beat them on the same split has not learned the task.
// They are meant to be strong: trigram TF-IDF matches product titles across languages through
// shared spellings, and cosine on small mean-centred thumbnails finds near-duplicate photos.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <utf8proc.h>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/data/tokenizers/unicode.hpp>
#include <commercemm/nn/thumbnail.hpp>

namespace commercemm::eval {

/// Character-trigram TF-IDF, the text-side reference. It follows scikit-learn's
/// TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3)) with smooth idf and L2 rows, except
/// that lower-casing is Unicode case folding (after NFC composition), so "ÄBC" and "äbc" agree
/// whatever normal form they arrive in. Words are split on whitespace and padded with one
/// space on each side, so trigrams at word starts and ends (" ch", "te ") are features of their
/// own. Cognates ("chocolate", "chocolat", "Schokolade") share many trigrams, which is why this
/// baseline carries across languages.
class TrigramTfidf {
 public:
  /// Learns the vocabulary (every trigram in `corpus`, sorted by code points) and the smooth
  /// idf = ln((1 + N) / (1 + df)) + 1, where df counts the documents holding the trigram.
  /// Throws commercemm::Error for text that is not valid UTF-8.
  void fit(const std::vector<std::string>& corpus) {
    std::unordered_map<std::uint64_t, std::int64_t> df;
    for (std::size_t i = 0; i < corpus.size(); ++i) {
      const std::vector<std::uint64_t> grams = trigrams(corpus[i], i);
      for (const std::uint64_t g : std::unordered_set<std::uint64_t>(grams.begin(), grams.end())) ++df[g];
    }
    std::vector<std::uint64_t> keys;
    keys.reserve(df.size());
    for (const auto& entry : df) keys.push_back(entry.first);
    std::sort(keys.begin(), keys.end());  // packed big-end first, so this is code point order

    vocabulary_.clear();
    vocabulary_.reserve(keys.size());
    idf_ = torch::empty({static_cast<std::int64_t>(keys.size())}, torch::kFloat32);
    auto idf = idf_.accessor<float, 1>();
    const double n = static_cast<double>(corpus.size());
    for (std::size_t j = 0; j < keys.size(); ++j) {
      vocabulary_.emplace(keys[j], static_cast<std::int64_t>(j));
      idf[static_cast<std::int64_t>(j)] =
          static_cast<float>(std::log((1.0 + n) / (1.0 + static_cast<double>(df[keys[j]]))) + 1.0);
    }
    fitted_ = true;
  }

  /// [N, V] float32 rows of raw trigram counts times idf, L2-normalised, so a dot product is
  /// the cosine similarity. Trigrams not seen by fit() are ignored; a text with none of the
  /// vocabulary's trigrams is an all-zero row. Dense: N * V * 4 bytes, so transform large
  /// collections in chunks.
  torch::Tensor transform(const std::vector<std::string>& texts) const {
    if (!fitted_) throw Error("TrigramTfidf::transform called before fit");
    const auto rows = static_cast<std::int64_t>(texts.size());
    torch::Tensor out = torch::zeros({rows, vocabulary_size()}, torch::kFloat32);
    if (rows == 0 || vocabulary_size() == 0) return out;
    auto counts = out.accessor<float, 2>();
    for (std::size_t i = 0; i < texts.size(); ++i) {
      for (const std::uint64_t g : trigrams(texts[i], i)) {
        const auto it = vocabulary_.find(g);
        if (it != vocabulary_.end()) counts[static_cast<std::int64_t>(i)][it->second] += 1.0f;
      }
    }
    out.mul_(idf_);
    return out.div_(out.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12));  // zero rows stay zero
  }

  /// The number of distinct trigrams fit() saw (0 before fit).
  std::int64_t vocabulary_size() const { return static_cast<std::int64_t>(vocabulary_.size()); }

  /// [V] float32 idf per vocabulary column (undefined before fit).
  const torch::Tensor& idf() const { return idf_; }

  /// The column of a trigram given as UTF-8 (three code points, already case folded), or -1.
  std::int64_t column(std::string_view trigram) const {
    const auto chars = data::unicode::decode(trigram);
    if (chars.size() != 3) return -1;
    for (const auto& c : chars) {
      if (c.cp == data::unicode::invalid) return -1;
    }
    const auto it = vocabulary_.find(pack(chars[0].cp, chars[1].cp, chars[2].cp));
    return it == vocabulary_.end() ? -1 : it->second;
  }

 private:
  // Code points are below 2^21, so three of them pack into one integer key; the first in the
  // highest bits keeps integer order equal to code point (lexicographic) order.
  static std::uint64_t pack(std::int32_t a, std::int32_t b, std::int32_t c) {
    return (static_cast<std::uint64_t>(a) << 42) | (static_cast<std::uint64_t>(b) << 21) | static_cast<std::uint64_t>(c);
  }

  /// NFC plus Unicode case folding: the Unicode-aware version of str.lower() for matching.
  static std::string fold(const std::string& text, std::size_t index) {
    utf8proc_uint8_t* mapped = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD));
    if (n < 0)
      throw Error(std::string("TrigramTfidf: text ") + std::to_string(index) + " (0-based): " + utf8proc_errmsg(n));
    std::string out(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(n));
    std::free(mapped);
    return out;
  }

  /// Every trigram occurrence of `text`, word by word, each word padded with spaces.
  static std::vector<std::uint64_t> trigrams(const std::string& text, std::size_t index) {
    std::vector<std::uint64_t> out;
    std::vector<std::int32_t> word{0x20};
    const auto flush = [&] {
      if (word.size() > 1) {
        word.push_back(0x20);
        for (std::size_t k = 0; k + 3 <= word.size(); ++k) out.push_back(pack(word[k], word[k + 1], word[k + 2]));
      }
      word.assign(1, 0x20);
    };
    for (const auto& c : data::unicode::decode(fold(text, index))) {
      if (data::unicode::is_python_space(c.cp)) {
        flush();
      } else {
        word.push_back(c.cp);
      }
    }
    flush();
    return out;
  }

  std::unordered_map<std::uint64_t, std::int64_t> vocabulary_;
  torch::Tensor idf_;
  bool fitted_ = false;
};

/// The image-side reference: [N, C, H, W] images (C = 3 for RGB, any real dtype) ->
/// [N, C * side * side] float32, nn::thumbnail's rows, so a dot product is a cosine. Centring
/// makes the score blind to overall brightness (and normalising to contrast), which otherwise
/// dominates raw-pixel similarity between product photos. A flat image gives a zero row.
inline torch::Tensor pixel_features(const torch::Tensor& images, std::int64_t side = 16) {
  if (images.dim() != 4)
    throw Error("pixel_features expects [N, C, H, W] images, got " + std::to_string(images.dim()) + " dimensions");
  if (side <= 0) throw Error("pixel_features: side must be positive, got " + std::to_string(side));
  if (images.is_complex() || images.scalar_type() == torch::kBool)
    throw Error(std::string("pixel_features: unsupported dtype ") + c10::toString(images.scalar_type()));
  return nn::thumbnail(images, side);
}

}  // namespace commercemm::eval
