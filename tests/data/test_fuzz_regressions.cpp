// Every input fuzzing found (tests/fuzz/regressions/<target>/) replayed through its libFuzzer
// harness, compiled here with g++ under a name of its own: a harness aborts when an invariant
// breaks and lets only commercemm::Error out. scripts/test-sanitized replays them under ASan and
// UBSan, as the fuzzers run; in CI, CTest `fuzz` does so for the manifest-items and TOML
// targets. The image target's regressions are replayed by CTest `fuzz` (its harness is built
// on a stand-in for LibTorch), the checkpoint target's by the app tests (test_checkpoint.cpp).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define LLVMFuzzerTestOneInput replay_manifest_items
#include "../fuzz/manifest_items.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_manifest_pairs
#include "../fuzz/manifest_pairs.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_config_toml
#include "../fuzz/config_toml.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_config_override
#include "../fuzz/config_override.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_wordpiece_vocab
#include "../fuzz/wordpiece_vocab.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerInitialize init_wordpiece_encode
#define LLVMFuzzerTestOneInput replay_wordpiece_encode
#include "../fuzz/wordpiece_encode.cpp"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput replay_bpe_vocab
#include "../fuzz/bpe_vocab.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerInitialize init_bpe_encode
#define LLVMFuzzerTestOneInput replay_bpe_encode
#include "../fuzz/bpe_encode.cpp"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

namespace {

using Harness = int (*)(const std::uint8_t*, std::size_t);

struct Target {
  std::string name;
  Harness harness;
};

const std::vector<Target>& targets() {
  static const std::vector<Target> all{
      {"manifest_items", replay_manifest_items},   {"manifest_pairs", replay_manifest_pairs},
      {"config_toml", replay_config_toml},         {"config_override", replay_config_override},
      {"wordpiece_vocab", replay_wordpiece_vocab}, {"wordpiece_encode", replay_wordpiece_encode},
      {"bpe_vocab", replay_bpe_vocab},             {"bpe_encode", replay_bpe_encode}};
  return all;
}

std::string bytes_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fuzz_regressions)

BOOST_AUTO_TEST_CASE(every_committed_regression_replays_cleanly) {
  const auto root = std::filesystem::path(COMMERCEMM_SOURCE_DIR) / "tests/fuzz/regressions";
  std::size_t replayed = 0;
  for (const auto& target : targets()) {
    const auto dir = root / target.name;
    if (!std::filesystem::is_directory(dir)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      BOOST_TEST_MESSAGE(target.name << ": " << file.filename().string());
      const auto bytes = bytes_of(file);
      BOOST_TEST(target.harness(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
      ++replayed;
    }
  }
  // Every target directory with inputs has a replay: here, in CTest `fuzz` or in the app tests.
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const auto name = entry.path().filename().string();
    const bool known = name == "image" || name == "checkpoint" ||
                       std::any_of(targets().begin(), targets().end(), [&](const Target& t) { return t.name == name; });
    BOOST_TEST(known, "tests/fuzz/regressions/" << name << " has no replay");
  }
  BOOST_TEST(replayed >= 8u);  // the inputs committed so far (config, --set, pairs)
}

BOOST_AUTO_TEST_SUITE_END()
