#pragma once
// What the loaders load: a split's catalog items as pass-A image-text records, its pairs as
// pass-B cross-pair records (source item -> target product), the pair kinds mixed by weight.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <commercemm/core/error.hpp>
#include <commercemm/core/options.hpp>
#include <commercemm/data/manifest.hpp>

namespace commercemm::data {

/// One item as the loader sees it: an image file and/or a text, and a product.
struct Example {
  std::string id;
  std::filesystem::path image;  ///< empty = no image
  std::string text;             ///< empty = no text
  std::int64_t product = -1;    ///< index into the loader's product dictionary (-1 = none)
  std::string kind;             ///< a pair's source: its pair kind; "" for catalog items
};

/// A training record: `source` alone (image-text), or `source` -> `target` (a cross pair).
struct Record {
  Example source;
  std::optional<Example> target;
};

/// Product ids (strings) -> dense indices, shared by every loader of a run.
class ProductIndex {
 public:
  std::int64_t operator()(const std::string& product_id) {
    if (product_id.empty()) return -1;
    return ids_.try_emplace(product_id, static_cast<std::int64_t>(ids_.size())).first->second;
  }
  std::int64_t size() const { return static_cast<std::int64_t>(ids_.size()); }

 private:
  std::map<std::string, std::int64_t, std::less<>> ids_;
};

inline Example to_example(const Item& item, ProductIndex& products, const std::string& product_id) {
  return {item.id, item.images.empty() ? std::filesystem::path{} : item.images.front(), item.text(),
          products(product_id), ""};
}

/// Pass A records: every catalog item of a split, as an image-text pair.
inline std::vector<Record> image_text_records(const DatasetSplit& split, ProductIndex& products) {
  std::vector<Record> out;
  out.reserve(split.catalog.size());
  for (const auto& item : split.catalog) out.push_back({to_example(item, products, item.product_id), {}});
  return out;
}

/// Pass B records: every cross pair of a split (kinds filtered by `kinds`, all if empty),
/// the target being the product's first catalog item.
inline std::vector<Record> cross_pair_records(const DatasetSplit& split, ProductIndex& products,
                                              const std::vector<PairKind>& kinds = {}) {
  std::vector<Record> out;
  for (const auto& pair : split.pairs) {
    if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), pair.kind) == kinds.end()) continue;
    const Item* source = split.sources.find(pair.source);
    const auto& target = split.catalog[split.catalog.product_items(pair.target).front()];
    auto example = to_example(*source, products, pair.target);
    example.kind = pair.kind;
    out.push_back({std::move(example), to_example(target, products, pair.target)});
  }
  return out;
}

/// How pass B draws a kind's pairs (data.pair_sampling): "pairs" (each pair equally often,
/// so a product with 40 queries is a target 40 times as often as one with 1) or "products"
/// (each target product equally often, its pairs taking turns: a catalog's popular products
/// do not crowd out the rest).
enum class PairSampling { pairs, products };

/// `n` of one kind's `records`, each target product equally often (give or take one): rounds
/// over the products in a seeded order, each product's pairs in a seeded order, repeated
/// when a product needs more than it has.
inline std::vector<Record> product_balanced(std::vector<Record> records, std::size_t n, std::mt19937_64& rng) {
  std::map<std::int64_t, std::vector<Record>> by_product;
  for (auto& r : records) by_product[r.target->product].push_back(std::move(r));
  std::vector<std::vector<Record>*> order;
  for (auto& [product, pairs] : by_product) {
    std::shuffle(pairs.begin(), pairs.end(), rng);
    order.push_back(&pairs);
  }
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<Record> out;
  out.reserve(n);
  for (std::size_t round = 0; out.size() < n; ++round)
    for (auto* pairs : order) {
      if (out.size() == n) break;
      out.push_back((*pairs)[round % pairs->size()]);
    }
  return out;
}

/// Pass B records with the pair kinds mixed by `weights` (kind -> relative share; empty:
/// every pair once, so each kind has its share of the pairs). With weights, each kind gets
/// round(w / sum(w) * N) records, N the pairs of the weighted kinds: its pairs in a seeded
/// order, repeated when it needs more than it has (they are augmented anew each time).
/// `sampling` = products spreads each kind's records evenly over its target products.
/// A weight for a kind the split lacks, a kind of the split without a weight, or a negative
/// weight is an error naming data.pair_kinds.<kind>.
inline std::vector<Record> mixed_cross_pair_records(const DatasetSplit& split, ProductIndex& products,
                                                    const OptionTable& weights, std::uint64_t seed,
                                                    PairSampling sampling = PairSampling::pairs) {
  const auto take = [&](std::vector<Record> records, std::size_t want, std::mt19937_64& rng) {
    if (sampling == PairSampling::products) return product_balanced(std::move(records), want, rng);
    std::shuffle(records.begin(), records.end(), rng);
    std::vector<Record> out;
    for (std::size_t i = 0; i < want; ++i) out.push_back(records[i % records.size()]);
    return out;
  };
  if (weights.empty()) {
    if (sampling == PairSampling::pairs) return cross_pair_records(split, products);
    std::vector<Record> out;
    std::mt19937_64 rng(seed);
    for (const auto& kind : split.pair_kinds()) {
      auto records = cross_pair_records(split, products, {kind});
      const auto want = records.size();
      for (auto& r : take(std::move(records), want, rng)) out.push_back(std::move(r));
    }
    return out;
  }
  const auto present = split.pair_kinds();
  std::string listed;
  for (const auto& k : present) listed += (listed.empty() ? "" : ", ") + k;
  std::map<PairKind, double> w;
  double total = 0;
  for (const auto& [kind, option] : weights) {
    const Location at{option.where.file, option.where.line, "data.pair_kinds." + kind};
    if (std::find(present.begin(), present.end(), kind) == present.end())
      throw Error(at, "the " + split.name + " split has no '" + kind + "' pairs (its kinds: " + listed + ")");
    if (!option.value.is_number() || option.value.get<double>() < 0)
      throw Error(at, "expected a weight >= 0, got " + option.value.dump());
    total += w[kind] = option.value.get<double>();
  }
  for (const auto& kind : present)
    if (!w.count(kind))
      throw Error(Location{"", 0, "data.pair_kinds." + kind},
                  "the " + split.name + " split has '" + kind + "' pairs but [data.pair_kinds] gives them no weight "
                  "(0 leaves them out)");
  if (!(total > 0)) throw Error(Location{"", 0, "data.pair_kinds"}, "every weight is 0: pass B would have no data");
  std::size_t n = 0;
  for (const auto& p : split.pairs) n += w.at(p.kind) > 0 ? 1 : 0;
  std::vector<Record> out;
  std::mt19937_64 rng(seed);
  for (const auto& [kind, weight] : w) {
    if (weight <= 0) continue;
    const auto want = static_cast<std::size_t>(std::llround(weight / total * static_cast<double>(n)));
    for (auto& r : take(cross_pair_records(split, products, {kind}), want, rng)) out.push_back(std::move(r));
  }
  return out;
}

/// Pass B records with the kinds in proportion: every image and post pair, plus a seeded
/// sample of `queries_per_view` query pairs per image/post pair. On the emoji benchmark
/// queries outnumber other views 28 to 1, and an unbalanced pass B leaves the image-side
/// retrieval tasks a row or two per batch.
inline std::vector<Record> balanced_cross_pair_records(const DatasetSplit& split, ProductIndex& products,
                                                       double queries_per_view = 0.5, std::uint64_t seed = 0) {
  auto out = cross_pair_records(split, products, {pair_kinds::image, pair_kinds::post});
  auto queries = cross_pair_records(split, products, {pair_kinds::query});
  std::mt19937_64 rng(seed);
  std::shuffle(queries.begin(), queries.end(), rng);
  const auto keep = std::min(queries.size(), static_cast<std::size_t>(queries_per_view * static_cast<double>(out.size())));
  out.insert(out.end(), queries.begin(), queries.begin() + static_cast<std::ptrdiff_t>(keep));
  return out;
}

}  // namespace commercemm::data
