// The reference rows: trigram TF-IDF worked by hand, case folding and cognates, and the
// brightness-blind raw-pixel features.
#include <cmath>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/eval/baselines.hpp>

using commercemm::eval::pixel_features;
using commercemm::eval::TrigramTfidf;

namespace {

float cosine(const torch::Tensor& rows, std::int64_t a, std::int64_t b) {
  return (rows[a] * rows[b]).sum().item<float>();  // rows are L2-normalised
}

}  // namespace

BOOST_AUTO_TEST_SUITE(baselines)

BOOST_AUTO_TEST_CASE(trigram_tfidf_by_hand) {
  // corpus: d1 = "ab", d2 = "abc ab"; words are padded: " ab ", " abc ", " ab ".
  //   d1 trigrams: " ab", "ab "            d2 trigrams: " ab", "abc", "bc ", " ab", "ab "
  // vocabulary in code point order (space first): " ab"=0, "ab "=1, "abc"=2, "bc "=3.
  // df = [2, 2, 1, 1], N = 2, idf = ln((1+N)/(1+df)) + 1 = [1, 1, 1+ln(3/2), 1+ln(3/2)].
  TrigramTfidf tfidf;
  tfidf.fit({"ab", "abc ab"});
  BOOST_TEST(tfidf.vocabulary_size() == 4);
  BOOST_TEST(tfidf.column(" ab") == 0);
  BOOST_TEST(tfidf.column("ab ") == 1);
  BOOST_TEST(tfidf.column("abc") == 2);
  BOOST_TEST(tfidf.column("bc ") == 3);
  BOOST_TEST(tfidf.column("xyz") == -1);
  const double i = 1.0 + std::log(1.5);  // 1.405465
  const auto idf = tfidf.idf();
  BOOST_TEST(idf[0].item<float>() == 1.0f);
  BOOST_TEST(idf[1].item<float>() == 1.0f);
  BOOST_TEST(idf[2].item<float>() == static_cast<float>(i), boost::test_tools::tolerance(1e-6f));

  // "abc ab": tf = [2, 1, 1, 1], tf*idf = [2, 1, i, i], norm = sqrt(5 + 2 i^2) = 2.991766,
  //   row = [0.668503, 0.334252, 0.469775, 0.469775].
  // "ab": [1, 1, 0, 0] / sqrt(2). "xyz": no known trigram, the zero row.
  const torch::Tensor rows = tfidf.transform({"abc ab", "ab", "xyz", "AB"});
  BOOST_TEST(rows.sizes() == torch::IntArrayRef({4, 4}));
  BOOST_TEST(rows.scalar_type() == torch::kFloat32);
  const double norm = std::sqrt(5.0 + 2.0 * i * i);
  const std::vector<double> expected = {2 / norm, 1 / norm, i / norm, i / norm};
  BOOST_TEST(std::abs(norm - 2.991766) < 1e-6);
  for (std::int64_t k = 0; k < 4; ++k)
    BOOST_TEST(rows[0][k].item<float>() == static_cast<float>(expected[static_cast<std::size_t>(k)]),
               boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(rows[0][0].item<float>() == 0.668503f, boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(rows[0][2].item<float>() == 0.469775f, boost::test_tools::tolerance(1e-5f));
  const float half = static_cast<float>(1 / std::sqrt(2.0));
  BOOST_TEST(torch::allclose(rows[1], torch::tensor({half, half, 0.0f, 0.0f})));
  BOOST_TEST(torch::equal(rows[2], torch::zeros({4})));
  BOOST_TEST(torch::equal(rows[3], rows[1]));  // "AB" folds to "ab"
  // cosine("abc ab", "ab") = (2 + 1) / (norm * sqrt(2))
  BOOST_TEST(cosine(rows, 0, 1) == static_cast<float>(3 / (norm * std::sqrt(2.0))), boost::test_tools::tolerance(1e-5f));
}

BOOST_AUTO_TEST_CASE(trigram_tfidf_identity_casefolding_and_cognates) {
  const std::vector<std::string> corpus = {"chocolate bar",   "chocolat noir",   "Schokolade",  "bicycle helmet",
                                           "casque de vélo",  "ÄBC",             "running shoes", "chaussures"};
  TrigramTfidf tfidf;
  tfidf.fit(corpus);
  // "äbc" arrives decomposed here (a + U+0308), the fold composes it back.
  const torch::Tensor rows =
      tfidf.transform({"chocolate bar", "chocolate bar", "ÄBC", "äbc", "a\xCC\x88" "bc", "chocolate", "chocolat", "bicycle"});
  BOOST_TEST(rows.sizes() == torch::IntArrayRef({8, tfidf.vocabulary_size()}));
  BOOST_TEST(cosine(rows, 0, 1) == 1.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(cosine(rows, 2, 3) == 1.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(cosine(rows, 2, 4) == 1.0f, boost::test_tools::tolerance(1e-6f));
  const float cognates = cosine(rows, 5, 6);
  const float unrelated = cosine(rows, 5, 7);
  BOOST_TEST_MESSAGE("cos(chocolate, chocolat) = " << cognates << ", cos(chocolate, bicycle) = " << unrelated);
  BOOST_TEST(cognates > 0.5f);
  BOOST_TEST(cognates > unrelated + 0.4f);
  BOOST_TEST(torch::allclose(rows.norm(2, {1}), torch::ones({8})));
}

BOOST_AUTO_TEST_CASE(trigram_tfidf_errors) {
  TrigramTfidf tfidf;
  BOOST_CHECK_THROW(tfidf.transform({"x"}), commercemm::Error);
  BOOST_CHECK_THROW(tfidf.fit({"ok", "bad \xFF utf8"}), commercemm::Error);
  tfidf.fit({});
  BOOST_TEST(tfidf.vocabulary_size() == 0);
  BOOST_TEST(tfidf.transform({"a", "b"}).sizes() == torch::IntArrayRef({2, 0}));
}

BOOST_AUTO_TEST_CASE(pixel_features_ignore_brightness) {
  torch::manual_seed(7);
  const torch::Tensor image = torch::rand({1, 3, 64, 48});
  const torch::Tensor other = torch::rand({1, 3, 64, 48});
  const torch::Tensor images = torch::cat({image, image + 0.25, other, torch::full({1, 3, 64, 48}, 0.5)});
  const torch::Tensor features = pixel_features(images);
  BOOST_TEST(features.sizes() == torch::IntArrayRef({4, 3 * 16 * 16}));
  BOOST_TEST(features.scalar_type() == torch::kFloat32);
  BOOST_TEST(cosine(features, 0, 1) == 1.0f, boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(cosine(features, 0, 2) < 0.5f);
  BOOST_TEST(torch::equal(features[3], torch::zeros({3 * 16 * 16})));  // a flat image has no pattern
  BOOST_TEST(features[0].mean().item<float>() == 0.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(features[0].norm().item<float>() == 1.0f, boost::test_tools::tolerance(1e-5f));

  // Contrast does not matter either, nor the dtype (0..255 bytes give the same features).
  BOOST_TEST(torch::allclose(pixel_features(images * 3.0), features, 1e-4, 1e-5));
  const torch::Tensor bytes = (image * 255).round().to(torch::kUInt8);
  BOOST_TEST(torch::allclose(pixel_features(bytes), pixel_features(bytes.to(torch::kFloat32) / 255), 1e-4, 1e-5));
  BOOST_TEST(pixel_features(images, 8).sizes() == torch::IntArrayRef({4, 3 * 8 * 8}));
  BOOST_TEST(pixel_features(torch::rand({2, 1, 28, 28}), 7).sizes() == torch::IntArrayRef({2, 49}));
  BOOST_CHECK_THROW(pixel_features(torch::rand({3, 16, 16})), commercemm::Error);
  BOOST_CHECK_THROW(pixel_features(images, 0), commercemm::Error);
}

BOOST_AUTO_TEST_SUITE_END()
