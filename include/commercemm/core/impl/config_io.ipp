#pragma once
// Definitions of core/config_io.hpp (see core/linkage.hpp).
#include <algorithm>
#include <cmath>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#endif
#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <commercemm/core/config_io.hpp>

namespace commercemm {
namespace detail {

template <class T>
concept ConfigStruct = requires(T& t) { visit_fields(t, [](const char*, auto&) {}); };

class TomlReader {
 public:
  explicit TomlReader(std::string file) : file_(std::move(file)) {}

  template <ConfigStruct S> void read_table(const toml::table& table, S& out, const std::string& prefix) {
    for (auto&& entry : table) {  // not a structured binding: clang < 16 cannot capture one
      const auto& node = entry.second;
      const std::string name(entry.first.str());
      bool found = false;
      std::vector<std::string> valid;
      visit_fields(out, [&](const char* field, auto& member) {
        valid.emplace_back(field);
        if (!found && name == field) {
          found = true;
          lines_[prefix + name] = static_cast<std::int64_t>(node.source().begin.line);
          read_value(node, member, prefix + name);
        }
      });
      if (!found) fail(node, prefix + name, "unknown key" + suggest(name, valid));
    }
  }

  void read_value(const toml::node& node, std::int64_t& out, const std::string& key) {
    if (!node.is_integer()) fail(node, key, "expected an integer, got " + type_name(node));
    out = node.as_integer()->get();
  }
  void read_value(const toml::node& node, double& out, const std::string& key) {
    if (node.is_integer()) out = static_cast<double>(node.as_integer()->get());
    else if (node.is_floating_point()) out = finite(node, key);
    else fail(node, key, "expected a number, got " + type_name(node));
  }
  void read_value(const toml::node& node, std::string& out, const std::string& key) {
    if (!node.is_string()) fail(node, key, "expected a string, got " + type_name(node));
    out = node.as_string()->get();
  }
  void read_value(const toml::node& node, bool& out, const std::string& key) {
    if (!node.is_boolean()) fail(node, key, "expected true or false, got " + type_name(node));
    out = node.as_boolean()->get();
  }
  void read_value(const toml::node& node, OptionTable& out, const std::string& key) { read_options(node, out, key); }
  template <ConfigStruct S> void read_value(const toml::node& node, S& out, const std::string& key) {
    if (!node.is_table()) fail(node, key, "expected a table, got " + type_name(node));
    read_table(*node.as_table(), out, key + ".");
  }

  /// A table whose keys the recipe checks later: each value kept with where it was written.
  void read_options(const toml::node& node, OptionTable& out, const std::string& key,
                    const std::vector<std::string>& typed = {}) {
    if (!node.is_table()) fail(node, key, "expected a table, got " + type_name(node));
    for (auto&& [name, value] : *node.as_table()) {
      const std::string k(name.str());
      if (std::find(typed.begin(), typed.end(), k) != typed.end()) continue;
      out[k] = Option{to_json(value, key + "." + k), Location{file_, static_cast<std::int64_t>(value.source().begin.line), ""}};
    }
  }
  nlohmann::json to_json(const toml::node& node, const std::string& key) {
    if (node.is_boolean()) return node.as_boolean()->get();
    if (node.is_integer()) return node.as_integer()->get();
    if (node.is_floating_point()) return finite(node, key);
    if (node.is_string()) return node.as_string()->get();
    if (node.is_array()) {
      auto out = nlohmann::json::array();
      for (const auto& element : *node.as_array()) out.push_back(to_json(element, key));
      return out;
    }
    fail(node, key, "expected a number, a string, true/false or an array, got " + type_name(node));
  }

  // TOML allows inf and nan; no key means them (a NaN learning rate trains nothing, and
  // config.json could not even hold one for a resume).
  double finite(const toml::node& node, const std::string& key) const {
    const double value = node.as_floating_point()->get();
    if (!std::isfinite(value)) fail(node, key, "must be a finite number, got " + std::to_string(value));
    return value;
  }

  [[noreturn]] void fail(const toml::node& node, const std::string& key, const std::string& what) const {
    throw Error(Location{file_, static_cast<std::int64_t>(node.source().begin.line), key}, what);
  }
  const std::string& file() const { return file_; }
  /// The line a key was read from, 0 when the file did not set it.
  std::int64_t line_of(const std::string& key) const {
    const auto found = lines_.find(key);
    return found == lines_.end() ? 0 : found->second;
  }

 private:
  static std::string type_name(const toml::node& node) {
    std::ostringstream s;
    s << node.type();
    return s.str();
  }
  std::string file_;
  std::map<std::string, std::int64_t> lines_;
};

/// Applies a parsed TOML document on top of `config` (presets first, then keys).
inline void apply_toml(const toml::table& doc, Config& config, TomlReader& reader) {
  for (auto&& [key, node] : doc) {
    const std::string name(key.str());
    if (name == "model") {
      if (!node.is_table()) reader.fail(node, "model", "expected a table");
      const auto& model = *node.as_table();
      // The preset sets every size; the other keys of [model] then override it.
      if (const auto* preset = model.get("preset")) {
        std::string preset_name;
        reader.read_value(*preset, preset_name, "model.preset");
        try {
          config.model = presets::model(preset_name);
        } catch (const Error& e) {
          reader.fail(*preset, "model.preset", e.message());
        }
      }
      reader.read_table(model, config.model, "model.");
    } else if (name == "data") {
      reader.read_value(node, config.data, "data");
    } else if (name == "train") {
      reader.read_value(node, config.train, "train");
    } else if (name == "finetune") {
      reader.read_value(node, config.finetune, "finetune");
    } else if (name == "eval") {
      reader.read_value(node, config.eval, "eval");
    } else if (name == "dist") {
      reader.read_value(node, config.dist, "dist");
    } else if (name == "tasks") {
      if (!node.is_table()) reader.fail(node, "tasks", "expected a table of [tasks.<name>] tables");
      for (auto&& [task, table] : *node.as_table()) {
        const std::string key = "tasks." + std::string(task.str());
        auto& entry = config.tasks[std::string(task.str())];
        if (!table.is_table()) reader.fail(table, key, "expected a table");
        if (const auto* weight = table.as_table()->get("weight")) reader.read_value(*weight, entry.weight, key + ".weight");
        reader.read_options(table, entry.options, key, {"weight"});
      }
    } else if (name == "schedule") {
      reader.read_options(node, config.schedule, "schedule");
    } else {
      reader.fail(node, name, "unknown table" + suggest(name, {"model", "data", "train", "finetune", "eval", "dist", "tasks", "schedule"}));
    }
  }
}

/// The 1-based line of the first byte that does not start a valid UTF-8 sequence (overlong
/// forms, surrogates and code points past U+10FFFF included), or 0 when all is valid.
inline std::int64_t first_invalid_utf8_line(const std::string& text) {
  std::int64_t line = 1;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c == '\n') ++line;
    if (c < 0x80) {
      ++i;
      continue;
    }
    const int length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (length == 0 || c > 0xf4 || c == 0xc0 || c == 0xc1 || i + static_cast<std::size_t>(length) > n) return line;
    std::uint32_t code = c & (0x7f >> length);
    for (int k = 1; k < length; ++k) {
      if ((s[i + static_cast<std::size_t>(k)] & 0xc0) != 0x80) return line;
      code = (code << 6) | (s[i + static_cast<std::size_t>(k)] & 0x3f);
    }
    const std::uint32_t smallest = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return line;
    i += static_cast<std::size_t>(length);
  }
  return 0;
}

/// Outside strings and comments TOML is printable ASCII. toml++ 3.3 (Debian 12) asserts or
/// reaches undefined behaviour on some other characters there (a control character in a table
/// header, U+0308 after a bare key; fixed in 3.4), so they are refused first, with the line.
/// A small lexer: comments, the four string kinds, escapes.
inline void check_characters_outside_strings(const std::string& text, const std::string& file) {
  enum class In { code, comment, basic, literal, multiline_basic, multiline_literal } in = In::code;
  std::int64_t line = 1;
  auto at = [&](std::size_t i, char quote) {
    return i + 2 < text.size() && text[i] == quote && text[i + 1] == quote && text[i + 2] == quote;
  };
  // A multi-line string's closing delimiter may be followed by up to two more quotes (content).
  auto close_multiline = [&](std::size_t& i, char quote) {
    i += 2;
    for (int extra = 0; extra < 2 && i + 1 < text.size() && text[i + 1] == quote; ++extra) ++i;
    in = In::code;
  };
  bool line_start = true;  // only whitespace so far on this line (in code)
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;  // single-line forms end
      line_start = in == In::code;
      continue;
    }
    if (in == In::code && line_start && c == '[') {  // a table header: toml++ 3.3 asserts unless a key follows
      std::size_t k = i + 1;
      if (k < text.size() && text[k] == '[') ++k;
      while (k < text.size() && (text[k] == ' ' || text[k] == '\t')) ++k;
      const char first = k < text.size() ? text[k] : '\n';
      if (!(std::isalnum(static_cast<unsigned char>(first)) || first == '_' || first == '-' || first == '"' || first == '\''))
        throw Error(Location{file, line, ""}, "TOML syntax error: a table header must start with a key");
    }
    if (c != ' ' && c != '\t') line_start = false;
    switch (in) {
      case In::code:
        if (c == '#') in = In::comment;
        else if (at(i, '"')) in = In::multiline_basic, i += 2;
        else if (at(i, '\'')) in = In::multiline_literal, i += 2;
        else if (c == '"') in = In::basic;
        else if (c == '\'') in = In::literal;
        else if (static_cast<unsigned char>(c) >= 0x80)
          throw Error(Location{file, line, ""}, "TOML syntax error: a non-ASCII character outside a string or comment");
        else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
          throw Error(Location{file, line, ""}, "TOML syntax error: a control character outside a string or comment");
        break;
      case In::basic:
      case In::multiline_basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;  // an escape (a line-ending one counts its line)
        else if (in == In::basic && c == '"') in = In::code;
        else if (in == In::multiline_basic && at(i, '"')) close_multiline(i, '"');
        break;
      case In::literal:
        if (c == '\'') in = In::code;
        break;
      case In::multiline_literal:
        if (at(i, '\'')) close_multiline(i, '\'');
        break;
      case In::comment:
        break;
    }
  }
}

inline toml::table parse_toml(const std::string& text, const std::string& file) {
  // TOML forbids NUL; toml++ 3.3 asserts on one in a key instead of reporting it.
  if (const auto nul = text.find('\0'); nul != std::string::npos)
    throw Error(Location{file, 1 + static_cast<std::int64_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n')), ""},
                "TOML syntax error: a NUL character");
  // toml++ 3.3 reaches undefined behaviour on some invalid UTF-8, even inside strings.
  if (const auto line = first_invalid_utf8_line(text); line > 0)
    throw Error(Location{file, line, ""}, "TOML syntax error: invalid UTF-8");
  check_characters_outside_strings(text, file);
  try {
    return toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw Error(Location{file, static_cast<std::int64_t>(e.source().begin.line), ""},
                "TOML syntax error: " + std::string(e.description()));
  }
}

}  // namespace detail

COMMERCEMM_DECL Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Location{path, 0, ""}, "cannot open config file");
  std::error_code ec;
  if (const auto size = std::filesystem::file_size(path, ec); !ec && size > (std::uintmax_t{1} << 20))
    throw Error(Location{path, 0, ""}, "a config file of " + std::to_string(size) + " bytes, more than 1 MiB: not a config");
  std::ostringstream text;
  text << in.rdbuf();
  std::string toml = text.str();
  if (toml.rfind("\xEF\xBB\xBF", 0) == 0) toml.erase(0, 3);  // a UTF-8 byte-order mark, as Windows editors write
  Config config;
  detail::TomlReader reader(path);
  detail::apply_toml(detail::parse_toml(toml, path), config, reader);
  try {
    validate(config, path);
  } catch (const Error& e) {  // a value out of range: the line the file gave it on
    const auto line = reader.line_of(e.where().field);
    if (e.where().line > 0 || line == 0) throw;
    throw Error(Location{path, line, e.where().field}, e.message());
  }
  return config;
}

COMMERCEMM_DECL void apply_override(Config& config, const std::string& assignment, bool check) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(Location{"--set", 0, assignment}, "expected key=value, e.g. train.steps=100");
  const std::string key = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  // Bare words and paths are taken as strings so that --set train.precision=bf16 and
  // --set model.image.init=/path/vit.safetensors work unquoted (no TOML value starts with / . ~).
  const bool bare_word = !value.empty() &&
                         (std::isalpha(static_cast<unsigned char>(value[0])) || value[0] == '/' || value[0] == '.' ||
                          value[0] == '~') &&
                         value != "true" && value != "false" && value.find_first_of("\"'") == std::string::npos;
  const std::string line = key + " = " + (bare_word ? "\"" + value + "\"" : value);
  detail::TomlReader reader("--set " + assignment);
  Config changed = config;  // a rejected override leaves `config` as it was
  detail::apply_toml(detail::parse_toml(line, "--set " + assignment), changed, reader);
  if (check) validate(changed, "--set " + assignment);
  config = std::move(changed);
}

COMMERCEMM_DECL void apply_overrides(Config& config, const std::vector<std::string>& assignments) {
  Config changed = config;
  for (const auto& a : assignments) apply_override(changed, a, false);
  if (!assignments.empty()) validate(changed, "--set");
  config = std::move(changed);
}

namespace detail {
template <class S> nlohmann::json to_json(S& s) {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(s, [&](const char* name, auto& member) {
    using T = std::remove_cvref_t<decltype(member)>;
    if constexpr (ConfigStruct<T>) j[name] = to_json(member);
    else if constexpr (std::is_same_v<T, OptionTable>) j[name] = commercemm::to_json(member);
    else j[name] = member;
  });
  return j;
}
}  // namespace detail

COMMERCEMM_DECL nlohmann::json to_json(Config config) {
  nlohmann::json j;
  j["model"] = detail::to_json(config.model);
  j["data"] = detail::to_json(config.data);
  j["train"] = detail::to_json(config.train);
  j["finetune"] = detail::to_json(config.finetune);
  j["eval"] = detail::to_json(config.eval);
  j["dist"] = detail::to_json(config.dist);
  j["tasks"] = nlohmann::json::object();
  for (auto& [name, task] : config.tasks) {
    j["tasks"][name] = to_json(task.options);
    j["tasks"][name]["weight"] = task.weight;
  }
  if (!config.schedule.empty()) j["schedule"] = to_json(config.schedule);
  return j;
}
COMMERCEMM_DECL nlohmann::json to_json(ModelConfig config) { return detail::to_json(config); }

namespace detail {
template <class S> void from_json(const nlohmann::json& j, S& s, const std::string& prefix) {
  visit_fields(s, [&](const char* name, auto& member) {
    const auto it = j.find(name);
    if (it == j.end()) return;  // written by an older version: keep the default
    using T = std::remove_cvref_t<decltype(member)>;
    if constexpr (ConfigStruct<T>) {
      from_json(*it, member, prefix + name + ".");
    } else if constexpr (std::is_same_v<T, OptionTable>) {
      for (const auto& [key, value] : it->items()) member[key] = Option{value, Location{"<config json>", 0, ""}};
    } else {
      try {
        member = it->template get<T>();
      } catch (const nlohmann::json::exception& e) {
        throw Error(Location{"<config json>", 0, prefix + name}, std::string("wrong type: ") + e.what());
      }
    }
  });
}
}  // namespace detail

COMMERCEMM_DECL Config config_from_json(const nlohmann::json& j) {
  Config config;
  if (j.contains("model")) detail::from_json(j["model"], config.model, "model.");
  if (j.contains("data")) detail::from_json(j["data"], config.data, "data.");
  if (j.contains("train")) detail::from_json(j["train"], config.train, "train.");
  if (j.contains("finetune")) detail::from_json(j["finetune"], config.finetune, "finetune.");
  if (j.contains("eval")) detail::from_json(j["eval"], config.eval, "eval.");
  if (j.contains("dist")) detail::from_json(j["dist"], config.dist, "dist.");
  const Location from_checkpoint{"<config json>", 0, ""};
  if (j.contains("tasks"))
    for (const auto& [name, task] : j["tasks"].items()) {
      auto& entry = config.tasks[name];
      for (const auto& [key, value] : task.items()) {
        if (key != "weight") {
          entry.options[key] = Option{value, from_checkpoint};
        } else if (!value.is_number()) {
          throw Error(Location{"<config json>", 0, "tasks." + name + ".weight"}, "expected a number");
        } else {
          entry.weight = value.get<double>();
        }
      }
    }
  if (j.contains("schedule"))
    for (const auto& [key, value] : j["schedule"].items()) config.schedule[key] = Option{value, from_checkpoint};
  validate(config, "<config json>");
  return config;
}

}  // namespace commercemm
