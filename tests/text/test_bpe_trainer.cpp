// The byte-level BPE trainer on the multilingual emojibase corpus: vocabulary size,
// determinism, lossless round trips, compression, and save/load through GPT-2's files.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "commercemm/data/tokenizers.hpp"
#include "support.hpp"

using commercemm::data::BpeTrainerOptions;
using commercemm::data::ByteLevelBpe;
using commercemm::data::train_byte_level_bpe;
namespace t = commercemm::test;

namespace {

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> strings = t::emojibase_corpus(t::all_locales());
  return strings;
}

// The default model vocabulary, learned once for the tests below.
const ByteLevelBpe& trained() {
  static const ByteLevelBpe tokenizer = [] {
    const auto start = std::chrono::steady_clock::now();
    auto tok = train_byte_level_bpe(corpus(), BpeTrainerOptions{8000, 2});
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    BOOST_TEST_MESSAGE("trained an 8000-token BPE on " << corpus().size() << " strings in " << took.count() << " s");
    return tok;
  }();
  return tokenizer;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bpe_trainer)

BOOST_AUTO_TEST_CASE(hand_checked_merges) {
  // Pieces "ab", " ab", " ab", " cd": (a,b) is seen 3 times, then (Ġ,ab) twice, then only once.
  const auto tok = train_byte_level_bpe({"ab ab ab cd"}, BpeTrainerOptions{1000, 2});
  BOOST_TEST(tok.merges().size() == 2u);
  BOOST_TEST(tok.merges()[0].first == "a");
  BOOST_TEST(tok.merges()[0].second == "b");
  BOOST_TEST(tok.merges()[1].first == "\xC4\xA0");  // Ġ, GPT-2's spelling of a space
  BOOST_TEST(tok.merges()[1].second == "ab");
  BOOST_TEST(tok.vocab_size() == 256 + 2 + 3);
  BOOST_TEST(tok.encode("ab ab cd") == (std::vector<std::int64_t>{256, 257, ' ', 'c', 'd'}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bad_options) {
  BOOST_CHECK_THROW(train_byte_level_bpe({"x"}, BpeTrainerOptions{258, 2}), commercemm::Error);
  BOOST_CHECK_THROW(train_byte_level_bpe({"x"}, BpeTrainerOptions{1000, 0}), commercemm::Error);
}

BOOST_AUTO_TEST_CASE(requested_vocab_size) {
  BOOST_TEST(corpus().size() >= 50000u);
  BOOST_TEST(trained().vocab_size() == 8000);
  const auto sp = trained().special_tokens();
  BOOST_TEST(sp.pad == 7997);
  BOOST_TEST(sp.unk == 7998);
  BOOST_TEST(sp.mask == 7999);
}

BOOST_AUTO_TEST_CASE(deterministic) {
  // Half the corpus, trained twice from scratch.
  std::vector<std::string> half;
  for (std::size_t i = 0; i < corpus().size(); i += 2) half.push_back(corpus()[i]);
  const auto a = train_byte_level_bpe(half, BpeTrainerOptions{3000, 2});
  const auto b = train_byte_level_bpe(half, BpeTrainerOptions{3000, 2});
  BOOST_TEST(a.vocab_size() == 3000);
  BOOST_TEST((a.merges() == b.merges()));
  BOOST_TEST((a.tokens() == b.tokens()));
}

BOOST_AUTO_TEST_CASE(round_trips_and_compresses) {
  const auto& tok = trained();
  std::size_t bytes = 0, tokens = 0, failures = 0;
  for (const auto& s : corpus()) {
    const auto ids = tok.encode(s);
    bytes += s.size();
    tokens += ids.size();
    if (tok.decode(ids) != s && failures++ == 0) BOOST_ERROR("no round trip for \"" << s << "\"");
  }
  // Text it never saw, invalid UTF-8 included, still round-trips byte for byte.
  for (const std::string s : {"Zebra crossing \xF0\x9F\xA6\x93 42!", "\xFF\xFE broken", "\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x9F\xCE\xA3"}) {
    BOOST_TEST(tok.decode(tok.encode(s)) == s);
  }
  const double ratio = static_cast<double>(bytes) / static_cast<double>(tokens);
  BOOST_TEST_MESSAGE("trained BPE: " << bytes << " UTF-8 bytes -> " << tokens << " tokens (" << ratio
                                     << " bytes per token) over " << corpus().size() << " strings");
  BOOST_TEST(failures == 0u);
  BOOST_TEST(ratio > 3.0);
}

BOOST_AUTO_TEST_CASE(save_and_load_round_trip) {
  const auto& tok = trained();
  t::TempDir dir;
  tok.save_to_directory(dir.path());
  const auto loaded = ByteLevelBpe::from_directory(dir.path());
  BOOST_TEST(loaded.vocab_size() == tok.vocab_size());
  BOOST_TEST((loaded.tokens() == tok.tokens()));
  BOOST_TEST((loaded.merges() == tok.merges()));
  std::size_t different = 0;
  for (const auto& s : corpus()) different += loaded.encode(s) != tok.encode(s);
  BOOST_TEST(different == 0u);
  // The saved files are GPT-2's format: the JSON is {token: id}, vocab.bpe starts with #version.
  const auto json = nlohmann::json::parse(t::slurp(dir.file("encoder.json")));
  BOOST_TEST(json.size() == static_cast<std::size_t>(tok.regular_size()));
  BOOST_TEST(t::slurp(dir.file("vocab.bpe")).rfind("#version: 0.2\n", 0) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
