#pragma once
// Shared by the tokenizer tests: fixture and corpus readers, temporary files.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/data/tokenizer.hpp>

namespace commercemm::test {

inline std::string packages_dir() { return COMMERCEMM_PACKAGES_DIR; }

/// tests/fixtures/tokenizers, or $COMMERCEMM_TOKENIZER_FIXTURES (a full set made with
/// `scripts/make-tokenizer-fixtures .packages DIR --all`).
inline std::string fixture_dir() {
  if (const char* dir = std::getenv("COMMERCEMM_TOKENIZER_FIXTURES")) return dir;
  return std::string(COMMERCEMM_SOURCE_DIR) + "/tests/fixtures/tokenizers";
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

/// Every label and tag of these emojibase-data locales, deduplicated and sorted.
inline std::vector<std::string> emojibase_corpus(const std::vector<std::string>& locales) {
  std::set<std::string> strings;
  for (const std::string& locale : locales) {
    const auto data = nlohmann::json::parse(slurp(packages_dir() + "/emojibase-data/" + locale + "/data.json"));
    for (const auto& emoji : data) {
      strings.insert(emoji.at("label").get<std::string>());
      if (emoji.contains("tags")) {
        for (const auto& tag : emoji.at("tags")) strings.insert(tag.get<std::string>());
      }
    }
  }
  return {strings.begin(), strings.end()};
}

inline const std::vector<std::string>& all_locales() {
  static const std::vector<std::string> locales{"en", "de", "fr", "es", "ru", "ja",
                                                "zh", "ko", "th", "hi", "uk", "vi"};
  return locales;
}

/// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("commercemm-text-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ids_to_string(const std::vector<std::int64_t>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
  return out;
}

/// Encodes the "text" of every line of a fixture once serially and then from 4 threads at
/// once; returns whether every thread got the serial ids (tokenizers must be thread-safe).
inline bool threads_agree(const commercemm::data::Tokenizer& tok, const std::string& fixture) {
  std::vector<std::string> texts;
  for (const auto& r : read_jsonl(fixture_dir() + "/" + fixture)) texts.push_back(r.at("text").get<std::string>());
  std::vector<std::vector<std::int64_t>> serial;
  for (const auto& s : texts) serial.push_back(tok.encode(s));
  std::vector<std::vector<std::vector<std::int64_t>>> results(4);
  std::vector<std::thread> threads;
  for (auto& out : results)
    threads.emplace_back([&tok, &texts, &out] {
      for (const auto& s : texts) out.push_back(tok.encode(s));
    });
  for (auto& th : threads) th.join();
  for (const auto& out : results)
    if (out != serial) return false;
  return !serial.empty();
}

}  // namespace commercemm::test
