#pragma once
// JSONL manifests: items (catalog products and the "source" items retrieval starts from) and
// pairs (source item -> target product). The schema is documented in docs/manifests.md.
//
// Everything here is plain data once read: a loader may share one ItemTable between its
// background threads without locking (nothing is mutated after construction).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <commercemm/core/error.hpp>
#include <commercemm/core/linkage.hpp>

namespace commercemm::data {

/// What a retrieval pair links: an open set of names, any identifier [a-z][a-z0-9_]*. Built
/// in: "query" (a text search query), "image" (another view of the product), "post" (a user's
/// image + text); a dataset may add its own ("review", "ad", "frame", ...). What a kind's
/// sources hold (text, image or both) comes from its source items, the same for all of them.
using PairKind = std::string;

namespace pair_kinds {
inline const PairKind query = "query";
inline const PairKind image = "image";
inline const PairKind post = "post";
}  // namespace pair_kinds

/// Whether `name` is a pair kind's name: [a-z][a-z0-9_]*.
inline bool valid_pair_kind(std::string_view name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

/// One line of an items manifest. A catalog product has a product_id, text and an image; a
/// source item (query, other view, post) has text, an image or both, and usually no product_id
/// (its ground truth lives in the pairs file, so evaluation cannot read it by accident).
struct Item {
  std::string id;                              ///< unique within a dataset split
  std::string product_id;                      ///< "" when the item names no product
  std::vector<std::filesystem::path> images;   ///< resolved against the manifest's directory
  std::string title;                           ///< a product title, a query string, a post caption
  std::vector<std::string> tags;
  std::string description;
  std::string category;
  std::string subcategory;
  std::string language;                        ///< BCP 47-ish tag of the text ("en", "pt", "zh-hant")
  Location where;                              ///< manifest file and line, for later error messages

  bool has_image() const { return !images.empty(); }
  bool has_text() const { return !title.empty() || !tags.empty() || !description.empty(); }

  /// The one string a tokenizer sees: "title. tag, tag. description" with empty parts left out.
  std::string text() const {
    std::string out = title;
    auto append = [&out](const std::string& part) {
      if (part.empty()) return;
      if (!out.empty()) out += ". ";
      out += part;
    };
    std::string joined;
    for (const auto& tag : tags) joined += (joined.empty() ? "" : ", ") + tag;
    append(joined);
    append(description);
    return out;
  }
};

/// One line of a pairs manifest.
struct Pair {
  std::string source;  ///< an item id in the sources manifest
  std::string target;  ///< a product_id of the catalog
  PairKind kind = pair_kinds::query;
  Location where;
};

/// Items by id and by product. Immutable after construction; safe to read from many threads.
class ItemTable {
 public:
  ItemTable() = default;
  /// Throws if two items share an id (naming both lines).
  explicit ItemTable(std::vector<Item> items) : items_(std::move(items)) {
    for (std::size_t i = 0; i < items_.size(); ++i) {
      const auto [it, inserted] = by_id_.emplace(items_[i].id, i);
      if (!inserted) {
        const auto& first = items_[it->second].where;
        Location at = items_[i].where;
        at.field = "id";
        throw Error(at, "duplicate item id '" + items_[i].id + "' (first used at " + first.file + ":" +
                            std::to_string(first.line) + ")");
      }
      if (!items_[i].product_id.empty()) by_product_[items_[i].product_id].push_back(i);
    }
  }

  const std::vector<Item>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const Item& operator[](std::size_t i) const { return items_[i]; }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

  /// The item with this id, or nullptr.
  const Item* find(std::string_view id) const {
    const auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &items_[it->second];
  }
  bool has_product(std::string_view product_id) const { return by_product_.find(product_id) != by_product_.end(); }
  /// Indices of the items showing this product (empty when none).
  const std::vector<std::size_t>& product_items(std::string_view product_id) const {
    static const std::vector<std::size_t> none;
    const auto it = by_product_.find(product_id);
    return it == by_product_.end() ? none : it->second;
  }
  /// The distinct product ids, sorted.
  std::vector<std::string> product_ids() const {
    std::vector<std::string> out;
    out.reserve(by_product_.size());
    for (const auto& entry : by_product_) out.push_back(entry.first);
    return out;
  }

 private:
  std::vector<Item> items_;
  std::map<std::string, std::size_t, std::less<>> by_id_;
  std::map<std::string, std::vector<std::size_t>, std::less<>> by_product_;
};

/// What reading requires of every item.
struct ItemRequirements {
  bool product_id = false;  ///< a catalog: every item names its product
  bool text = false;        ///< every item has a title, tags or a description
  bool image = false;       ///< every item has at least one image
  bool check_files = true;  ///< image files must exist (checked with one stat each)
  /// Image paths may resolve outside the manifest's directory ("..", absolute paths, symlinks
  /// pointing out); by default that is an error, so a manifest cannot make a run read any file.
  bool allow_outside_paths = false;
};

/// Reads an items manifest. Image paths are resolved against the manifest's directory
/// (absolute paths stay as they are). Throws commercemm::Error naming file, line and field.
COMMERCEMM_DECL ItemTable read_items(const std::filesystem::path& file, const ItemRequirements& needs = {});

/// Reads a pairs manifest and checks every reference: `source` must be an item of `sources`,
/// `target` a product of `catalog`; `kind` an identifier. The sources of one kind must all
/// hold the same modalities (a built-in kind has them fixed: a query text, an image view an
/// image, a post both); the first pair of a new kind fixes them for the rest.
COMMERCEMM_DECL std::vector<Pair> read_pairs(const std::filesystem::path& file, const ItemTable& sources,
                                             const ItemTable& catalog);

/// Writes items as JSONL, image paths relative to the manifest's directory. Keys in schema
/// order, empty fields left out, UTF-8 as is: the same items give the same bytes.
COMMERCEMM_DECL void write_items(const std::filesystem::path& file, const std::vector<Item>& items);
COMMERCEMM_DECL void write_pairs(const std::filesystem::path& file, const std::vector<Pair>& pairs);

/// One split of a dataset directory (the layout `commercemm data emoji` writes, and any
/// user dataset may follow): DIR/catalog-SPLIT.jsonl, DIR/sources-SPLIT.jsonl,
/// DIR/pairs-SPLIT.jsonl. The sources and pairs files may be absent (no retrieval data).
struct DatasetSplit {
  std::string name;
  ItemTable catalog;  ///< the products: image-text pairs for pre-training, labels for categorization
  ItemTable sources;  ///< queries, other views, posts, and whatever else a dataset pairs
  std::vector<Pair> pairs;

  /// Every text of the split: the catalog's, then the sources' that have one (what a learned
  /// tokenizer and the TF-IDF reference are fitted on).
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& item : catalog) out.push_back(item.text());
    for (const auto& item : sources)
      if (item.has_text()) out.push_back(item.text());
    return out;
  }
  /// The pair kinds present, in the order of their first pair.
  std::vector<PairKind> pair_kinds() const {
    std::vector<PairKind> out;
    for (const auto& p : pairs)
      if (std::find(out.begin(), out.end(), p.kind) == out.end()) out.push_back(p.kind);
    return out;
  }
  /// What the sources of `kind` hold: {has text, has an image} (of its first pair's source).
  std::pair<bool, bool> kind_holds(const PairKind& kind) const {
    for (const auto& p : pairs)
      if (p.kind == kind) {
        const Item* source = sources.find(p.source);
        return {source->has_text(), source->has_image()};
      }
    return {false, false};
  }
};

inline std::filesystem::path split_manifest(const std::filesystem::path& dir, std::string_view what,
                                            std::string_view split) {
  return dir / (std::string(what) + "-" + std::string(split) + ".jsonl");
}

/// Reads and cross-checks one split: catalog items must name their product and carry text
/// and an image; item ids must not repeat across catalog and sources.
COMMERCEMM_DECL DatasetSplit read_split(const std::filesystem::path& dir, std::string_view split, bool check_files = true,
                                        bool allow_outside_paths = false);

}  // namespace commercemm::data

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/data/impl/manifest.ipp>
#endif
