#pragma once
// commercemm reports bad input with one exception type that says where the problem is:
// the file, the line (or record) and the field, so a user can go straight to it.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace commercemm {

/// Where a problem was found. Every part is optional; what is known is printed.
struct Location {
  std::string file;      ///< the file being read ("" when not from a file)
  std::int64_t line = 0; ///< 1-based line or record number (0 when unknown)
  std::string field;     ///< the key or field at fault, dotted for nested ones ("model.image.width")
};

/// The one exception commercemm throws for bad input (configs, manifests, images, vocabularies).
/// what() reads "FILE:LINE: FIELD: message", leaving out the parts that are unknown.
class Error : public std::runtime_error {
 public:
  Error(Location where, const std::string& message)
      : std::runtime_error(format(where, message)), where_(std::move(where)), message_(message) {}
  explicit Error(const std::string& message) : Error(Location{}, message) {}

  const Location& where() const noexcept { return where_; }
  /// The message without the location prefix.
  const std::string& message() const noexcept { return message_; }

 private:
  // Appends piece by piece: "literal" + std::string trips g++ 12's false -Wrestrict at -O3.
  static std::string format(const Location& where, const std::string& message) {
    std::string out;
    if (!where.file.empty()) {
      out += where.file;
      if (where.line > 0) {
        out += ':';
        out += std::to_string(where.line);
      }
      out += ": ";
    } else if (where.line > 0) {
      out += "line ";
      out += std::to_string(where.line);
      out += ": ";
    }
    if (!where.field.empty()) {
      out += where.field;
      out += ": ";
    }
    out += message;
    return out;
  }

  Location where_;
  std::string message_;
};

}  // namespace commercemm
