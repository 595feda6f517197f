#pragma once
// JSONL files (one JSON object per line): manifests, metrics.jsonl, fusion_sweep.jsonl.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>

namespace commercemm {

inline const char* json_type_name(const nlohmann::json& value) {
  if (value.is_string()) return "a string";
  if (value.is_number()) return "a number";
  if (value.is_boolean()) return "a boolean";
  if (value.is_null()) return "null";
  if (value.is_array()) return "an array";
  return "an object";
}

/// Calls `visit(json_object, location)` for every non-blank line of a JSONL file; a line that
/// is not a JSON object is an Error at FILE:LINE.
template <class Visit>
void for_each_jsonl_object(const std::filesystem::path& file, Visit&& visit) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error({file.string(), 0, ""}, "cannot open file");
  std::string text;
  std::int64_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (number == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 BOM
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const Location where{file.string(), number, ""};
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      // e.byte is the 1-based column within this line; the what() text repeats it.
      throw Error(where, "malformed JSON at column " + std::to_string(e.byte) + ": " + e.what());
    }
    if (!object.is_object())
      throw Error(where, std::string("expected a JSON object per line, got ") + json_type_name(object));
    visit(object, where);
  }
}

}  // namespace commercemm
