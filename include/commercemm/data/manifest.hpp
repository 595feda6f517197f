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

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>
#include <commercemm/core/jsonl.hpp>

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

namespace detail {


inline std::string expect_string(const nlohmann::json& object, const char* key, const Location& line,
                                 bool required) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (required) throw Error({line.file, line.line, key}, "missing required field");
    return {};
  }
  if (!it->is_string())
    throw Error({line.file, line.line, key}, std::string("expected a string, got ") + json_type_name(*it));
  return it->get<std::string>();
}

inline std::vector<std::string> expect_strings(const nlohmann::json& object, const char* key,
                                               const Location& line) {
  const auto it = object.find(key);
  if (it == object.end()) return {};
  if (!it->is_array())
    throw Error({line.file, line.line, key}, std::string("expected an array of strings, got ") + json_type_name(*it));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& element = (*it)[i];
    if (!element.is_string())
      throw Error({line.file, line.line, std::string(key) + "[" + std::to_string(i) + "]"},
                  std::string("expected a string, got ") + json_type_name(element));
    out.push_back(element.get<std::string>());
  }
  return out;
}

inline void reject_unknown_keys(const nlohmann::json& object, std::initializer_list<const char*> known,
                                const Location& line) {
  for (const auto& entry : object.items()) {
    const bool ok = std::any_of(known.begin(), known.end(), [&](const char* k) { return entry.key() == k; });
    if (ok) continue;
    std::string list;
    for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    throw Error({line.file, line.line, entry.key()}, "unknown field (known fields: " + list + ")");
  }
}

/// Whether `path`, with every symlink of its existing part resolved, lies inside `dir`.
inline bool resolves_inside(const std::filesystem::path& path, const std::filesystem::path& dir) {
  std::error_code ec;
  const auto root = std::filesystem::weakly_canonical(dir.empty() ? std::filesystem::path(".") : dir, ec);
  if (ec) return false;
  const auto resolved = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  const auto rel = resolved.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

inline std::string relative_path_string(const std::filesystem::path& target, const std::filesystem::path& base_dir) {
  const auto normal = target.lexically_normal();
  const auto base = base_dir.empty() ? std::filesystem::path(".") : base_dir.lexically_normal();
  const auto rel = normal.lexically_relative(base);
  return (rel.empty() ? normal : rel).generic_string();
}

}  // namespace detail

/// Reads an items manifest. Image paths are resolved against the manifest's directory
/// (absolute paths stay as they are). Throws commercemm::Error naming file, line and field.
inline ItemTable read_items(const std::filesystem::path& file, const ItemRequirements& needs = {}) {
  const auto base = file.parent_path();
  std::vector<Item> items;
  for_each_jsonl_object(file, [&](const nlohmann::json& object, const Location& where) {
    detail::reject_unknown_keys(object, {"id", "product_id", "image", "images", "title", "tags", "description",
                                         "category", "subcategory", "language"},
                                where);
    Item item;
    item.where = where;
    item.id = detail::expect_string(object, "id", where, true);
    if (item.id.empty()) throw Error({where.file, where.line, "id"}, "must not be empty");
    item.product_id = detail::expect_string(object, "product_id", where, needs.product_id);
    if (needs.product_id && item.product_id.empty())
      throw Error({where.file, where.line, "product_id"}, "must not be empty in a catalog");
    if (object.contains("image") && object.contains("images"))
      throw Error({where.file, where.line, "images"}, "give either 'image' or 'images', not both");
    std::vector<std::string> paths;
    const char* image_key = object.contains("image") ? "image" : "images";
    if (object.contains("image")) paths.push_back(detail::expect_string(object, "image", where, true));
    else paths = detail::expect_strings(object, "images", where);
    for (std::size_t i = 0; i < paths.size(); ++i) {
      const std::string field = object.contains("image") ? "image" : "images[" + std::to_string(i) + "]";
      if (paths[i].empty()) throw Error({where.file, where.line, field}, "empty image path");
      auto path = base / std::filesystem::path(paths[i]);
      if (!needs.allow_outside_paths && !detail::resolves_inside(path, base))
        throw Error({where.file, where.line, field},
                    "'" + paths[i] + "' resolves outside the dataset directory '" +
                        (base.empty() ? std::string(".") : base.string()) +
                        "' (set data.allow_outside_paths = true to read it anyway)");
      if (needs.check_files) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
          throw Error({where.file, where.line, field}, "image file not found: " + path.string());
      }
      item.images.push_back(std::move(path));
    }
    item.title = detail::expect_string(object, "title", where, false);
    item.tags = detail::expect_strings(object, "tags", where);
    item.description = detail::expect_string(object, "description", where, false);
    item.category = detail::expect_string(object, "category", where, false);
    item.subcategory = detail::expect_string(object, "subcategory", where, false);
    item.language = detail::expect_string(object, "language", where, false);
    if (needs.text && !item.has_text())
      throw Error({where.file, where.line, "title"}, "missing required text (title, tags or description)");
    if (needs.image && !item.has_image())
      throw Error({where.file, where.line, image_key}, "missing required image");
    if (!item.has_text() && !item.has_image())
      throw Error({where.file, where.line, "title"}, "an item needs text (title, tags, description) or an image");
    items.push_back(std::move(item));
  });
  return ItemTable(std::move(items));
}

/// Reads a pairs manifest and checks every reference: `source` must be an item of `sources`,
/// `target` a product of `catalog`; `kind` an identifier. The sources of one kind must all
/// hold the same modalities (a built-in kind has them fixed: a query text, an image view an
/// image, a post both); the first pair of a new kind fixes them for the rest.
inline std::vector<Pair> read_pairs(const std::filesystem::path& file, const ItemTable& sources,
                                    const ItemTable& catalog) {
  std::vector<Pair> pairs;
  std::map<std::string, std::pair<std::pair<bool, bool>, std::int64_t>> first_of_kind;  // kind -> (text, image), line
  std::unordered_map<std::string, std::int64_t> lines;  // source \0 target \0 kind -> its first line
  for_each_jsonl_object(file, [&](const nlohmann::json& object, const Location& where) {
    detail::reject_unknown_keys(object, {"source", "target", "kind"}, where);
    Pair pair;
    pair.where = where;
    pair.source = detail::expect_string(object, "source", where, true);
    pair.target = detail::expect_string(object, "target", where, true);
    const auto kind_name = detail::expect_string(object, "kind", where, true);
    if (!valid_pair_kind(kind_name))
      throw Error({where.file, where.line, "kind"},
                  "'" + kind_name + "' is not a pair kind: a lower-case identifier [a-z][a-z0-9_]* (query, image, "
                  "post, or a kind of the dataset's own, e.g. review)");
    pair.kind = kind_name;
    const Item* source = sources.find(pair.source);
    if (source == nullptr)
      throw Error({where.file, where.line, "source"}, "no item with id '" + pair.source + "' in the sources");
    if (!catalog.has_product(pair.target))
      throw Error({where.file, where.line, "target"}, "no product '" + pair.target + "' in the catalog");
    auto holds = [](bool text, bool image) { return text ? (image ? "text and an image" : "only text") : "only an image"; };
    // What a built-in kind's source must hold (a plain struct: std::optional<pair> here trips
    // g++ 12's maybe-uninitialized warning at -O1).
    struct Needs {
      bool built_in = false, text = false, image = false;
    };
    const Needs needs = kind_name == pair_kinds::query ? Needs{true, true, false}
                        : kind_name == pair_kinds::image ? Needs{true, false, true}
                        : kind_name == pair_kinds::post  ? Needs{true, true, true}
                                                         : Needs{};
    const std::pair<bool, bool> has{source->has_text(), source->has_image()};
    if (needs.built_in && ((needs.text && !has.first) || (needs.image && !has.second)))
      throw Error({where.file, where.line, "kind"},
                  "a '" + kind_name + "' pair needs a source with " +
                      (needs.text && needs.image ? "text and an image" : needs.text ? "text" : "an image") +
                      ", but item '" + pair.source + "' (" + source->where.file + ":" +
                      std::to_string(source->where.line) + ") has " + holds(has.first, has.second));
    if (!needs.built_in) {
      const auto [first, inserted] = first_of_kind.try_emplace(kind_name, has, where.line);
      if (!inserted && first->second.first != has)
        throw Error({where.file, where.line, "kind"},
                    "the sources of '" + kind_name + "' pairs must all hold the same modalities: item '" + pair.source +
                        "' has " + holds(has.first, has.second) + ", the first '" + kind_name + "' pair's source (line " +
                        std::to_string(first->second.second) + ") has " +
                        holds(first->second.first.first, first->second.first.second));
    }
    // A repeated pair would weigh its product several times in training and in the metrics: a
    // generated file gone wrong (a million rows of one pair) stops at its second row.
    const auto [first, inserted] = lines.try_emplace(pair.source + '\0' + pair.target + '\0' + pair.kind, where.line);
    if (!inserted)
      throw Error({where.file, where.line, "source"}, "duplicate pair: line " + std::to_string(first->second) +
                                                          " already pairs '" + pair.source + "' with '" + pair.target +
                                                          "' as " + pair.kind);
    pairs.push_back(std::move(pair));
  });
  return pairs;
}

/// Writes items as JSONL, image paths relative to the manifest's directory. Keys in schema
/// order, empty fields left out, UTF-8 as is: the same items give the same bytes.
inline void write_items(const std::filesystem::path& file, const std::vector<Item>& items) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw Error({file.string(), 0, ""}, "cannot create manifest");
  for (const auto& item : items) {
    nlohmann::ordered_json object;
    object["id"] = item.id;
    if (!item.product_id.empty()) object["product_id"] = item.product_id;
    if (item.images.size() == 1) {
      object["image"] = detail::relative_path_string(item.images[0], file.parent_path());
    } else if (!item.images.empty()) {
      auto& list = object["images"] = nlohmann::ordered_json::array();
      for (const auto& path : item.images) list.push_back(detail::relative_path_string(path, file.parent_path()));
    }
    if (!item.title.empty()) object["title"] = item.title;
    if (!item.tags.empty()) object["tags"] = item.tags;
    if (!item.description.empty()) object["description"] = item.description;
    if (!item.category.empty()) object["category"] = item.category;
    if (!item.subcategory.empty()) object["subcategory"] = item.subcategory;
    if (!item.language.empty()) object["language"] = item.language;
    out << object.dump() << '\n';
  }
  if (!out) throw Error({file.string(), 0, ""}, "write failed");
}

inline void write_pairs(const std::filesystem::path& file, const std::vector<Pair>& pairs) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw Error({file.string(), 0, ""}, "cannot create manifest");
  for (const auto& pair : pairs) {
    nlohmann::ordered_json object;
    object["source"] = pair.source;
    object["target"] = pair.target;
    object["kind"] = pair.kind;
    out << object.dump() << '\n';
  }
  if (!out) throw Error({file.string(), 0, ""}, "write failed");
}

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
inline DatasetSplit read_split(const std::filesystem::path& dir, std::string_view split, bool check_files = true,
                               bool allow_outside_paths = false) {
  DatasetSplit out;
  out.name = std::string(split);
  const auto catalog_file = split_manifest(dir, "catalog", split);
  if (!std::filesystem::exists(catalog_file))
    throw Error({catalog_file.string(), 0, ""}, "no such file: is '" + dir.string() + "' a dataset directory with a '" +
                                                    std::string(split) + "' split?");
  out.catalog = read_items(catalog_file, {.product_id = true, .text = true, .image = true, .check_files = check_files,
                                          .allow_outside_paths = allow_outside_paths});
  const auto sources_file = split_manifest(dir, "sources", split);
  const auto pairs_file = split_manifest(dir, "pairs", split);
  if (std::filesystem::exists(sources_file)) {
    out.sources = read_items(sources_file, {.check_files = check_files, .allow_outside_paths = allow_outside_paths});
    for (const auto& item : out.sources) {
      if (const Item* clash = out.catalog.find(item.id))
        throw Error({item.where.file, item.where.line, "id"},
                    "id '" + item.id + "' is also a catalog item (" + clash->where.file + ":" +
                        std::to_string(clash->where.line) + ")");
    }
  }
  if (std::filesystem::exists(pairs_file)) out.pairs = read_pairs(pairs_file, out.sources, out.catalog);
  return out;
}

}  // namespace commercemm::data
