#pragma once
// `commercemm data ...`: the dataset tools. `data emoji` builds the emoji-commerce benchmark.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "emoji_benchmark.hpp"

namespace commercemm::cli {

/// Registers `data emoji --packages DIR --catalog VENDOR --views V[,V...] --locales L[,L...]
/// --out DIR` (and its tuning options) on `app`. The build runs as the subcommand's callback;
/// bad input surfaces as commercemm::Error from app.parse().
inline void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Build benchmark datasets");
  data->require_subcommand(1);
  auto* emoji = data->add_subcommand(
      "emoji",
      "Build the emoji-commerce benchmark from the npm packages emoji-datasource-VENDOR and emojibase-data "
      "(fetch them with scripts/fetch-packages DIR)");
  auto options = std::make_shared<data::EmojiBenchmarkOptions>();
  emoji->add_option("--packages", options->packages, "Directory holding the unpacked npm packages")
      ->required()
      ->check(CLI::ExistingDirectory);
  emoji->add_option("--catalog", options->catalog_vendor, "Vendor whose artwork is the catalog image")
      ->required();
  emoji->add_option("--views", options->view_vendors, "Other vendors: image views and post images (comma-separated)")
      ->required()
      ->delimiter(',');
  emoji->add_option("--locales", options->locales,
                    "Locales of query and post text, comma-separated ('all' = every emojibase-data locale)")
      ->required()
      ->delimiter(',');
  emoji->add_option("--out", options->out, "Benchmark directory to write (created; a previous build is replaced)")
      ->required();
  emoji->add_option("--catalog-locale", options->catalog_locale, "Language of catalog titles and tags")
      ->capture_default_str();
  emoji->add_option("--seed", options->seed, "Seed for splits, subsets and sampled texts")->capture_default_str();
  emoji->add_option("--val-fraction", options->val_fraction, "Share of products held out for validation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  emoji->add_option("--test-fraction", options->test_fraction, "Share of products held out for testing")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  emoji->add_option("--max-products", options->max_products,
                    "Keep at most this many products, spread evenly over subcategories (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  emoji->add_option("--posts-per-view", options->posts_per_view, "Posts per product and view vendor")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  emoji->add_option("--max-query-tags", options->max_query_tags, "A tags query has 1..N tags")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  emoji->add_option("--queries-per-locale", options->queries_per_locale,
                    "2: a label and a tags query per locale; 1: one of them, chosen by a seeded coin")
      ->capture_default_str()
      ->check(CLI::Range(1, 2));
  emoji->add_option("--image-size", options->image_size, "Artwork size folder to read (img/VENDOR/SIZE)")
      ->capture_default_str();
  emoji->callback([options] {
    const auto report = data::build_emoji_benchmark(*options);
    std::cout << "emoji-commerce benchmark written to " << options->out.string() << "\n";
    report.print(std::cout);
  });
}

}  // namespace commercemm::cli
