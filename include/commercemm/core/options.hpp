#pragma once
// Recipe-checked option tables: a task's hyper-parameters ([tasks.<name>] besides `weight`)
// and the schedule's options ([schedule]). The config reader cannot know which keys a recipe
// uses, so it keeps each key's value and where it was written; the recipe's task or schedule
// then reads the table into its own options struct, and a key it does not use is an error
// naming the file, line and key, with the nearest valid key (never a silent no-op).
//
// An options struct lists its fields with a visit_fields overload, as the config structs do:
//   struct Options { double temperature = 0.07; bool learn_temperature = true; };
//   template <class F> void visit_fields(Options& o, F&& f) {
//     f("temperature", o.temperature); f("learn_temperature", o.learn_temperature);
//   }
// Field types: double, std::int64_t, bool, std::string, std::vector<double>.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>

namespace commercemm {

/// One option as written: its value and where (file and line; "--set ..." for an override).
struct Option {
  nlohmann::json value;
  Location where;
};
using OptionTable = std::map<std::string, Option>;

namespace detail {

inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1u : 0u)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// " (did you mean 'width'?)" when a valid key is close to `key`, else the list of valid keys.
inline std::string suggest(const std::string& key, const std::vector<std::string>& valid) {
  std::string best;
  std::size_t best_distance = 3;  // farther than 2 edits is not a typo
  for (const auto& v : valid) {
    const auto d = edit_distance(key, v);
    if (d < best_distance) best_distance = d, best = v;
  }
  if (!best.empty()) return " (did you mean '" + best + "'?)";
  if (valid.empty()) return " (it takes no options)";
  std::string all;
  for (const auto& v : valid) all += (all.empty() ? "" : ", ") + v;
  return " (valid keys: " + all + ")";
}

template <class T>
void assign_option(T& member, const Option& option, const std::string& key) {
  const auto& v = option.value;
  auto fail = [&](const std::string& expected) {
    throw Error(Location{option.where.file, option.where.line, key}, "expected " + expected + ", got " + v.dump());
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) fail("true or false");
    member = v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    if (!v.is_number_integer()) fail("an integer");
    member = v.get<std::int64_t>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.is_number()) fail("a number");
    member = v.get<double>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) fail("a string");
    member = v.get<std::string>();
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    if (!v.is_array()) fail("an array of numbers");
    member.clear();
    for (const auto& x : v) {
      if (!x.is_number()) fail("an array of numbers");
      member.push_back(x.get<double>());
    }
  } else {
    static_assert(sizeof(T) == 0, "an option is a double, std::int64_t, bool, std::string or std::vector<double>");
  }
}

}  // namespace detail

/// Reads `table` into `out` (fields not in the table keep their defaults). `prefix` is the
/// dotted table ("tasks.itc."), `owner` says whose options they are, for the error.
template <class S>
void read_options(const OptionTable& table, S& out, const std::string& prefix, const std::string& owner) {
  for (const auto& entry : table) {  // not a structured binding: clang < 16 cannot capture one
    const auto& key = entry.first;
    const auto& option = entry.second;
    bool found = false;
    std::vector<std::string> valid;
    visit_fields(out, [&](const char* field, auto& member) {
      valid.emplace_back(field);
      if (found || key != field) return;
      found = true;
      detail::assign_option(member, option, prefix + key);
    });
    if (!found)
      throw Error(Location{option.where.file, option.where.line, prefix + key},
                  "not an option of " + owner + detail::suggest(key, valid));
  }
}

/// Every field of `s` as an option table (for configs, describe and checkpoints).
template <class S>
OptionTable options_table(S& s) {
  OptionTable out;
  visit_fields(s, [&](const char* field, auto& member) { out[field] = Option{nlohmann::json(member), {}}; });
  return out;
}

inline nlohmann::json to_json(const OptionTable& table) {
  auto j = nlohmann::json::object();
  for (const auto& [key, option] : table) j[key] = option.value;
  return j;
}

}  // namespace commercemm
