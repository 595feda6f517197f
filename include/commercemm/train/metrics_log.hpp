#pragma once
// metrics.jsonl: one JSON object per logged step, appended and flushed as training goes, so a
// killed run keeps every line it logged and a resumed run continues the same file.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/atomic_file.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/core/jsonl.hpp>

namespace commercemm::train {

class MetricsLog {
 public:
  MetricsLog() = default;
  /// Opens `file` for appending. `resume_step` >= 0 first drops the lines a killed run wrote
  /// after its last checkpoint (those with "step" > resume_step), so the curve has no
  /// duplicates; a fresh run (-1) starts the file over.
  MetricsLog(const std::filesystem::path& file, std::int64_t resume_step) : file_(file) {
    std::filesystem::create_directories(file.parent_path().empty() ? "." : file.parent_path());
    std::vector<std::string> kept;
    if (resume_step >= 0 && std::filesystem::exists(file)) {
      std::ifstream in(file);
      std::string line;
      while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.contains("step")) continue;  // a line cut by the kill
        if (j["step"].get<std::int64_t>() <= resume_step) kept.push_back(line);
      }
    }
    // Rewritten whole or not at all: a kill during a resume must not lose the kept lines.
    write_atomically(file, [&](const std::filesystem::path& temporary) {
      std::ofstream out(temporary, std::ios::trunc);
      for (const auto& line : kept) out << line << '\n';
      if (!out.flush()) throw Error(Location{file.string(), 0, ""}, "cannot write the metrics file");
    });
    out_.open(file, std::ios::app);
    if (!out_) throw Error(Location{file.string(), 0, ""}, "cannot write the metrics file");
  }

  bool is_open() const { return out_.is_open(); }
  const std::filesystem::path& file() const { return file_; }

  void write(const nlohmann::json& record) {
    if (!out_.is_open()) return;
    out_ << record.dump() << '\n';
    if (!out_.flush()) throw Error(Location{file_.string(), 0, ""}, "cannot write (disk full?)");
  }

 private:
  std::filesystem::path file_;
  std::ofstream out_;
};

/// Reads a JSONL file; a malformed line is an error naming the file and line.
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& file) {
  std::vector<nlohmann::json> out;
  for_each_jsonl_object(file, [&](const nlohmann::json& object, const Location&) { out.push_back(object); });
  return out;
}

}  // namespace commercemm::train
