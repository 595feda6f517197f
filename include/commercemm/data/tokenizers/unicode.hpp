#pragma once
// The few Unicode operations the tokenizers share, on top of utf8proc: UTF-8 decoding that
// keeps byte offsets, general categories, and file reading with errors that name the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <utf8proc.h>

#include <commercemm/core/error.hpp>

namespace commercemm::data::unicode {

/// One decoded character and where its bytes lie in the text. A byte that does not start
/// valid UTF-8 decodes to `invalid` with size 1, so byte-level code can still keep it.
struct Char {
  std::int32_t cp = 0;
  std::size_t offset = 0;
  std::size_t size = 0;
};
inline constexpr std::int32_t invalid = -1;

inline std::vector<Char> decode(std::string_view text) {
  std::vector<Char> out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                                    static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    if (n <= 0) {
      out.push_back({invalid, i, 1});
      ++i;
    } else {
      out.push_back({cp, i, static_cast<std::size_t>(n)});
      i += static_cast<std::size_t>(n);
    }
  }
  return out;
}

/// Whether all of `text` is valid UTF-8.
inline bool valid(std::string_view text) {
  for (const Char& c : decode(text)) {
    if (c.cp == invalid) return false;
  }
  return true;
}

inline void append(std::string& out, std::int32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

inline std::string encode(const std::vector<std::int32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (std::int32_t cp : cps) append(out, cp);
  return out;
}

inline utf8proc_category_t category(std::int32_t cp) {
  return cp < 0 ? UTF8PROC_CATEGORY_CN : utf8proc_category(cp);
}
inline bool is_letter(std::int32_t cp) {
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
inline bool is_number(std::int32_t cp) {
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}
inline bool is_punctuation_category(std::int32_t cp) {
  const auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}
/// Categories C*: Cc, Cf, Cs, Co and unassigned Cn.
inline bool is_other_category(std::int32_t cp) {
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_CN || c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF ||
         c == UTF8PROC_CATEGORY_CS || c == UTF8PROC_CATEGORY_CO;
}
/// Python's str.isspace(), which str.split() splits on.
inline bool is_python_space(std::int32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x20 || cp == 0x85) return true;
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}
/// JavaScript's \s (WhiteSpace and LineTerminator), which GPT-2's pattern uses in the
/// reference encoder.
inline bool is_js_space(std::int32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0xFEFF || cp == 0x2028 || cp == 0x2029) return true;
  return category(cp) == UTF8PROC_CATEGORY_ZS;
}

/// `text`, which must be valid UTF-8, mapped by utf8proc with `options` (UTF8PROC_STABLE
/// always): UTF8PROC_DECOMPOSE gives NFD, UTF8PROC_COMPOSE NFC, with UTF8PROC_COMPAT NFKD/NFKC.
inline std::string mapped(std::string_view text, int options) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              static_cast<utf8proc_ssize_t>(text.size()), &out,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
  if (n < 0) throw Error(std::string("unicode normalisation failed: ") + utf8proc_errmsg(n));
  std::string result(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  std::free(out);
  return result;
}

/// The canonical decomposition (NFD) of `text`, which must be valid UTF-8.
inline std::string nfd(std::string_view text) { return mapped(text, UTF8PROC_DECOMPOSE); }

/// The whole of a file, or an Error naming it.
/// Reads a whole vocabulary or merges file: GPT-2's largest is 1 MB, so past `limit` bytes a
/// file is refused before it is read (a wrong path to a dataset or a model).
inline std::string read_file(const std::string& path, std::uintmax_t limit = std::uintmax_t{256} << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Location{path, 0, ""}, "cannot open file");
  std::error_code ec;
  if (const auto size = std::filesystem::file_size(path, ec); !ec && size > limit)
    throw Error(Location{path, 0, ""}, "file of " + std::to_string(size) + " bytes, more than " +
                                           std::to_string(limit >> 20) + " MiB: not a vocabulary file");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw Error(Location{path, 0, ""}, "read failed");
  return buf.str();
}

}  // namespace commercemm::data::unicode
