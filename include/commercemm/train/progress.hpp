#pragma once
// Progress of a long loop: a redrawn bar when stderr is a terminal, plain periodic lines when
// it is not (logs, CI), so both a person and a log file read it well.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace commercemm::train {

class Progress {
 public:
  /// `every`: steps between plain lines when not on a terminal.
  Progress(std::string label, std::int64_t total, std::int64_t every, std::int64_t first = 0)
      : label_(std::move(label)), total_(total), every_(std::max<std::int64_t>(every, 1)), first_(first),
        terminal_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

  /// Reports that `done` steps are complete; `note` is a short status (losses, rate).
  void update(std::int64_t done, const std::string& note) {
    const double seconds = elapsed();
    const double per_step = done > first_ ? seconds / static_cast<double>(done - first_) : 0.0;
    const double eta = per_step * static_cast<double>(total_ - done);
    if (terminal_) {
      constexpr int width = 24;
      const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
      std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s eta %s  %s\033[K", label_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total_), rate(per_step).c_str(), clock(eta).c_str(), note.c_str());
      if (done >= total_) std::fputc('\n', stderr);
    } else if (done % every_ == 0 || done >= total_) {
      std::fprintf(stderr, "%s %lld/%lld  %s  eta %s  %s\n", label_.c_str(), static_cast<long long>(done),
                   static_cast<long long>(total_), rate(per_step).c_str(), clock(eta).c_str(), note.c_str());
    }
    std::fflush(stderr);
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  static std::string rate(double per_step) {
    char text[32];
    std::snprintf(text, sizeof text, per_step >= 1.0 ? "%.2f s/step" : "%.0f ms/step",
                  per_step >= 1.0 ? per_step : per_step * 1000.0);
    return text;
  }
  static std::string clock(double seconds) {
    const auto s = static_cast<long long>(seconds + 0.5);
    char text[32];
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    return text;
  }

  std::string label_;
  std::int64_t total_, every_, first_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace commercemm::train
