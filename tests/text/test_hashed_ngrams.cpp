// Hashed character n-grams: ids computed by hand (FNV-1a 64 of each n-gram, in Python),
// normalisation across case, accents and compatibility forms, word boundaries, the special
// ids, decode, and errors for impossible sizes.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "commercemm/data/tokenizers.hpp"

using commercemm::data::HashedNgramTokenizer;
using Ids = std::vector<std::int64_t>;

BOOST_AUTO_TEST_SUITE(hashed_ngrams)

// 3 + FNV-1a-64(n-gram) mod 997 for a vocabulary of 1000: "<ki" 892, "kit" 763, "itt" 556,
// "tte" 389, "ten" 160, "en>" 557; "<a>" 59; "<ca" 184, "caf" 118, "afe" 177, "fe>" 985.
BOOST_AUTO_TEST_CASE(ids_are_the_hashed_trigrams_of_each_wrapped_word) {
  const HashedNgramTokenizer tokenizer(1000, 3);
  const Ids kitten{892, 763, 556, 389, 160, 557};
  BOOST_TEST(tokenizer.encode("kitten") == kitten);
  Ids two = kitten;
  two.push_back(59);
  BOOST_TEST(tokenizer.encode("kitten a") == two);
  BOOST_TEST(tokenizer.encode("").empty());
  BOOST_TEST(tokenizer.encode(" ,;- ").empty());
  BOOST_TEST(tokenizer.vocab_size() == 1000);
  BOOST_TEST(tokenizer.special_tokens().pad == 0);
  BOOST_TEST(tokenizer.special_tokens().unk == 1);
  BOOST_TEST(tokenizer.special_tokens().mask == 2);
  for (std::int64_t id : tokenizer.encode("Ἀθῆναι 東京タワー naïve 123 émoji 😀 ok")) {
    BOOST_TEST(id >= 3);
    BOOST_TEST(id < 1000);
  }
}

BOOST_AUTO_TEST_CASE(case_accents_and_compatibility_forms_do_not_matter) {
  const HashedNgramTokenizer tokenizer(1000, 3);
  const Ids cafe{184, 118, 177, 985};
  BOOST_TEST(tokenizer.encode("cafe") == cafe);
  BOOST_TEST(tokenizer.encode("Café") == cafe);       // precomposed é
  BOOST_TEST(tokenizer.encode("CAFE\u0301") == cafe);  // E + combining acute
  BOOST_TEST(tokenizer.encode("ＣＡＦＥ") == cafe);   // full-width (NFKC)
  BOOST_TEST(tokenizer.encode("KITTEN") == tokenizer.encode("kitten"));
  BOOST_TEST(tokenizer.encode("Straße") == tokenizer.encode("strasse"));  // full case folding
  // Indic vowel signs are part of the word, not accents: "<हि" is 40, "हिं" 707.
  const Ids hindi = tokenizer.encode("हिंदी");
  BOOST_TEST_REQUIRE(hindi.size() >= 2u);
  BOOST_TEST(hindi[0] == 40);
  BOOST_TEST(hindi[1] == 707);
}

BOOST_AUTO_TEST_CASE(punctuation_symbols_and_spaces_separate_words) {
  const HashedNgramTokenizer tokenizer(1000, 3);
  BOOST_TEST(tokenizer.encode("red-apple") == tokenizer.encode("red apple"));
  BOOST_TEST(tokenizer.encode("red\t\napple!") == tokenizer.encode("red apple"));
  BOOST_TEST(tokenizer.encode("red😀apple") == tokenizer.encode("red apple"));
  BOOST_TEST(tokenizer.encode("red apple") != tokenizer.encode("redapple"));
  // Invalid UTF-8 is dropped: the bytes around it still form one word.
  BOOST_TEST(tokenizer.encode("kit\xFFten") == tokenizer.encode("kitten"));
}

BOOST_AUTO_TEST_CASE(a_word_shorter_than_n_is_one_token) {
  // "<a>" has 3 code points: with n = 3 it is one trigram (59); with n = 4 it is whole, and
  // with n = 2 it gives "<a" (680) and "a>" (61).
  BOOST_TEST(HashedNgramTokenizer(1000, 3).encode("a") == Ids{59});
  BOOST_TEST(HashedNgramTokenizer(1000, 4).encode("a") == Ids{59});
  BOOST_TEST((HashedNgramTokenizer(1000, 2).encode("a") == Ids{680, 61}));
  BOOST_TEST(HashedNgramTokenizer(1000, 1).encode("ab").size() == 4u);  // <, a, b, >
  BOOST_TEST(HashedNgramTokenizer(1000, 8).encode("kitten").size() == 1u);
}

BOOST_AUTO_TEST_CASE(decode_names_the_ids_and_skips_the_special_ones) {
  const HashedNgramTokenizer tokenizer(1000, 3);
  BOOST_TEST(tokenizer.decode({0, 892, 2, 763, 1}) == "#892 #763");
  BOOST_CHECK_THROW(tokenizer.decode({1000}), commercemm::Error);
  BOOST_CHECK_THROW(tokenizer.decode({-1}), commercemm::Error);
}

BOOST_AUTO_TEST_CASE(impossible_sizes_are_errors_naming_the_key) {
  const auto message = [](std::int64_t vocab, std::int64_t n) {
    try {
      HashedNgramTokenizer(vocab, n);
    } catch (const commercemm::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BOOST_TEST(message(3, 3).find("model.text.vocab_size") != std::string::npos);
  BOOST_TEST(message(1000, 0).find("data.ngram") != std::string::npos);
  BOOST_TEST(message(1000, 9).find("data.ngram") != std::string::npos);
  BOOST_TEST(message(4, 1).empty());
  BOOST_TEST(HashedNgramTokenizer(4, 3).encode("kitten") == Ids(6, 3));  // one bucket
}

BOOST_AUTO_TEST_SUITE_END()
