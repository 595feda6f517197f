// Pass B's records: the pair kinds mixed by weight, and each kind's pairs drawn per pair or
// per target product (data.pair_sampling).
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include <commercemm/core/options.hpp>
#include <commercemm/data/records.hpp>

#include "support.hpp"

namespace data = commercemm::data;
using data_test::TempDir;

namespace {

// Three text-only products; p1 has 6 queries, p2 2 and p3 1; p1 and p2 have an image view
// each (image paths are not opened: check_files = false).
data::DatasetSplit skewed_split(const TempDir& dir) {
  std::string catalog, sources, pairs;
  for (const char* p : {"p1", "p2", "p3"})
    catalog += std::string(R"({"id":"c_)") + p + R"(","product_id":")" + p + R"(","title":"t )" + p +
               R"(","image":"i.png"})" + "\n";
  const std::vector<std::pair<std::string, int>> queries{{"p1", 6}, {"p2", 2}, {"p3", 1}};
  for (const auto& [product, n] : queries)
    for (int i = 0; i < n; ++i) {
      const auto id = "q_" + product + "_" + std::to_string(i);
      sources += R"({"id":")" + id + R"(","title":"query )" + std::to_string(i) + "\"}\n";
      pairs += R"({"source":")" + id + R"(","target":")" + product + R"(","kind":"query"})" + "\n";
    }
  for (const char* p : {"p1", "p2"}) {
    sources += std::string(R"({"id":"v_)") + p + R"(","image":"v.png"})" + "\n";
    pairs += std::string(R"({"source":"v_)") + p + R"(","target":")" + p + R"(","kind":"image"})" + "\n";
  }
  dir.write("catalog-train.jsonl", catalog);
  dir.write("sources-train.jsonl", sources);
  dir.write("pairs-train.jsonl", pairs);
  return data::read_split(dir.path, "train", /*check_files=*/false);
}

struct Counts {
  std::map<std::string, std::map<std::string, int>> targets;  // kind -> product -> records
  std::map<std::string, std::set<std::string>> sources;       // product -> distinct query sources
};

Counts count(const std::vector<data::Record>& records, const data::DatasetSplit& split) {
  Counts c;
  for (const auto& r : records) {
    const auto& product = split.catalog.find(r.target->id)->product_id;
    ++c.targets[r.source.kind][product];
    if (r.source.kind == "query") c.sources[product].insert(r.source.id);
  }
  return c;
}

commercemm::OptionTable weights(double query, double image) {
  commercemm::OptionTable t;
  t["query"].value = query;
  t["image"].value = image;
  return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(records)

BOOST_AUTO_TEST_CASE(pair_sampling_by_pairs_follows_each_products_pair_count) {
  TempDir dir;
  const auto split = skewed_split(dir);
  data::ProductIndex products;
  const auto c = count(data::mixed_cross_pair_records(split, products, {}, 1), split);
  BOOST_TEST(c.targets.at("query").at("p1") == 6);
  BOOST_TEST(c.targets.at("query").at("p2") == 2);
  BOOST_TEST(c.targets.at("query").at("p3") == 1);
  BOOST_TEST(c.targets.at("image").at("p1") == 1);
}

BOOST_AUTO_TEST_CASE(pair_sampling_by_products_gives_each_target_product_the_same_share) {
  TempDir dir;
  const auto split = skewed_split(dir);
  data::ProductIndex products;
  // No weights: each kind keeps its number of records (9 queries, 2 views), spread evenly.
  auto c = count(data::mixed_cross_pair_records(split, products, {}, 1, data::PairSampling::products), split);
  for (const char* p : {"p1", "p2", "p3"}) BOOST_TEST(c.targets.at("query").at(p) == 3, p);
  BOOST_TEST(c.targets.at("image").at("p1") == 1);
  BOOST_TEST(c.targets.at("image").at("p2") == 1);
  // Each product's pairs take turns: p1's 3 records are 3 different queries, p3 repeats its one.
  BOOST_TEST(c.sources.at("p1").size() == 3u);
  BOOST_TEST(c.sources.at("p2").size() == 2u);
  BOOST_TEST(c.sources.at("p3").size() == 1u);
  // Equal kind weights: 11 pairs, round(5.5) = 6 records a kind, 2 per query product and 3
  // per image product.
  c = count(data::mixed_cross_pair_records(split, products, weights(1, 1), 1, data::PairSampling::products), split);
  for (const char* p : {"p1", "p2", "p3"}) BOOST_TEST(c.targets.at("query").at(p) == 2, p);
  BOOST_TEST(c.targets.at("image").at("p1") == 3);
  BOOST_TEST(c.targets.at("image").at("p2") == 3);
  // The same seed gives the same records; another seed other queries of p1.
  const auto ids = [&](std::uint64_t seed) {
    std::vector<std::string> out;
    for (const auto& r : data::mixed_cross_pair_records(split, products, {}, seed, data::PairSampling::products))
      out.push_back(r.source.id);
    return out;
  };
  BOOST_TEST(ids(1) == ids(1));
  bool differs = false;
  for (std::uint64_t seed = 2; seed < 6; ++seed) differs = differs || ids(seed) != ids(1);
  BOOST_TEST(differs);
}

BOOST_AUTO_TEST_SUITE_END()
