// The emoji-commerce builder on the real npm packages, and the embedded default in data/.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include <emoji_benchmark/data_command.hpp>
#include <emoji_benchmark/emoji_benchmark.hpp>
#include <commercemm/data/manifest.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
namespace data = commercemm::data;
using commercemm::Error;
using data_test::TempDir;

namespace {

const fs::path packages = COMMERCEMM_PACKAGES_DIR;

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Reads every split of a benchmark directory (which checks every reference and every image
/// path) and checks that no product, item or image file is shared between splits.
std::map<std::string, data::DatasetSplit> check_benchmark(const fs::path& dir) {
  std::map<std::string, data::DatasetSplit> splits;
  std::map<std::string, std::string> product_split, item_split, image_split;
  for (const std::string name : {"train", "val", "test"}) {
    auto split = data::read_split(dir, name);
    for (const auto& item : split.catalog) {
      BOOST_TEST(product_split.emplace(item.product_id, name).second, "product " << item.product_id << " leaks");
      for (const auto& image : item.images)
        BOOST_TEST(image_split.emplace(image.string(), name).second, image << " in two splits");
    }
    for (const auto& item : split.sources) {
      BOOST_TEST(item_split.emplace(item.id, name).second, "item " << item.id << " in two splits");
      for (const auto& image : item.images) {  // a view and its posts share an image: same split
        const auto it = image_split.emplace(image.string(), name).first;
        BOOST_TEST(it->second == name, image << " in two splits");
      }
    }
    for (const auto& pair : split.pairs) BOOST_TEST(split.catalog.has_product(pair.target));
    splits.emplace(name, std::move(split));
  }
  // Every held-out subcategory has training products, so categorization can be scored.
  std::set<std::string> train_classes;
  for (const auto& item : splits.at("train").catalog) train_classes.insert(item.subcategory);
  for (const std::string name : {"val", "test"})
    for (const auto& item : splits.at(name).catalog) BOOST_TEST(train_classes.count(item.subcategory) == 1u);
  return splits;
}

data::EmojiBenchmarkOptions small_options(const fs::path& out) {
  data::EmojiBenchmarkOptions o;
  o.packages = packages;
  o.out = out;
  o.catalog_vendor = "google";
  o.view_vendors = {"twitter"};
  o.locales = {"en", "fr", "ja"};
  o.seed = 3;
  o.val_fraction = 0.2;
  o.test_fraction = 0.2;
  o.max_products = 240;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(emoji_benchmark)

BOOST_AUTO_TEST_CASE(joins_codepoints_without_fe0f) {
  BOOST_TEST(data::detail::emoji_key("1F600") == "1f600");
  BOOST_TEST(data::detail::emoji_key("0023-FE0F-20E3") == "0023-20e3");
  BOOST_TEST(data::detail::emoji_key("2764-FE0F") == data::detail::emoji_key("2764"));
  BOOST_TEST(data::detail::emoji_key("1F44B-1F3FB") == "1f44b-1f3fb");  // a skin tone stays distinct
}

BOOST_AUTO_TEST_CASE(builds_a_small_benchmark_without_leakage) {
  BOOST_TEST_REQUIRE(fs::exists(packages / "emojibase-data/fr/data.json"), "run scripts/fetch-packages " << packages);
  TempDir dir;
  const auto report = data::build_emoji_benchmark(small_options(dir.path));
  std::ostringstream printed;
  report.print(printed);
  BOOST_TEST_MESSAGE(printed.str());

  std::int64_t products = 0;
  for (const std::string s : {"train", "val", "test"}) products += report.count("product", s);
  BOOST_TEST(products == 240);
  BOOST_TEST(report.subcategories > 90);  // round-robin keeps (almost) every subcategory
  BOOST_TEST(report.count("product", "test") > 20);
  BOOST_TEST(report.count("product", "val") > 20);
  BOOST_TEST(report.count("product", "train") > report.count("product", "test"));
  for (const std::string s : {"train", "val", "test"}) {
    const auto n = report.count("product", s);
    BOOST_TEST(report.count("image", s) == n);  // twitter has art for every emoji
    BOOST_TEST(report.count("post", s) == n);   // one post per view
    BOOST_TEST(report.count("query", s) > 3 * n);  // en tags; fr, ja label and tags (some skipped)
    BOOST_TEST(report.count("query", s) <= 5 * n);
  }

  const auto splits = check_benchmark(dir.path);
  for (const auto& [name, split] : splits) {
    BOOST_TEST(static_cast<std::int64_t>(split.catalog.size()) == report.count("product", name));
    BOOST_TEST(split.sources.size() == split.pairs.size());
    for (const auto& item : split.catalog) {
      BOOST_TEST(item.language == "en");
      BOOST_TEST(!item.category.empty());
      BOOST_TEST(!item.subcategory.empty());
      BOOST_TEST(item.images.front().parent_path() == dir.path / "images/google");
    }
    for (const auto& pair : split.pairs) {
      const auto& source = *split.sources.find(pair.source);
      if (pair.kind == data::pair_kinds::query) BOOST_TEST((!source.has_image() && source.has_text()));
      if (pair.kind == data::pair_kinds::image) BOOST_TEST((source.has_image() && !source.has_text()));
      if (pair.kind == data::pair_kinds::post) {
        BOOST_TEST((source.has_image() && source.has_text()));
        BOOST_TEST(source.language != "en");
        BOOST_TEST(source.images.front().parent_path() == dir.path / "images/twitter");
      }
      BOOST_TEST(source.product_id.empty());  // the answer lives in the pairs file only
    }
  }
  // The grinning face, if kept, has its English title and a French label query.
  const auto& train = splits.at("train");
  for (const auto& item : train.catalog)
    if (item.product_id == "1f600") BOOST_TEST(item.title == "grinning face");

  // The same seed gives the same bytes; another seed another split.
  TempDir again, other;
  data::build_emoji_benchmark(small_options(again.path));
  for (const std::string f : {"catalog-train.jsonl", "sources-test.jsonl", "pairs-val.jsonl", "benchmark.json"})
    BOOST_TEST((slurp(dir.path / f) == slurp(again.path / f)), f);
  auto o = small_options(other.path);
  o.seed = 4;
  data::build_emoji_benchmark(o);
  BOOST_TEST((slurp(dir.path / "catalog-test.jsonl") != slurp(other.path / "catalog-test.jsonl")));
}

BOOST_AUTO_TEST_CASE(bad_options_are_errors) {
  TempDir dir;
  auto o = small_options(dir.path);
  o.locales = {"en", "xx"};
  BOOST_TEST(data::detail::read_locale(packages, "en").size() > 1800u);
  try {
    data::build_emoji_benchmark(o);
    BOOST_FAIL("unknown locale accepted");
  } catch (const Error& e) {
    BOOST_TEST(e.where().field == "locales");
    BOOST_TEST(e.message().find("'xx'") != std::string::npos);
  }
  o = small_options(dir.path);
  o.view_vendors = {"google"};
  BOOST_CHECK_THROW(data::build_emoji_benchmark(o), Error);
  o = small_options(dir.path);
  o.view_vendors = {"nosuchvendor"};
  BOOST_CHECK_THROW(data::build_emoji_benchmark(o), Error);
  // A non-empty directory that is not a benchmark is never overwritten.
  fs::create_directories(dir.path);
  std::ofstream(dir.path / "precious.txt") << "keep me";
  o = small_options(dir.path);
  BOOST_CHECK_THROW(data::build_emoji_benchmark(o), Error);
  BOOST_TEST(fs::exists(dir.path / "precious.txt"));
}

BOOST_AUTO_TEST_CASE(cli_parses_the_data_emoji_command) {
  TempDir dir;
  CLI::App app("commercemm");
  commercemm::cli::add_data_command(app);
  const std::string out = dir.path.string(), pkgs = packages.string();
  std::vector<std::string> args{"commercemm", "data", "emoji", "--packages", pkgs, "--catalog", "google",
                                "--views", "twitter", "--locales", "de,es", "--out", out, "--max-products", "60",
                                "--seed", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  BOOST_TEST(captured.str().find("product") != std::string::npos);
  BOOST_TEST(fs::exists(dir.path / "catalog-train.jsonl"));
  const auto info = nlohmann::json::parse(slurp(dir.path / "benchmark.json"));
  BOOST_TEST(info["locales"].size() == 2u);
  BOOST_TEST(info["seed"].get<int>() == 1);
}

BOOST_AUTO_TEST_CASE(embedded_default_loads_without_leakage) {
  const fs::path dir = fs::path(COMMERCEMM_SOURCE_DIR) / "data/emoji-commerce";
  BOOST_TEST_REQUIRE(fs::exists(dir / "benchmark.json"), "scripts/build-default-data rebuilds " << dir);
  const auto splits = check_benchmark(dir);
  const auto info = nlohmann::json::parse(slurp(dir / "benchmark.json"));
  for (const auto& [name, split] : splits) {
    BOOST_TEST(split.catalog.size() == info["counts"]["product"][name].get<std::size_t>());
    BOOST_TEST(split.pairs.size() > 10 * split.catalog.size());  // text is cheap: many locales
  }
  BOOST_TEST(info["locales"].size() >= 20u);
  BOOST_TEST(splits.at("test").catalog.size() > 50u);
  std::uintmax_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) bytes += entry.file_size();
  BOOST_TEST(bytes < 11u * 1024 * 1024);
}

BOOST_AUTO_TEST_SUITE_END()
