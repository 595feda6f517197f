#pragma once
// Learns a byte-level BPE vocabulary (GPT-2 style) from a corpus, so text in any script gets
// its own merges. Same pre-tokenization as ByteLevelBpe; the result is a ByteLevelBpe whose
// save()/from_files() round-trip it through encoder.json + vocab.bpe.
//
// Algorithm: count the pre-tokenized words once, start from the 256 byte tokens, then
// repeatedly merge the most frequent adjacent pair. Pair counts are kept incrementally:
// a merge only revisits the words that contain the pair (an index from pair to words) and a
// lazy max-heap holds the candidates. Ties go to the pair with the smaller (left, right) ids,
// so training is deterministic.
#include <algorithm>
#include <cstdint>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/data/tokenizers/unicode.hpp>

namespace commercemm::data {

struct BpeTrainerOptions {
  /// Total ids wanted, the three appended special tokens included (ByteLevelBpe::vocab_size()).
  /// Must be at least 259 (256 bytes + pad, unk, mask).
  std::int64_t vocab_size = 8000;
  /// Pairs seen fewer times than this are never merged (training may stop short of vocab_size).
  std::int64_t min_frequency = 2;
};

/// Learns a byte-level BPE from `corpus`. The result has vocab_size() == options.vocab_size
/// unless the corpus runs out of pairs seen min_frequency times.
inline ByteLevelBpe train_byte_level_bpe(const std::vector<std::string>& corpus, const BpeTrainerOptions& options = {}) {
  if (options.vocab_size < 259) {
    throw Error(Location{"", 0, "vocab_size"}, "must be at least 259 (256 bytes and 3 special tokens), got " +
                                                   std::to_string(options.vocab_size));
  }
  if (options.min_frequency < 1) {
    throw Error(Location{"", 0, "min_frequency"}, "must be at least 1");
  }
  const std::size_t target = static_cast<std::size_t>(options.vocab_size - 3);

  // Distinct words and their counts, in a fixed (sorted) order.
  std::unordered_map<std::string_view, std::int64_t> word_counts;
  for (const std::string& text : corpus) {
    for (std::string_view piece : gpt2_pre_tokenize(text)) ++word_counts[piece];
  }
  std::vector<std::pair<std::string_view, std::int64_t>> sorted(word_counts.begin(), word_counts.end());
  std::sort(sorted.begin(), sorted.end());

  struct Word {
    std::vector<std::int64_t> symbols;
    std::int64_t count;
  };
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [piece, count] : sorted) {
    Word w{{}, count};
    for (unsigned char b : piece) w.symbols.push_back(b);
    words.push_back(std::move(w));
  }

  std::vector<std::string> tokens;  // byte-table spellings; id b is byte b
  std::unordered_map<std::string, std::int64_t> token_ids;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(bpe_detail::bytes_to_token(std::string(1, static_cast<char>(b))));
    token_ids.emplace(tokens.back(), b);
  }

  std::unordered_map<std::uint64_t, std::int64_t> pair_counts;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> pair_words;  // may hold stale entries
  for (std::uint32_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      const auto key = bpe_detail::pair_key(s[i], s[i + 1]);
      pair_counts[key] += words[w].count;
      pair_words[key].push_back(w);
    }
  }

  // Max-heap on (count, then smaller pair key first); entries go stale when counts change.
  struct Candidate {
    std::int64_t count;
    std::uint64_t key;
    bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : key > o.key; }
  };
  std::priority_queue<Candidate> heap;
  for (const auto& [key, count] : pair_counts) heap.push({count, key});

  std::vector<ByteLevelBpe::Merge> merges;
  std::unordered_set<std::uint64_t> recorded;
  std::unordered_map<std::uint64_t, std::int64_t> delta;
  while (tokens.size() < target && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const auto current = pair_counts.find(top.key);
    if (current == pair_counts.end() || current->second != top.count) continue;  // stale
    if (top.count < options.min_frequency) break;

    const auto left = static_cast<std::int64_t>(top.key >> 32);
    const auto right = static_cast<std::int64_t>(top.key & 0xffffffffu);
    const std::string spelled = tokens[static_cast<std::size_t>(left)] + tokens[static_cast<std::size_t>(right)];
    // A pair can come back when a later merge re-spells an existing token; its rule is
    // already recorded, so vocab.bpe lists each pair once.
    if (recorded.insert(top.key).second) {
      merges.emplace_back(tokens[static_cast<std::size_t>(left)], tokens[static_cast<std::size_t>(right)]);
    }
    // Two merges can spell the same token ("a"+"bc", "ab"+"c"): it keeps its first id.
    auto [tok, fresh] = token_ids.emplace(spelled, static_cast<std::int64_t>(tokens.size()));
    if (fresh) tokens.push_back(spelled);
    const std::int64_t merged = tok->second;

    std::vector<std::uint32_t> affected = std::move(pair_words[top.key]);
    pair_words.erase(top.key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    delta.clear();
    for (std::uint32_t w : affected) {
      auto& s = words[w].symbols;
      const std::int64_t count = words[w].count;
      bool found = false;
      for (std::size_t i = 0; i + 1 < s.size(); ++i) found = found || (s[i] == left && s[i + 1] == right);
      if (!found) continue;  // a stale index entry
      for (std::size_t i = 0; i + 1 < s.size(); ++i) delta[bpe_detail::pair_key(s[i], s[i + 1])] -= count;
      std::size_t out = 0;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          s[out++] = merged;
          ++i;
        } else {
          s[out++] = s[i];
        }
      }
      s.resize(out);
      for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        const auto key = bpe_detail::pair_key(s[i], s[i + 1]);
        delta[key] += count;
        if (key != top.key) pair_words[key].push_back(w);
      }
    }
    for (const auto& [key, change] : delta) {
      if (change == 0) continue;
      std::int64_t& c = pair_counts[key];
      c += change;
      if (c <= 0) {
        pair_counts.erase(key);
      } else {
        heap.push({c, key});
      }
    }
    pair_counts.erase(top.key);
  }
  return ByteLevelBpe::from_vocab(std::move(tokens), merges);
}

}  // namespace commercemm::data
