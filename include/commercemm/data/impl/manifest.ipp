#pragma once
// Definitions of data/manifest.hpp (see core/linkage.hpp).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>
#include <commercemm/core/jsonl.hpp>
#include <commercemm/data/manifest.hpp>

namespace commercemm::data {

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

COMMERCEMM_DECL ItemTable read_items(const std::filesystem::path& file, const ItemRequirements& needs) {
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
    // ids are written one per line (embed's ids.txt): a control character would break a line.
    if (std::any_of(item.id.begin(), item.id.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
      throw Error({where.file, where.line, "id"}, "must not contain control characters (a newline, a tab)");
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

COMMERCEMM_DECL std::vector<Pair> read_pairs(const std::filesystem::path& file, const ItemTable& sources,
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

COMMERCEMM_DECL void write_items(const std::filesystem::path& file, const std::vector<Item>& items) {
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

COMMERCEMM_DECL void write_pairs(const std::filesystem::path& file, const std::vector<Pair>& pairs) {
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

COMMERCEMM_DECL DatasetSplit read_split(const std::filesystem::path& dir, std::string_view split, bool check_files,
                                        bool allow_outside_paths) {
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
