// The reference rows `evaluate` reports, end to end on the embedded split, against a direct
// computation that shares none of the scoring code: the reference features of each test pair's
// source and of every test catalog row, cosine similarity in double, and the rank of the first
// catalog row of the pair's product, equal scores taken in catalog order (as FAISS's results
// are ordered). Ties matter: a query in a script no catalog text uses has an all-zero TF-IDF
// row, so every product ties with the true one; ranking such ties in the true product's favour
// doubles the TF-IDF row's MRR on the embedded split, and would credit TF-IDF with queries it
// knows nothing about.
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <torch/nn/functional/normalization.h>
#include <torch/types.h>

#include <commercemm/data/image.hpp>
#include <commercemm/data/loader_options.hpp>
#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/eval/benchmark.hpp>
#include <commercemm/eval/references.hpp>
#include <commercemm/eval/scoring.hpp>

namespace cmm = commercemm;
namespace data = commercemm::data;
namespace eval = commercemm::eval;

namespace {

struct Direct {
  double mrr = 0, recall_at_1 = 0;
  std::int64_t queries = 0, all_tied = 0;  // all_tied: queries whose every catalog row scores the same
};

// Ranks each query row's product among the catalog rows (features L2-normalised or zero).
Direct rank_directly(const torch::Tensor& queries, const std::vector<std::string>& query_products,
                     const torch::Tensor& gallery, const std::vector<std::string>& gallery_products) {
  const auto scores = torch::matmul(queries.to(torch::kDouble), gallery.to(torch::kDouble).t()).contiguous();
  const auto s = scores.accessor<double, 2>();
  const auto rows = static_cast<std::int64_t>(gallery_products.size());
  Direct d;
  for (std::int64_t q = 0; q < scores.size(0); ++q) {
    const auto& product = query_products[static_cast<std::size_t>(q)];
    std::int64_t best = -1;  // the product's best row; the earliest among equals
    for (std::int64_t j = 0; j < rows; ++j)
      if (gallery_products[static_cast<std::size_t>(j)] == product && (best < 0 || s[q][j] > s[q][best])) best = j;
    BOOST_REQUIRE(best >= 0);
    std::int64_t rank = 1;
    bool tied = true;
    for (std::int64_t j = 0; j < rows; ++j) {
      tied = tied && s[q][j] == s[q][0];
      if (gallery_products[static_cast<std::size_t>(j)] == product) continue;
      if (s[q][j] > s[q][best] || (s[q][j] == s[q][best] && j < best)) ++rank;
    }
    d.mrr += 1.0 / static_cast<double>(rank);
    d.recall_at_1 += rank == 1 ? 1.0 : 0.0;
    d.all_tied += tied ? 1 : 0;
    ++d.queries;
  }
  d.mrr /= static_cast<double>(d.queries), d.recall_at_1 /= static_cast<double>(d.queries);
  return d;
}

const std::string kDir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
const std::vector<std::string> kTasks{"query_to_product", "image_to_product", "post_to_product"};

struct Reported {
  eval::Benchmark bench;
  eval::TaskSets sets;
  Reported() : bench(eval::Benchmark::load(kDir, kTasks, cmm::Config{})) {
    const auto tokenizer = std::make_shared<const data::ByteLevelBpe>(
        data::train_byte_level_bpe(bench.train.texts(), {.vocab_size = 300, .min_frequency = 2}));
    sets = eval::embed_benchmark(bench, tokenizer, cmm::Config{}, {}, kTasks, /*keep_pixels=*/true);
  }
};

// The sources of the test pairs of `kind`, and their products, in manifest order.
std::vector<const data::Item*> pair_sources(const data::DatasetSplit& split, const std::string& kind,
                                            std::vector<std::string>& products) {
  std::vector<const data::Item*> out;
  for (const auto& pair : split.pairs)
    if (pair.kind == kind) {
      out.push_back(split.sources.find(pair.source));
      products.push_back(pair.target);
    }
  return out;
}

void check_row(const nlohmann::json& reported, const Direct& direct, const std::string& what) {
  BOOST_TEST_MESSAGE(what << ": reported MRR " << reported.at("mrr").get<double>() << ", direct " << direct.mrr
                          << " over " << direct.queries << " queries, " << direct.all_tied << " all tied");
  BOOST_TEST(reported.at("queries").get<std::int64_t>() == direct.queries, what);
  // Scores within a rounding error of each other may order differently in FAISS's float sums
  // than in these double ones: a query or two, at most.
  const double one = 1.0 / static_cast<double>(direct.queries);
  BOOST_TEST(std::abs(reported.at("mrr").get<double>() - direct.mrr) <= 2 * one, what);
  BOOST_TEST(std::abs(reported.at("recall@1").get<double>() - direct.recall_at_1) <= 2 * one, what);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(references)

BOOST_AUTO_TEST_CASE(tfidf_rows_equal_the_direct_computation) {
  const Reported r;
  const auto rows = eval::score_tasks(eval::as_tfidf(r.sets, eval::fit_tfidf(r.bench.train)), kTasks, {});
  BOOST_TEST(!rows.contains("image_to_product"));  // views have no text

  eval::TrigramTfidf tfidf;
  tfidf.fit(r.bench.train.texts());  // the train split's catalog and source texts
  std::vector<std::string> catalog_texts, catalog_products;
  for (const auto& item : r.bench.test.catalog) catalog_texts.push_back(item.text()), catalog_products.push_back(item.product_id);
  const auto gallery = tfidf.transform(catalog_texts);
  for (const std::string kind : {"query", "post"}) {
    std::vector<std::string> products, texts;
    for (const auto* item : pair_sources(r.bench.test, kind, products)) texts.push_back(item->text());
    const auto direct = rank_directly(tfidf.transform(texts), products, gallery, catalog_products);
    check_row(rows.at(kind + "_to_product"), direct, "tf-idf " + kind);
  }
}

BOOST_AUTO_TEST_CASE(raw_pixel_rows_equal_the_direct_computation) {
  const Reported r;
  const auto rows = eval::score_tasks(eval::as_pixels(r.sets), kTasks, {});
  BOOST_TEST(!rows.contains("query_to_product"));  // queries have no image

  const auto options = data::loader_options(cmm::Config{}, 1, /*training=*/false).image;
  auto pixels = [&](const std::vector<const data::Item*>& items) {
    std::vector<torch::Tensor> images;
    for (const auto* item : items) images.push_back(data::load_image(item->images.front(), options));
    return eval::pixel_features(torch::stack(images));
  };
  std::vector<const data::Item*> catalog;
  std::vector<std::string> catalog_products;
  for (const auto& item : r.bench.test.catalog) catalog.push_back(&item), catalog_products.push_back(item.product_id);
  const auto gallery = pixels(catalog);
  for (const std::string kind : {"image", "post"}) {
    std::vector<std::string> products;
    const auto direct = rank_directly(pixels(pair_sources(r.bench.test, kind, products)), products, gallery,
                                      catalog_products);
    check_row(rows.at(kind + "_to_product"), direct, "pixels " + kind);
  }
}

// The hybrid row on stand-in model embeddings (seeded random unit rows, so no two products tie):
// each score must be the model's cosine plus the weight times the full TF-IDF cosine, computed
// here without as_hybrid's column selection; image queries score by the model alone.
BOOST_AUTO_TEST_CASE(hybrid_rows_equal_the_model_plus_weighted_tfidf) {
  Reported r;
  torch::manual_seed(7);
  auto stand_in = [](eval::EmbeddedSet& s) {
    auto unit = [&] { return torch::nn::functional::normalize(torch::randn({s.size(), 16}),
                                                              torch::nn::functional::NormalizeFuncOptions().dim(1)); };
    s.image = unit(), s.text = unit(), s.multimodal = unit();
  };
  stand_in(r.sets.train_catalog), stand_in(r.sets.test_catalog);
  for (auto& [kind, s] : r.sets.sources) stand_in(s);
  const double weight = 2.0;
  const auto tfidf_sets = eval::as_tfidf(r.sets, eval::fit_tfidf(r.bench.train));
  const auto hybrid = eval::as_hybrid(r.sets, tfidf_sets, weight);
  BOOST_TEST(hybrid.test_catalog.multimodal.size(1) > 16);
  BOOST_TEST(hybrid.test_catalog.multimodal.size(1) < tfidf_sets.test_catalog.text.size(1) + 16);  // columns dropped
  const auto rows = eval::score_tasks(hybrid, kTasks, {});

  eval::TrigramTfidf tfidf;
  tfidf.fit(r.bench.train.texts());
  std::vector<std::string> catalog_texts, catalog_products;
  for (const auto* item : r.sets.test_catalog.items) catalog_texts.push_back(item->text()), catalog_products.push_back(item->product_id);
  const auto scale = std::sqrt(weight);
  const auto gallery = torch::cat({r.sets.test_catalog.multimodal, scale * tfidf.transform(catalog_texts)}, 1);
  for (const std::string kind : {"query", "post", "image"}) {
    const auto task = r.bench.task(kind + "_to_product");
    const auto& sources = r.sets.sources.at(kind);
    std::map<std::string, std::int64_t> row;  // source id -> its row in the set
    for (std::size_t i = 0; i < sources.items.size(); ++i) row[sources.items[i]->id] = static_cast<std::int64_t>(i);
    std::vector<std::string> products, texts;
    std::vector<std::int64_t> rows_of_pairs;
    for (const auto* item : pair_sources(r.bench.test, kind, products)) {
      texts.push_back(item->text());
      rows_of_pairs.push_back(row.at(item->id));
    }
    const auto model = sources.get(task.query).index_select(0, torch::tensor(rows_of_pairs));
    const auto lexical = task.query == cmm::Modality::image ? torch::zeros({model.size(0), gallery.size(1) - 16})
                                                           : scale * tfidf.transform(texts);
    const auto direct = rank_directly(torch::cat({model, lexical}, 1), products, gallery, catalog_products);
    BOOST_TEST(direct.all_tied == 0);
    check_row(rows.at(kind + "_to_product"), direct, "model + tf-idf " + kind);
  }
}

BOOST_AUTO_TEST_SUITE_END()
