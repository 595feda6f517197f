#pragma once
// Hashed character n-grams (fastText's subwords as a token sequence): every word, wrapped as
// "<word>", becomes its n-grams of n code points, each hashed into a fixed number of buckets.
// There is no vocabulary to learn or load, an unseen word still shares most of its pieces with
// the words it resembles, and "kitten" in a query and "Kitten" in a title share four tokens,
// so the text side starts with the lexical signal a character-trigram TF-IDF uses.
//
// Normalisation: NFKC, full case folding, and the Latin/Greek/Cyrillic accents (combining
// marks U+0300-U+036F) dropped, so "Café" and "cafe" agree; the vowel signs of Indic scripts
// (in their own blocks) are kept. A word is a maximal run of letters, numbers and marks;
// everything else separates words. A wrapped word shorter than n is one token.
//
// Ids: pad = 0, unk = 1, mask = 2, then 3 + FNV-1a-64(n-gram's UTF-8) mod buckets, the same
// on every machine; encoding never yields unk. Hashes cannot be spelled back: decode() writes
// each id as "#id".
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <commercemm/core/error.hpp>
#include <commercemm/data/tokenizer.hpp>
#include <commercemm/data/tokenizers/unicode.hpp>

namespace commercemm::data {

class HashedNgramTokenizer final : public Tokenizer {
 public:
  static constexpr std::int64_t special_count = 3;
  static constexpr std::int64_t max_n = 8;

  /// `vocab_size` ids in all (the 3 special ones, then vocab_size - 3 buckets), n-grams of
  /// `n` code points.
  HashedNgramTokenizer(std::int64_t vocab_size, std::int64_t n) : vocab_size_(vocab_size), n_(n) {
    if (vocab_size < special_count + 1)
      throw Error(Location{"", 0, "model.text.vocab_size"},
                  "hashed n-grams need at least one bucket besides pad, unk and mask: vocab_size >= 4, got " +
                      std::to_string(vocab_size));
    if (n < 1 || n > max_n)
      throw Error(Location{"", 0, "data.ngram"}, "n-gram size must be in [1, 8], got " + std::to_string(n));
  }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    std::vector<std::int64_t> ids;
    std::vector<std::int32_t> word;
    const auto flush = [&] {
      if (word.empty()) return;
      word.insert(word.begin(), '<');
      word.push_back('>');
      const std::size_t n = static_cast<std::size_t>(n_);
      if (word.size() <= n) {
        ids.push_back(bucket(word, 0, word.size()));
      } else {
        for (std::size_t i = 0; i + n <= word.size(); ++i) ids.push_back(bucket(word, i, n));
      }
      word.clear();
    };
    for (std::int32_t cp : normalized(text)) {
      if (unicode::is_letter(cp) || unicode::is_number(cp) || is_mark(cp))
        word.push_back(cp);
      else
        flush();
    }
    flush();
    return ids;
  }

  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string out;
    for (std::int64_t id : ids) {
      check_id(id, vocab_size_);
      if (id < special_count) continue;
      if (!out.empty()) out += ' ';
      out += '#' + std::to_string(id);
    }
    return out;
  }

  std::int64_t vocab_size() const override { return vocab_size_; }
  SpecialTokens special_tokens() const override { return {0, 1, 2}; }
  std::int64_t n() const { return n_; }

  /// The normalised code points of `text` (see the header comment); invalid UTF-8 is dropped.
  static std::vector<std::int32_t> normalized(std::string_view text) {
    std::string valid;
    for (const unicode::Char& c : unicode::decode(text))
      if (c.cp != unicode::invalid) unicode::append(valid, c.cp);
    const auto folded = unicode::mapped(valid, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    std::vector<std::int32_t> unaccented;
    for (const unicode::Char& c : unicode::decode(folded))
      if (c.cp < 0x0300 || c.cp > 0x036F) unaccented.push_back(c.cp);
    std::vector<std::int32_t> composed;
    for (const unicode::Char& c : unicode::decode(unicode::mapped(unicode::encode(unaccented), UTF8PROC_COMPOSE)))
      composed.push_back(c.cp);
    return composed;
  }

 private:
  static bool is_mark(std::int32_t cp) {
    const auto c = unicode::category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
  }

  std::int64_t bucket(const std::vector<std::int32_t>& word, std::size_t from, std::size_t count) const {
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64
    std::string bytes;
    for (std::size_t i = from; i < from + count; ++i) unicode::append(bytes, word[i]);
    for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
    return special_count + static_cast<std::int64_t>(h % static_cast<std::uint64_t>(vocab_size_ - special_count));
  }

  std::int64_t vocab_size_;
  std::int64_t n_;
};

}  // namespace commercemm::data
