#pragma once
// Definitions of cli/plot.hpp (see core/linkage.hpp).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <locale>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <commercemm/core/error.hpp>
#include <commercemm/core/jsonl.hpp>
#include <commercemm/cli/plot.hpp>

namespace commercemm::cli {

namespace plot_detail {

/// One line of a chart: (x, y) points, drawn in x order.
struct Series {
  std::string title;
  std::vector<std::pair<double, double>> points;
  bool dashed = false;
};

/// `text` as one word for /bin/sh: single quotes, with ' spelled '\''.
inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

/// `text` as a gnuplot single-quoted string, where a ' is written twice and nothing else is special.
inline std::string gnuplot_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

/// The number at `object[key]`, nothing when the key is absent or null (nlohmann writes NaN
/// and infinities as null, and a diverged step should leave a gap, not stop the plot), or an
/// Error naming the field when it is something else.
inline std::optional<double> optional_number(const nlohmann::json& object, const std::string& key,
                                             const Location& where, const std::string& field) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) throw Error(Location{where.file, where.line, field}, "expected a number");
  return it->get<double>();
}

/// The object at `object[key]`, nullptr when absent, or an Error naming the field.
inline const nlohmann::json* optional_object(const nlohmann::json& object, const std::string& key,
                                             const Location& where, const std::string& field) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  if (!it->is_object()) throw Error(Location{where.file, where.line, field}, "expected an object");
  return &*it;
}

/// Writes every series as one gnuplot data block (blocks are separated by two blank lines and
/// addressed with `index`), so series with different x values need no missing-value markers.
inline void write_blocks(const std::filesystem::path& file, std::vector<Series>& series) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(Location{file.string(), 0, ""}, "cannot create plot data file");
  out.imbue(std::locale::classic());
  out << std::setprecision(12);
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (i > 0) out << "\n\n";
    std::stable_sort(series[i].points.begin(), series[i].points.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    out << "# " << series[i].title << '\n';
    for (const auto& [x, y] : series[i].points) out << x << ' ' << y << '\n';
  }
  out.close();
  if (!out) throw Error(Location{file.string(), 0, ""}, "write failed");
}

inline bool all_positive(const std::vector<Series>& series) {
  for (const auto& s : series) {
    for (const auto& point : s.points) {
      if (!(point.second > 0)) return false;
    }
  }
  return true;
}

/// The gnuplot `plot` arguments drawing `series` from `data`, block i for series i.
inline std::string plot_clauses(const std::filesystem::path& data, const std::vector<Series>& series,
                                const std::string& axes = "x1y1") {
  std::string out;
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (i > 0) out += ", \\\n     ";
    // Points make short runs (a sweep of a few splits, a smoke test) visible as well.
    const bool few = series[i].points.size() <= 30;
    out += gnuplot_quote(data.string()) + " index " + std::to_string(i) + " using 1:2 axes " + axes + " with " +
           (few ? "linespoints pointsize 0.7" : "lines") + " linewidth 2" +
           (series[i].dashed ? " dashtype 2" : "") + " title " + gnuplot_quote(series[i].title);
  }
  return out;
}

/// Script lines choosing a PNG terminal: pngcairo (antialiased) when built in, else libgd's png.
/// noenhanced keeps task names like image_text from turning into subscripts.
inline std::string png_terminal() {
  return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
         "  set terminal pngcairo noenhanced size 1000,600\n"
         "} else {\n"
         "  set terminal png noenhanced size 1000,600\n"
         "}\n";
}

/// Runs gnuplot on `script`; an Error says whether gnuplot is missing or what it reported.
/// `discard` runs first when gnuplot is missing: there is nothing to debug then.
template <class Discard>
void run_gnuplot(const std::filesystem::path& script, const std::filesystem::path& log, Discard&& discard) {
  const std::string command = "gnuplot " + shell_quote(script.string()) + " > " + shell_quote(log.string()) + " 2>&1";
  const int status = std::system(command.c_str());
  if (status == 0) return;
  if (status == -1) throw Error("cannot start a shell to run gnuplot");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    discard();
    throw Error("gnuplot not found on PATH; install it to draw plots (Debian: apt-get install gnuplot-nox)");
  }
  std::ifstream in(log, std::ios::binary);
  std::ostringstream report;
  report << in.rdbuf();
  std::string text = report.str();
  if (text.size() > 4000) text = text.substr(text.size() - 4000);
  throw Error(Location{script.string(), 0, ""}, "gnuplot failed (exit status " +
                                                    std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : status) +
                                                    "; script and data kept for inspection): " + text);
}

}  // namespace plot_detail

COMMERCEMM_DECL std::vector<std::filesystem::path> plot_run(const std::filesystem::path& run_dir) {
  namespace fs = std::filesystem;
  using plot_detail::Series;
  const fs::path metrics_file = run_dir / "metrics.jsonl";
  if (!fs::is_regular_file(metrics_file))
    throw Error(Location{metrics_file.string(), 0, ""}, "missing: plot_run needs the run's metrics.jsonl");

  std::map<std::string, Series> losses;
  Series lr{"learning rate", {}, false};
  std::int64_t records = 0;
  for_each_jsonl_object(metrics_file, [&](const nlohmann::json& object, const Location& where) {
    ++records;
    const auto step = plot_detail::optional_number(object, "step", where, "step");
    if (!step) throw Error(Location{where.file, where.line, "step"}, "missing required number");
    if (const auto value = plot_detail::optional_number(object, "lr", where, "lr")) lr.points.emplace_back(*step, *value);
    for (const char* group : {"loss", "total"}) {
      const nlohmann::json* parts = plot_detail::optional_object(object, group, where, group);
      if (parts == nullptr) continue;
      const bool total = std::string(group) == "total";
      for (const auto& entry : parts->items()) {
        const auto value = plot_detail::optional_number(*parts, entry.key(), where, std::string(group) + "." + entry.key());
        const std::string title = total ? "total " + entry.key() : entry.key();
        Series& series = losses[std::string(group) + "\n" + entry.key()];  // loss lines first, then totals
        series.title = title;
        series.dashed = total;
        if (value) series.points.emplace_back(*step, *value);
      }
    }
  });
  if (records == 0) throw Error(Location{metrics_file.string(), 0, ""}, "no logged steps to plot");

  std::vector<Series> fusion, cost;
  const fs::path sweep_file = run_dir / "fusion_sweep.jsonl";
  const bool have_sweep = fs::exists(sweep_file);
  if (have_sweep) {
    std::map<std::string, Series> recall;
    // The cost keys of the sweep and their titles, in plotting order.
    const std::pair<const char*, const char*> cost_keys[] = {
        {"embed_ms_per_item", "ms per item, all three embeddings (right axis)"},
        {"title_change_ms_per_item", "ms per item, new title (right axis)"},
        {"multimodal_from_sides_ms_per_item", "ms per item, multimodal from sides (right axis)"}};
    std::vector<Series> costs;
    for (const auto& [key, title] : cost_keys) costs.push_back(Series{title, {}, true});
    for_each_jsonl_object(sweep_file, [&](const nlohmann::json& object, const Location& where) {
      const auto split = plot_detail::optional_number(object, "fusion_split", where, "fusion_split");
      if (!split) throw Error(Location{where.file, where.line, "fusion_split"}, "missing required number");
      for (std::size_t k = 0; k < costs.size(); ++k) {
        const char* key = cost_keys[k].first;
        if (const auto value = plot_detail::optional_number(object, key, where, key)) costs[k].points.emplace_back(*split, *value);
      }
      const nlohmann::json* tasks = plot_detail::optional_object(object, "metrics", where, "metrics");
      if (tasks == nullptr) return;
      for (const auto& entry : tasks->items()) {
        const std::string field = "metrics." + entry.key();
        // Tasks scored without recall (categorisation: accuracy) are not on this chart.
        const nlohmann::json* scores = plot_detail::optional_object(*tasks, entry.key(), where, field);
        if (scores == nullptr) continue;
        const auto value = plot_detail::optional_number(*scores, "recall@1", where, field + ".recall@1");
        if (!value) continue;
        Series& series = recall[entry.key()];
        series.title = entry.key();
        series.points.emplace_back(*split, *value);
      }
    });
    for (auto& entry : recall) fusion.push_back(std::move(entry.second));
    for (auto& series : costs)
      if (!series.points.empty()) cost.push_back(std::move(series));
  }

  std::vector<Series> loss_series;
  for (auto& entry : losses) {
    if (!entry.second.points.empty()) loss_series.push_back(std::move(entry.second));
  }
  std::vector<Series> lr_series;
  if (!lr.points.empty()) lr_series.push_back(std::move(lr));

  const fs::path plots = run_dir / "plots";
  std::error_code made;
  fs::create_directories(plots, made);
  if (made) throw Error(Location{plots.string(), 0, ""}, "cannot create plot directory: " + made.message());

  // Temporary names carry the process id, so two plot_run calls on one run do not collide.
  const std::string tag = "." + std::to_string(::getpid());
  std::vector<fs::path> temporaries;
  const auto temporary = [&](const std::string& stem, const char* extension) {
    temporaries.push_back(plots / (stem + tag + extension));
    return temporaries.back();
  };

  std::vector<fs::path> written;
  std::ostringstream script;
  script.imbue(std::locale::classic());
  script << plot_detail::png_terminal() << "set grid\nset key outside right top\n";
  if (!loss_series.empty()) {
    const fs::path data = temporary("losses", ".dat");
    plot_detail::write_blocks(data, loss_series);
    written.push_back(plots / "losses.png");
    script << "set output " << plot_detail::gnuplot_quote(written.back().string()) << "\n"
           << "set title 'Training losses'\nset xlabel 'step'\nset ylabel 'loss'\n"
           << (plot_detail::all_positive(loss_series) ? "set logscale y\n" : "unset logscale y\n")
           << "plot " << plot_detail::plot_clauses(data, loss_series) << "\nunset logscale y\n";
  }
  if (!lr_series.empty()) {
    const fs::path data = temporary("learning_rate", ".dat");
    plot_detail::write_blocks(data, lr_series);
    written.push_back(plots / "learning_rate.png");
    script << "set output " << plot_detail::gnuplot_quote(written.back().string()) << "\n"
           << "set title 'Learning rate'\nset xlabel 'step'\nset ylabel 'learning rate'\nset key off\n"
           << "plot " << plot_detail::plot_clauses(data, lr_series) << "\nset key on\n";
  }
  if (!fusion.empty() || !cost.empty()) {
    const fs::path data = temporary("fusion_split", ".dat");
    const fs::path cost_data = temporary("fusion_cost", ".dat");
    plot_detail::write_blocks(data, fusion);
    plot_detail::write_blocks(cost_data, cost);
    written.push_back(plots / "fusion_split.png");
    script << "set output " << plot_detail::gnuplot_quote(written.back().string()) << "\n"
           << "set title 'Retrieval against fusion split'\nset xlabel 'fusion split'\n"
           << "set ylabel 'recall@1'\nset ytics nomirror\nset key below\n";
    std::string clauses = plot_detail::plot_clauses(data, fusion);
    if (!cost.empty()) {
      script << "set y2label 'embedding ms per item'\nset y2tics\n";
      if (!clauses.empty()) clauses += ", \\\n     ";
      clauses += plot_detail::plot_clauses(cost_data, cost, "x1y2");
    }
    script << "plot " << clauses << "\n";
  }
  if (written.empty()) return written;
  script << "unset output\n";

  const fs::path script_file = temporary("plot", ".gp");
  const fs::path log_file = temporary("gnuplot", ".log");
  {
    std::ofstream out(script_file, std::ios::binary | std::ios::trunc);
    out << script.str();
    out.close();
    if (!out) throw Error(Location{script_file.string(), 0, ""}, "cannot write gnuplot script");
  }
  const auto discard_temporaries = [&] {
    for (const fs::path& file : temporaries) {
      std::error_code ignored;
      fs::remove(file, ignored);
    }
  };
  plot_detail::run_gnuplot(script_file, log_file, discard_temporaries);
  for (const fs::path& png : written) {
    std::error_code ignored;
    if (!fs::is_regular_file(png) || fs::file_size(png, ignored) == 0)
      throw Error(Location{png.string(), 0, ""}, "gnuplot reported success but wrote no image (script: " +
                                                     script_file.string() + ")");
  }
  discard_temporaries();
  return written;
}

}  // namespace commercemm::cli
