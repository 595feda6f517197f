// Run charts through gnuplot: real PNG files from small logs, and errors at FILE:LINE.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <commercemm/cli/plot.hpp>
#include <commercemm/core/error.hpp>

namespace fs = std::filesystem;
using commercemm::cli::plot_run;

namespace {

struct RunDir {
  fs::path path;
  RunDir() {
    // A quote and a space in the name check the shell and gnuplot quoting.
    static int count = 0;
    path = fs::temp_directory_path() /
           ("commercemm plot's run " + std::to_string(::getpid()) + "-" + std::to_string(count++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~RunDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(path / name, std::ios::binary | std::ios::trunc);
    out << text;
  }
};

std::string metrics_lines(int steps) {
  std::string out;
  for (int s = 1; s <= steps; ++s) {
    const double step = 10.0 * s;
    out += "{\"step\": " + std::to_string(10 * s) + ", \"lr\": " + std::to_string(1e-3 * std::min(1.0, s / 5.0)) +
           ", \"samples_per_s\": 80.5, \"loss\": {\"mlm\": " + std::to_string(5.0 * std::exp(-step / 300)) +
           ", \"itc\": " + std::to_string(3.9 - step / 200) + ", \"image_text\": " + std::to_string(2.0 / s) +
           "}, \"total\": {\"image_text\": " + std::to_string(4.2 * std::exp(-step / 400)) +
           ", \"cross_pair\": " + std::to_string(3.3 * std::exp(-step / 500)) + "}, \"epoch\": 0}\n";
  }
  return out;
}

std::string sweep_lines() {
  std::string out;
  for (int split = 0; split <= 6; split += 2) {
    const double r = 0.1 + 0.05 * split;
    out += "{\"fusion_split\": " + std::to_string(split) + ", \"embed_ms_per_item\": " + std::to_string(1.0 + 0.3 * split) +
           ", \"title_change_ms_per_item\": " + std::to_string(0.6 - 0.05 * split) +
           ", \"multimodal_from_sides_ms_per_item\": " + std::to_string(0.3 - 0.05 * split) +
           ", \"metrics\": {\"query_to_product\": {\"recall@1\": " + std::to_string(r) + ", \"recall@5\": 0.5, "
           "\"recall@10\": 0.6, \"mrr\": 0.3}, \"image_to_product\": {\"recall@1\": " + std::to_string(r / 2) +
           ", \"mrr\": 0.2}, \"categorization\": {\"accuracy\": 0.8}}}\n";
  }
  return out;
}

void check_png(const fs::path& file) {
  BOOST_TEST_INFO("file: " << file);
  BOOST_REQUIRE(fs::is_regular_file(file));
  BOOST_TEST(fs::file_size(file) > 1024u);
  std::ifstream in(file, std::ios::binary);
  char signature[8] = {};
  in.read(signature, 8);
  BOOST_TEST(std::string(signature, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
}

bool gnuplot_available() { return std::system("gnuplot --version >/dev/null 2>&1") == 0; }
bool tools_optional() { return std::getenv("COMMERCEMM_OPTIONAL_TOOLS") && std::string(std::getenv("COMMERCEMM_OPTIONAL_TOOLS")) == "1"; }

}  // namespace

BOOST_AUTO_TEST_SUITE(plot)

BOOST_AUTO_TEST_CASE(writes_loss_lr_and_fusion_charts) {
  if (!gnuplot_available()) {  // scripts/install-deps installs it: missing is a failure unless opted out
    BOOST_REQUIRE_MESSAGE(tools_optional(), "gnuplot is not installed (Debian: gnuplot-nox; scripts/install-deps); "
                                            "COMMERCEMM_OPTIONAL_TOOLS=1 skips this test");
    BOOST_WARN_MESSAGE(false, "skipped: gnuplot is not installed");
    return;
  }
  RunDir run;
  run.write("metrics.jsonl", metrics_lines(40));
  run.write("fusion_sweep.jsonl", sweep_lines());
  const std::vector<fs::path> written = plot_run(run.path);
  const std::vector<fs::path> expected = {run.path / "plots" / "losses.png", run.path / "plots" / "learning_rate.png",
                                          run.path / "plots" / "fusion_split.png"};
  BOOST_TEST(written == expected, boost::test_tools::per_element());
  for (const fs::path& file : expected) check_png(file);
  // The temporary data and script files are gone; only the charts stay.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(run.path / "plots")) ++entries;
  BOOST_TEST(entries == 3u);

  // Without a sweep there is no fusion chart; a few steps and a non-positive loss still plot.
  RunDir short_run;
  short_run.write("metrics.jsonl",
                  "{\"step\": 1, \"lr\": 0.0, \"loss\": {\"kd\": -0.5, \"mlm\": null}}\n\n"
                  "{\"step\": 2, \"lr\": 1e-4, \"loss\": {\"kd\": 0.25, \"mlm\": 4.0}}\n");
  const auto few = plot_run(short_run.path);
  BOOST_TEST(few.size() == 2u);
  for (const fs::path& file : few) check_png(file);
}

BOOST_AUTO_TEST_CASE(errors_name_file_and_line) {
  RunDir run;
  try {
    plot_run(run.path);
    BOOST_FAIL("expected an error for a missing metrics.jsonl");
  } catch (const commercemm::Error& e) {
    BOOST_TEST(std::string(e.what()).find("metrics.jsonl") != std::string::npos);
  }

  run.write("metrics.jsonl", metrics_lines(2) + "{\"step\": 30, \"loss\": {\"mlm\": 4.1,\n" + metrics_lines(1));
  try {
    plot_run(run.path);
    BOOST_FAIL("expected an error for a malformed line");
  } catch (const commercemm::Error& e) {
    BOOST_TEST_INFO("message: " << e.what());
    BOOST_TEST(std::string(e.what()).find("metrics.jsonl:3") != std::string::npos);
  }

  run.write("metrics.jsonl", metrics_lines(1) + "{\"step\": 20, \"loss\": {\"mlm\": \"high\"}}\n");
  try {
    plot_run(run.path);
    BOOST_FAIL("expected an error for a non-numeric loss");
  } catch (const commercemm::Error& e) {
    BOOST_TEST_INFO("message: " << e.what());
    BOOST_TEST(std::string(e.what()).find("metrics.jsonl:2: loss.mlm") != std::string::npos);
  }

  run.write("metrics.jsonl", metrics_lines(2));
  run.write("fusion_sweep.jsonl", "{\"embed_ms_per_item\": 1.0}\n");
  try {
    plot_run(run.path);
    BOOST_FAIL("expected an error for a sweep line without fusion_split");
  } catch (const commercemm::Error& e) {
    BOOST_TEST_INFO("message: " << e.what());
    BOOST_TEST(std::string(e.what()).find("fusion_sweep.jsonl:1: fusion_split") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
