#pragma once
// The emoji-commerce benchmark builder: real public data shaped like a commerce catalog.
//
// Every emoji is a product. Its catalog item is one vendor's artwork with the English (catalog
// locale) label as title and its tags, category and subcategory (emoji-datasource-VENDOR and
// emojibase-data, npm packages unpacked under one directory by scripts/fetch-packages).
// Retrieval sources, each paired with its product:
//   query  text only: the label or a few tags in another locale; a few catalog-locale tags alone
//   image  image only: another vendor's artwork of the emoji ("another seller's photo")
//   post   image + text: another vendor's artwork captioned in another locale
// Products are split into train/val/test (stratified by subcategory, the first product of every
// subcategory in train so each class is seen); all of a product's items and pairs follow it, so
// nothing held out ever appears in pre-training. Output layout: see docs/manifests.md.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>
#include <commercemm/core/random.hpp>
#include <commercemm/data/manifest.hpp>

namespace commercemm::data {

struct EmojiBenchmarkOptions {
  std::filesystem::path packages;          ///< holds emoji-datasource-VENDOR/ and emojibase-data/
  std::filesystem::path out;               ///< the benchmark directory to write
  std::string catalog_vendor = "google";
  std::vector<std::string> view_vendors;   ///< other vendors: image views and posts
  std::vector<std::string> locales;        ///< query/post text; {"all"} = every emojibase-data locale
  std::string catalog_locale = "en";       ///< the language of catalog titles and tags
  std::uint64_t seed = 0;
  double val_fraction = 0.1;
  double test_fraction = 0.1;
  std::int64_t max_products = 0;           ///< 0 = all; else a subset spread evenly over subcategories
  int posts_per_view = 1;                  ///< posts per product and view vendor
  int max_query_tags = 3;                  ///< a tags query has 1..max_query_tags tags
  int queries_per_locale = 2;              ///< 2: label and tags queries; 1: one of them, by a coin
  int image_size = 64;                     ///< picks img/VENDOR/SIZE/ in the packages
};

/// What the builder wrote and what it skipped.
struct EmojiBenchmarkReport {
  /// counts[kind][split], kind in product, query, image, post; split in train, val, test.
  std::map<std::string, std::map<std::string, std::int64_t>> counts;
  std::map<std::string, std::int64_t> skipped;  ///< reason -> how many
  std::int64_t subcategories = 0;
  std::vector<std::string> locales;             ///< the locales used, "all" expanded
  std::uintmax_t bytes = 0;                     ///< size of the output directory

  std::int64_t count(const std::string& kind, const std::string& split) const {
    const auto k = counts.find(kind);
    if (k == counts.end()) return 0;
    const auto s = k->second.find(split);
    return s == k->second.end() ? 0 : s->second;
  }

  void print(std::ostream& os) const {
    static const char* kinds[] = {"product", "query", "image", "post"};
    static const char* splits[] = {"train", "val", "test"};
    os << std::left << std::setw(10) << "kind";
    for (const char* s : splits) os << std::right << std::setw(9) << s;
    os << std::setw(9) << "total" << '\n';
    for (const char* k : kinds) {
      std::int64_t total = 0;
      os << std::left << std::setw(10) << k;
      for (const char* s : splits) {
        os << std::right << std::setw(9) << count(k, s);
        total += count(k, s);
      }
      os << std::setw(9) << total << '\n';
    }
    os << std::left << subcategories << " subcategories, " << locales.size() << " locales\n";
    for (const auto& [reason, n] : skipped) os << "skipped " << reason << ": " << n << '\n';
    os << "size: " << std::fixed << std::setprecision(2) << static_cast<double>(bytes) / (1024.0 * 1024.0)
       << " MiB\n";
  }
};

namespace detail {

using random::fnv1a;
using random::mix;

/// A value fixed by (seed, parts): every product draws from its own stream, so its texts do not
/// change when other products are added or dropped.
inline std::uint64_t seeded_hash(std::uint64_t seed, std::initializer_list<std::string_view> parts) {
  std::uint64_t h = mix(seed);
  for (auto part : parts) h = mix(fnv1a(part, h) ^ 0x5bd1e995ull);
  return h;
}

/// rng() % n: the tiny modulo bias does not matter here, and unlike std::uniform_int_distribution
/// it is the same with every standard library.
inline std::size_t pick(std::mt19937_64& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }

inline double unit_draw(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// k distinct elements of `from`, in draw order.
inline std::vector<std::string> sample(std::mt19937_64& rng, std::vector<std::string> from, std::size_t k) {
  k = std::min(k, from.size());
  for (std::size_t i = 0; i < k; ++i) std::swap(from[i], from[i + pick(rng, from.size() - i)]);
  from.resize(k);
  return from;
}

/// "1F600-FE0F" -> "1f600": emojibase and emoji-datasource disagree on where FE0F appears.
inline std::string emoji_key(std::string_view hexcode) {
  std::string key, part;
  auto flush = [&] {
    if (!part.empty() && part != "fe0f") key += (key.empty() ? "" : "-") + part;
    part.clear();
  };
  for (char c : hexcode) {
    if (c == '-') flush();
    else part += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  flush();
  return key;
}

inline std::string lower_ascii(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

inline nlohmann::json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error({file.string(), 0, ""}, "cannot open (run scripts/fetch-packages to fetch the packages)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error({file.string(), 0, ""}, std::string("malformed JSON: ") + e.what());
  }
}

/// A field of record `index` (0-based) of a JSON array file; errors name file, record and field.
inline const nlohmann::json& record_field(const nlohmann::json& record, const char* key, std::size_t index,
                                          const std::filesystem::path& file, bool (nlohmann::json::*is)() const,
                                          const char* type) {
  const auto it = record.find(key);
  if (it == record.end())
    throw Error({file.string(), static_cast<std::int64_t>(index + 1), key}, "missing field (record " +
                                                                                std::to_string(index + 1) + ")");
  if (!((*it).*is)())
    throw Error({file.string(), static_cast<std::int64_t>(index + 1), key}, std::string("expected ") + type);
  return *it;
}

struct VendorEmoji {
  std::string image;  ///< file name under img/VENDOR/SIZE/
  bool has_image = false;
};

/// emoji-datasource-VENDOR/emoji.json by key, with whether the vendor has art for each emoji.
inline std::map<std::string, VendorEmoji> read_vendor(const std::filesystem::path& packages, const std::string& vendor,
                                                      int image_size) {
  const auto dir = packages / ("emoji-datasource-" + vendor);
  const auto file = dir / "emoji.json";
  const auto json = read_json_file(file);
  if (!json.is_array()) throw Error({file.string(), 0, ""}, "expected a JSON array of emoji");
  const auto image_dir = dir / "img" / vendor / std::to_string(image_size);
  if (!std::filesystem::is_directory(image_dir))
    throw Error({image_dir.string(), 0, "image_size"}, "no artwork folder for vendor '" + vendor + "' at this size");
  std::map<std::string, VendorEmoji> out;
  const std::string flag = "has_img_" + vendor;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& record = json[i];
    const auto unified = record_field(record, "unified", i, file, &nlohmann::json::is_string, "a string").get<std::string>();
    VendorEmoji entry;
    entry.image = record_field(record, "image", i, file, &nlohmann::json::is_string, "a string").get<std::string>();
    const auto has = record.find(flag);
    std::error_code ec;
    entry.has_image = (has == record.end() || (has->is_boolean() && has->get<bool>())) &&
                      std::filesystem::is_regular_file(image_dir / entry.image, ec);
    out[emoji_key(unified)] = std::move(entry);
  }
  return out;
}

struct LocaleText {
  std::string label;
  std::vector<std::string> tags;
};

/// emojibase-data/LOCALE/data.json by key (skin-tone variants are not products and are skipped).
inline std::map<std::string, LocaleText> read_locale(const std::filesystem::path& packages, const std::string& locale) {
  const auto file = packages / "emojibase-data" / locale / "data.json";
  if (!std::filesystem::is_regular_file(file))
    throw Error({file.string(), 0, "locales"}, "no emojibase-data for locale '" + locale + "'");
  const auto json = read_json_file(file);
  if (!json.is_array()) throw Error({file.string(), 0, ""}, "expected a JSON array of emoji");
  std::map<std::string, LocaleText> out;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& record = json[i];
    LocaleText text;
    const auto hexcode = record_field(record, "hexcode", i, file, &nlohmann::json::is_string, "a string").get<std::string>();
    text.label = record_field(record, "label", i, file, &nlohmann::json::is_string, "a string").get<std::string>();
    if (const auto tags = record.find("tags"); tags != record.end()) {
      if (!tags->is_array()) throw Error({file.string(), static_cast<std::int64_t>(i + 1), "tags"}, "expected an array");
      for (const auto& tag : *tags)
        if (tag.is_string() && !tag.get<std::string>().empty()) text.tags.push_back(tag.get<std::string>());
    }
    out[emoji_key(hexcode)] = std::move(text);
  }
  return out;
}

inline std::string package_version(const std::filesystem::path& dir) {
  std::ifstream in(dir / "package.json");
  if (!in) return "unknown";
  try {
    const auto json = nlohmann::json::parse(in);
    return json.value("version", "unknown");
  } catch (const nlohmann::json::exception&) {
    return "unknown";
  }
}

inline std::vector<std::string> all_locales(const std::filesystem::path& packages) {
  std::vector<std::string> out;
  const auto root = packages / "emojibase-data";
  if (!std::filesystem::is_directory(root)) throw Error({root.string(), 0, "packages"}, "emojibase-data is missing");
  for (const auto& entry : std::filesystem::directory_iterator(root))
    if (std::filesystem::is_regular_file(entry.path() / "data.json")) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline std::uintmax_t directory_bytes(const std::filesystem::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) total += entry.file_size();
  return total;
}

/// Empties `out` of a previous build; refuses a non-empty directory that is not one.
inline void prepare_output(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  if (fs::exists(out) && !fs::is_directory(out)) throw Error({out.string(), 0, "out"}, "exists and is not a directory");
  if (fs::exists(out) && !fs::is_empty(out)) {
    if (!fs::exists(out / "benchmark.json"))
      throw Error({out.string(), 0, "out"}, "not empty and not a benchmark directory (no benchmark.json): refusing to write there");
    for (const auto& entry : fs::directory_iterator(out)) {
      const auto name = entry.path().filename().string();
      const bool ours = name == "images" || name == "benchmark.json" ||
                        (entry.path().extension() == ".jsonl" &&
                         (name.rfind("catalog-", 0) == 0 || name.rfind("sources-", 0) == 0 || name.rfind("pairs-", 0) == 0));
      if (ours) fs::remove_all(entry.path());
    }
  }
  fs::create_directories(out / "images");
}

struct Product {
  std::string key;           ///< emoji_key of the unified sequence: the product id
  std::string unified;
  std::string image;         ///< catalog vendor's file name
  std::string category;
  std::string subcategory;
  std::int64_t order = 0;    ///< emoji-datasource sort_order
  std::string split;
};

}  // namespace detail

namespace detail {
/// Builds the benchmark in steps, each a method: check the options, read the packages, pick
/// the products, subset and split them, make the items and pairs, write the directory.
class EmojiBuilder {
  using Product = detail::Product;

 public:
  explicit EmojiBuilder(const EmojiBenchmarkOptions& options) : options_(options) {}

  EmojiBenchmarkReport build() {
    check_options();
    read_packages();
    read_products();
    subset_and_split();
    prepare_output(options_.out);
    add_items_and_pairs();
    write();
    report_.bytes = directory_bytes(options_.out);
    return report_;
  }

 private:
  inline static const std::vector<std::string> splits{"train", "val", "test"};

  // Every option in range; the locales ("all" expanded) in order, without repeats.
  void check_options() {
    namespace fs = std::filesystem;
    if (!fs::is_directory(options_.packages))
      throw Error({options_.packages.string(), 0, "packages"}, "not a directory (fill it with scripts/fetch-packages)");
    if (options_.out.empty()) throw Error({"", 0, "out"}, "no output directory given");
    if (options_.catalog_vendor.empty()) throw Error({"", 0, "catalog"}, "no catalog vendor given");
    for (const auto& v : options_.view_vendors) {
      if (v == options_.catalog_vendor)
        throw Error({"", 0, "views"}, "view vendor '" + v + "' is the catalog vendor: views must be other vendors' art");
    }
    if (std::set<std::string>(options_.view_vendors.begin(), options_.view_vendors.end()).size() != options_.view_vendors.size())
      throw Error({"", 0, "views"}, "a vendor is listed twice");
    if (!(options_.val_fraction >= 0 && options_.test_fraction >= 0 && options_.val_fraction + options_.test_fraction < 1))
      throw Error({"", 0, "val_fraction"}, "val and test fractions must be >= 0 and sum to less than 1");
    if (options_.max_products < 0) throw Error({"", 0, "max_products"}, "must be >= 0 (0 = all)");
    if (options_.posts_per_view < 0) throw Error({"", 0, "posts_per_view"}, "must be >= 0");
    if (options_.max_query_tags < 1) throw Error({"", 0, "max_query_tags"}, "must be >= 1");
    if (options_.queries_per_locale != 1 && options_.queries_per_locale != 2)
      throw Error({"", 0, "queries_per_locale"}, "must be 1 or 2");

    for (const auto& locale : options_.locales) {
      if (locale == "all") {
        for (const auto& l : all_locales(options_.packages))
          if (std::find(locales_.begin(), locales_.end(), l) == locales_.end()) locales_.push_back(l);
      } else if (std::find(locales_.begin(), locales_.end(), locale) == locales_.end()) {
        locales_.push_back(locale);
      }
    }
    if (locales_.empty()) throw Error({"", 0, "locales"}, "no locales given");
    report_.locales = locales_;
  }

  void read_packages() {
    catalog_file_ = options_.packages / ("emoji-datasource-" + options_.catalog_vendor) / "emoji.json";
    catalog_json_ = read_json_file(catalog_file_);
    if (!catalog_json_.is_array()) throw Error({catalog_file_.string(), 0, ""}, "expected a JSON array of emoji");
    catalog_art_ = read_vendor(options_.packages, options_.catalog_vendor, options_.image_size);
    for (const auto& v : options_.view_vendors) view_art_[v] = read_vendor(options_.packages, v, options_.image_size);
    catalog_text_ = read_locale(options_.packages, options_.catalog_locale);
    for (const auto& l : locales_) locale_text_[l] = read_locale(options_.packages, l);
  }

  // The catalog vendor's products that have art and text, without duplicated art.
  void read_products() {
    std::set<std::uint64_t> catalog_image_hashes;
    const auto catalog_dir =
        options_.packages / ("emoji-datasource-" + options_.catalog_vendor) / "img" / options_.catalog_vendor /
        std::to_string(options_.image_size);
    for (std::size_t i = 0; i < catalog_json_.size(); ++i) {
      const auto& record = catalog_json_[i];
      const auto string_field = [&](const char* key) {
        return record_field(record, key, i, catalog_file_, &nlohmann::json::is_string, "a string").get<std::string>();
      };
      Product p;
      p.unified = string_field("unified");
      p.key = emoji_key(p.unified);
      p.category = string_field("category");
      p.subcategory = string_field("subcategory");
      p.order = record_field(record, "sort_order", i, catalog_file_, &nlohmann::json::is_number, "a number")
                    .get<std::int64_t>();
      const auto art = catalog_art_.find(p.key);
      if (art == catalog_art_.end() || !art->second.has_image) {
        ++report_.skipped["product without " + options_.catalog_vendor + " (catalog) image"];
        continue;
      }
      p.image = art->second.image;
      if (catalog_text_.find(p.key) == catalog_text_.end()) {
        ++report_.skipped["product without " + options_.catalog_locale + " (catalog) text"];
        continue;
      }
      // Byte-identical catalog art for two products would make image retrieval ill-posed.
      std::ifstream in(catalog_dir / p.image, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!catalog_image_hashes.insert(fnv1a(bytes)).second) {
        ++report_.skipped["product whose catalog image duplicates another's"];
        continue;
      }
      products_.push_back(std::move(p));
    }
  }

  // Subcategories in a seeded order, a subset round-robin over them, then the splits.
  void subset_and_split() {
    // Group by subcategory, each group in a seeded order.
    std::map<std::string, std::vector<Product>> groups;
    for (auto& p : products_) groups[p.subcategory].push_back(std::move(p));
    for (auto& [name, group] : groups) {
      std::sort(group.begin(), group.end(), [&](const Product& a, const Product& b) {
        const auto ha = seeded_hash(options_.seed, {"order", a.key}), hb = seeded_hash(options_.seed, {"order", b.key});
        return ha != hb ? ha < hb : a.key < b.key;
      });
    }
    // A subset takes products round-robin over the subcategories: every class keeps several.
    if (options_.max_products > 0) {
      std::int64_t total = 0;
      for (const auto& [name, group] : groups) total += static_cast<std::int64_t>(group.size());
      if (options_.max_products < total) {
        std::map<std::string, std::size_t> take;
        std::int64_t taken = 0;
        for (std::size_t round = 0; taken < options_.max_products; ++round) {
          for (const auto& [name, group] : groups) {
            if (round < group.size() && taken < options_.max_products) ++take[name], ++taken;
          }
        }
        for (auto& [name, group] : groups) group.resize(take[name]);
        report_.skipped["product beyond max_products"] = total - options_.max_products;
      }
    }
    // Splits: the first product of each subcategory trains; the rest go to test/val by two
    // accumulators, which spreads both held-out sets evenly over the subcategories.
    std::mt19937_64 split_rng(seeded_hash(options_.seed, {"split"}));
    double test_acc = unit_draw(split_rng), val_acc = unit_draw(split_rng);
    products_.clear();
    for (auto& [name, group] : groups) {
      if (group.empty()) continue;
      ++report_.subcategories;
      for (std::size_t i = 0; i < group.size(); ++i) {
        auto& p = group[i];
        p.split = "train";
        if (i > 0) {
          test_acc += options_.test_fraction;
          val_acc += options_.val_fraction;
          if (test_acc >= 1) test_acc -= 1, p.split = "test";
          else if (val_acc >= 1) val_acc -= 1, p.split = "val";
        }
        products_.push_back(std::move(p));
      }
    }
    std::sort(products_.begin(), products_.end(), [](const Product& a, const Product& b) {
      return a.order != b.order ? a.order < b.order : a.key < b.key;
    });

  }

  // The catalog items, and each product's queries, views and posts with their pairs.
  void add_items_and_pairs() {
    std::vector<std::string> post_locales;
    for (const auto& l : locales_)
      if (l != options_.catalog_locale) post_locales.push_back(l);
    if (post_locales.empty()) post_locales = locales_;

    for (const auto& p : products_) {
      std::mt19937_64 rng(seeded_hash(options_.seed, {"product", p.key}));
      const auto& english = catalog_text_.at(p.key);
      Item product;
      product.id = "c:" + p.key;
      product.product_id = p.key;
      product.images.push_back(copy_image(options_.catalog_vendor, p.image));
      product.title = english.label;
      product.tags = english.tags;
      product.category = p.category;
      product.subcategory = p.subcategory;
      product.language = options_.catalog_locale;
      catalog_[p.split].push_back(product);
      ++report_.counts["product"][p.split];
      const std::string title_key = lower_ascii(english.label);

      auto add_source = [&](Item item, PairKind kind) {
        pairs_[p.split].push_back(Pair{item.id, p.key, kind, {}});
        sources_[p.split].push_back(std::move(item));
        ++report_.counts[kind][p.split];
      };
      auto join = [](const std::vector<std::string>& words) {
        std::string s;
        for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
        return s;
      };
      // Queries per locale: the label (unless it repeats the title) and a few tags; with one
      // query per locale a coin picks which, falling back to the other when it has nothing.
      // The catalog locale's label is the title itself, so it gives only a tags query.
      for (const auto& locale : locales_) {
        const auto& table = locale_text_.at(locale);
        const auto it = table.find(p.key);
        if (it == table.end()) {
          ++report_.skipped["query without text in its locale"];
          continue;
        }
        const std::size_t k = 1 + pick(rng, static_cast<std::size_t>(options_.max_query_tags));
        const auto tags_text = join(sample(rng, it->second.tags, k));
        const bool coin = pick(rng, 2) == 0;
        const bool label_ok = locale != options_.catalog_locale && lower_ascii(it->second.label) != title_key;
        const bool tags_ok = !tags_text.empty() && lower_ascii(tags_text) != title_key;
        bool use_label = label_ok, use_tags = tags_ok;
        if (options_.queries_per_locale == 1 && label_ok && tags_ok) (coin ? use_tags : use_label) = false;
        if (locale != options_.catalog_locale && !label_ok) ++report_.skipped["query repeating the catalog title"];
        if (!tags_ok) ++report_.skipped[tags_text.empty() ? "query without tags in its locale" : "query repeating the catalog title"];
        if (use_label) {
          Item q;
          q.id = "q:" + p.key + ":" + locale + ":label";
          q.title = it->second.label;
          q.language = locale;
          add_source(std::move(q), pair_kinds::query);
        }
        if (use_tags) {
          Item q;
          q.id = "q:" + p.key + ":" + locale + ":tags";
          q.title = tags_text;
          q.language = locale;
          add_source(std::move(q), pair_kinds::query);
        }
      }
      // Other vendors' art: an image view, and posts captioned in another locale.
      for (const auto& vendor : options_.view_vendors) {
        const auto art = view_art_.at(vendor).find(p.key);
        if (art == view_art_.at(vendor).end() || !art->second.has_image) {
          ++report_.skipped["view without " + vendor + " image"];
          continue;
        }
        const auto path = copy_image(vendor, art->second.image);
        Item view;
        view.id = "v:" + p.key + ":" + vendor;
        view.images.push_back(path);
        add_source(std::move(view), pair_kinds::image);
        for (int n = 0; n < options_.posts_per_view; ++n) {
          std::vector<const std::string*> candidates;
          for (const auto& l : post_locales)
            if (locale_text_.at(l).count(p.key)) candidates.push_back(&l);
          if (candidates.empty()) {
            ++report_.skipped["post without text in any locale"];
            continue;
          }
          const std::string& locale = *candidates[pick(rng, candidates.size())];
          const auto& text = locale_text_.at(locale).at(p.key);
          Item post;
          post.id = "p:" + p.key + ":" + vendor + ":" + std::to_string(n);
          post.images.push_back(path);
          post.title = text.label;
          post.tags = sample(rng, text.tags, pick(rng, 3));  // 0..2 hashtags
          post.language = locale;
          add_source(std::move(post), pair_kinds::post);
        }
      }
    }
  }

  // Copies a vendor's image into the benchmark once; its path there.
  std::filesystem::path copy_image(const std::string& vendor, const std::string& file) {
    namespace fs = std::filesystem;
    const auto target = options_.out / "images" / vendor / file;
    if (copied_.emplace(vendor, file).second) {
      fs::create_directories(target.parent_path());
      fs::copy_file(options_.packages / ("emoji-datasource-" + vendor) / "img" / vendor / std::to_string(options_.image_size) /
                        file,
                    target, fs::copy_options::overwrite_existing);
    }
    return target;
  }

  void write() {
    for (const auto& split : splits) {
      write_items(split_manifest(options_.out, "catalog", split), catalog_[split]);
      write_items(split_manifest(options_.out, "sources", split), sources_[split]);
      write_pairs(split_manifest(options_.out, "pairs", split), pairs_[split]);
    }
    nlohmann::ordered_json info;
    info["name"] = "emoji-commerce";
    info["format"] = 1;
    info["catalog_vendor"] = options_.catalog_vendor;
    info["view_vendors"] = options_.view_vendors;
    info["catalog_locale"] = options_.catalog_locale;
    info["locales"] = locales_;
    info["seed"] = options_.seed;
    info["val_fraction"] = options_.val_fraction;
    info["test_fraction"] = options_.test_fraction;
    info["max_products"] = options_.max_products;
    info["posts_per_view"] = options_.posts_per_view;
    info["max_query_tags"] = options_.max_query_tags;
    info["queries_per_locale"] = options_.queries_per_locale;
    info["image_size"] = options_.image_size;
    auto& versions = info["packages"] = nlohmann::ordered_json::object();
    versions["emoji-datasource-" + options_.catalog_vendor] =
        package_version(options_.packages / ("emoji-datasource-" + options_.catalog_vendor));
    for (const auto& v : options_.view_vendors)
      versions["emoji-datasource-" + v] = package_version(options_.packages / ("emoji-datasource-" + v));
    versions["emojibase-data"] = package_version(options_.packages / "emojibase-data");
    auto& counts = info["counts"] = nlohmann::ordered_json::object();
    for (const char* kind : {"product", "query", "image", "post"})
      for (const auto& split : splits) counts[kind][split] = report_.count(kind, split);
    info["skipped"] = report_.skipped;
    std::set<std::string> subcategories;
    for (const auto& p : products_) subcategories.insert(p.subcategory);
    info["subcategories"] = subcategories;
    {
      std::ofstream out(options_.out / "benchmark.json", std::ios::binary | std::ios::trunc);
      out << info.dump(2) << '\n';
      if (!out) throw Error({(options_.out / "benchmark.json").string(), 0, ""}, "write failed");
    }
  }

  const EmojiBenchmarkOptions& options_;
  EmojiBenchmarkReport report_;
  std::vector<std::string> locales_;
  std::filesystem::path catalog_file_;
  nlohmann::json catalog_json_;
  std::map<std::string, VendorEmoji> catalog_art_;
  std::map<std::string, std::map<std::string, VendorEmoji>> view_art_;
  std::map<std::string, LocaleText> catalog_text_;
  std::map<std::string, std::map<std::string, LocaleText>> locale_text_;
  std::vector<Product> products_;
  std::map<std::string, std::vector<Item>> catalog_, sources_;
  std::map<std::string, std::vector<Pair>> pairs_;
  std::set<std::pair<std::string, std::string>> copied_;  // (vendor, file)
};
}  // namespace detail

/// Builds the benchmark directory `options.out` and reports what it wrote. Deterministic: the
/// same packages, options and seed give the same bytes.
inline EmojiBenchmarkReport build_emoji_benchmark(const EmojiBenchmarkOptions& options) {
  return detail::EmojiBuilder(options).build();
}

}  // namespace commercemm::data
