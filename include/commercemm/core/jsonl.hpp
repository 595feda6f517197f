#pragma once
// JSONL files (one JSON object per line): manifests, metrics.jsonl, fusion_sweep.jsonl.
#include <cstddef>
#include <cstdint>
#include <istream>
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

/// The longest JSONL line read: a manifest record is a few hundred bytes, so a longer line is
/// a broken file (no newlines, a base64 image inlined), refused before it takes the memory.
inline constexpr std::size_t max_jsonl_line_bytes = std::size_t{16} << 20;

namespace detail {
/// std::getline with a bound: false at the end of the input, an Error for a longer line.
inline bool read_bounded_line(std::istream& in, std::string& line, std::size_t limit, const Location& where) {
  line.clear();
  auto* buffer = in.rdbuf();
  for (;;) {
    const auto c = buffer->sbumpc();
    if (c == std::char_traits<char>::eof()) return !line.empty();
    if (c == '\n') return true;
    if (line.size() >= limit)
      throw Error(where, "line longer than " + std::to_string(limit >> 20) + " MiB: not a JSONL record");
    line.push_back(static_cast<char>(c));
  }
}
}  // namespace detail

/// Calls `visit(json_object, location)` for every non-blank line of a JSONL file; a line that
/// is not a JSON object, or longer than `max_line_bytes`, is an Error at FILE:LINE.
template <class Visit>
void for_each_jsonl_object(const std::filesystem::path& file, Visit&& visit,
                           std::size_t max_line_bytes = max_jsonl_line_bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error({file.string(), 0, ""}, "cannot open file");
  std::string text;
  std::int64_t number = 0;
  while (detail::read_bounded_line(in, text, max_line_bytes, {file.string(), number + 1, ""})) {
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
    } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
      throw Error(where, std::string("malformed JSON: ") + e.what());
    }
    if (!object.is_object())
      throw Error(where, std::string("expected a JSON object per line, got ") + json_type_name(object));
    visit(object, where);
  }
}

}  // namespace commercemm
