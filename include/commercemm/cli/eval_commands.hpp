#pragma once
// The `evaluate` and `embed` subcommands of cmm::cli::main<Recipe>.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <commercemm/cli/common.hpp>
#include <commercemm/cli/loaded_model.hpp>
#include <commercemm/cli/report.hpp>
#include <commercemm/eval/downstream.hpp>
#include <commercemm/eval/embedding_costs.hpp>
#include <commercemm/eval/item_embeddings.hpp>
#include <commercemm/eval/npy.hpp>
#include <commercemm/eval/search.hpp>
#include <commercemm/train/metrics_log.hpp>

namespace commercemm::cli {

namespace fs = std::filesystem;

/// The test catalog's items as batches with images and text (for timing embeddings).
inline std::vector<Batch> catalog_batches(const eval::Benchmark& bench,
                                          const std::shared_ptr<const data::Tokenizer>& tokenizer, const Config& config) {
  data::ProductIndex products;
  data::Loader loader(data::image_text_records(bench.test, products), tokenizer,
                      data::loader_options(config, config.eval.batch_size, false));
  std::vector<Batch> batches;
  while (auto batch = loader.next()) batches.push_back(batch->source);
  return batches;
}

/// Scores the tasks with a multimodal side at every fusion split (fusion_sweep.jsonl), beside
/// what an item's embeddings cost there with reuse (eval::EmbeddingCosts, on the test catalog).
/// `sets` (at the evaluated split) lends the text-only and image-only query sets, which no
/// split changes.
template <class Model>
void sweep_fusion_split(LoadedModel<Model>& loaded, const eval::Benchmark& bench,
                        const std::shared_ptr<const data::Tokenizer>& tokenizer, const Config& config,
                        const std::vector<std::string>& tasks, const eval::TaskSets& sets, const fs::path& file) {
  std::vector<std::string> multimodal;
  for (const auto& t : tasks) {
    const auto task = bench.task(t);
    if (task.query == Modality::multimodal || task.gallery == Modality::multimodal) multimodal.push_back(t);
  }
  const auto batches = catalog_batches(bench, tokenizer, config);
  train::MetricsLog sweep(file, -1);
  std::printf("\n%-6s %10s %10s %10s", "split", "all three", "new title", "from sides");
  for (const auto& t : multimodal) std::printf(" %26s", t.c_str());
  std::printf("\n");
  const auto search = search_options(config);
  for (std::int64_t s = 0; s <= config.model.fusion.layers; ++s) {
    const auto embed = embed_function(loaded.model, s, config.train.precision);
    const auto at = eval::embed_benchmark(bench, tokenizer, config, embed, multimodal, false, &sets);
    const auto scores = eval::score_tasks(at, multimodal, search, loaded.head ? &*loaded.head : nullptr, bench.tasks);
    eval::EmbeddingCosts ms;
    if (!batches.empty()) {
      train::AutocastGuard autocast(config.train.precision);
      ms = eval::measure_embedding_costs(loaded.model, batches, FusionSplit{s});
    }
    sweep.write({{"fusion_split", s}, {"joint_layers", config.model.fusion.layers - s},
                 {"embed_ms_per_item", ms.all_three}, {"title_change_ms_per_item", ms.title_change()},
                 {"photo_change_ms_per_item", ms.photo_change()}, {"multimodal_from_sides_ms_per_item", ms.join},
                 {"metrics", scores}});
    std::printf("%-6lld %10.3f %10.3f %10.3f", static_cast<long long>(s), ms.all_three, ms.title_change(), ms.join);
    for (const auto& t : multimodal) {
      if (!scores.contains(t)) {  // the benchmark has no queries for it
        std::printf(" %26s", "-");
        continue;
      }
      const auto& j = scores.at(t);
      std::printf(" %26.4f", j.contains("recall@1") ? j.at("recall@1").template get<double>() : j.value("accuracy", 0.0));
    }
    std::printf("\n");
  }
  std::printf("(ms per test catalog item: all three embeddings from scratch; all three again after a new title, "
              "the photo's side reused; the multimodal one from both sides. Then Recall@1, or accuracy for "
              "categorization. Split s = s fusion layers per modality alone)\n");
}

template <class Recipe> void add_evaluate_command(CLI::App& app) {
  using Model = typename Recipe::Model;
  auto* cmd = app.add_subcommand("evaluate", "Score a checkpoint on the downstream tasks of a benchmark directory");
  auto common = add_common_options(cmd, "runs/evaluate");
  struct Options {
    std::string checkpoint, data;
    std::vector<std::string> tasks;
    std::optional<std::int64_t> split;
    std::string search;
    bool sweep = false, no_reference = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint to evaluate")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", o->data, "Benchmark directory written by `data emoji` (default: the checkpoint's data.dir)");
  cmd->add_option("--task", o->tasks, "Downstream task (repeatable; default: all)");
  cmd->add_option("--fusion-split", o->split, "Fusion layers each modality runs alone (sets eval.fusion_split)");
  cmd->add_option("--search", o->search, "exact, hnsw or ivf_pq (sets eval.search)");
  cmd->add_flag("--sweep-fusion-split", o->sweep,
                "Also score the multimodal tasks at every fusion split (fusion_sweep.jsonl): quality against cost");
  cmd->add_flag("--no-reference", o->no_reference, "Skip the reference rows (untrained model, raw pixels, TF-IDF, model + TF-IDF)");
  cmd->callback([common, o] {
    if (idle_rank("evaluate")) return;
    const train::Checkpoint checkpoint(o->checkpoint);
    refuse_training_overrides(*common, "evaluate", {"precision", "threads", "seed"});
    Config config = with_model_of(resolve_config(*common, checkpoint.config()), checkpoint, *common);
    if (!o->data.empty()) config.data.dir = o->data;
    if (o->split) apply_override(config, "eval.fusion_split=" + std::to_string(*o->split));
    if (!o->search.empty()) apply_override(config, "eval.search=" + o->search);
    train::apply_threads(config.train.threads, config.train.precision);
    const auto bench = eval::Benchmark::load(config.data.dir, o->tasks, config);  // unknown names fail here
    const auto tasks = bench.task_names(o->tasks);  // default: all, with a <kind>_to_product per pair kind
    const auto tokenizer = checkpoint.tokenizer();
    const auto search = search_options(config);
    const fs::path out = common->out;

    const auto split = config.eval.fusion_split;
    const auto& precision = config.train.precision;
    note_cpu_only(config, "evaluate");
    auto loaded = load_model<Model>(checkpoint, config);
    std::fprintf(stderr, "embedding %s's test split with the checkpoint (fusion split %lld)\n", config.data.dir.c_str(),
                 static_cast<long long>(split));
    const auto sets = eval::embed_benchmark(bench, tokenizer, config, embed_function(loaded.model, split, precision),
                                            tasks, !o->no_reference);
    const auto metrics = eval::score_tasks(sets, tasks, search, loaded.head ? &*loaded.head : nullptr, bench.tasks);
    for (const auto& name : tasks)  // a task with nothing to score: asked for, an error; else said
      if (!metrics.contains(name)) {
        const std::string why = "the test split of " + config.data.dir + " has nothing to score it on (no queries or no catalog items)";
        if (!o->tasks.empty()) throw Error(Location{"--task", 0, name}, why);
        std::fprintf(stderr, "note: %s skipped: %s\n", name.c_str(), why.c_str());
      }
    write_json(out / "metrics.json", metrics);

    nlohmann::json references = nlohmann::json::object();
    if (!o->no_reference) {
      std::fprintf(stderr, "scoring the reference rows: the untrained model, raw pixels, trigram TF-IDF, model + TF-IDF\n");
      torch::manual_seed(static_cast<std::uint64_t>(config.train.seed));
      Model untrained(config.model);
      untrained->eval();
      references["untrained"] = eval::score_tasks(
          eval::embed_benchmark(bench, tokenizer, config, embed_function(untrained, split, precision), tasks, false),
          tasks, search, nullptr, bench.tasks);
      references["raw_pixels"] = eval::score_tasks(eval::as_pixels(sets), tasks, search, nullptr, bench.tasks);
      const auto tfidf = eval::as_tfidf(sets, eval::fit_tfidf(bench.train));
      references["trigram_tfidf"] = eval::score_tasks(tfidf, tasks, search, nullptr, bench.tasks);
      if (config.eval.hybrid_weight > 0) {  // the model and TF-IDF summed: what a hybrid search engine ranks by
        std::vector<std::string> text_tasks;  // where TF-IDF has nothing to add, the row would be the model's
        for (const auto& t : tasks)
          if (references["trigram_tfidf"].contains(t)) text_tasks.push_back(t);
        references["model_plus_tfidf"] = eval::score_tasks(eval::as_hybrid(sets, tfidf, config.eval.hybrid_weight),
                                                           text_tasks, search, nullptr, bench.tasks);
      }
      write_json(out / "reference.json", references);
    }
    print_table(metrics, references, bench);

    if (o->sweep) sweep_fusion_split(loaded, bench, tokenizer, config, tasks, sets, out / "fusion_sweep.jsonl");
    std::printf("wrote %s\n", (out / "metrics.json").c_str());
  });
}

template <class Recipe> void add_embed_command(CLI::App& app) {
  using Model = typename Recipe::Model;
  auto* cmd = app.add_subcommand("embed", "Write the embeddings of a manifest's items as .npy files");
  auto common = add_common_options(cmd, "runs/embed");
  struct Options {
    std::string checkpoint, manifest, index, update;
    std::optional<std::int64_t> split;
    bool keep_sides = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--manifest", o->manifest, "Items manifest (JSONL, docs/manifests.md)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--fusion-split", o->split, "Fusion layers each modality runs alone (sets eval.fusion_split)");
  cmd->add_option("--index", o->index, "Also write multimodal.faiss, a FAISS index of the multimodal embeddings "
                                       "to serve: exact, hnsw or ivf_pq (README: Benchmarks)")
      ->check(CLI::IsMember({"exact", "hnsw", "ivf_pq"}));
  cmd->add_flag("--keep-sides", o->keep_sides,
                "Also write sides/: each photo's and title's state below the fusion split, for --update");
  cmd->add_option("--update", o->update,
                  "An earlier `embed --keep-sides` output: reuse its sides, so only new photos and titles run "
                  "their encoder (implies --keep-sides; may equal --out)")
      ->check(CLI::ExistingDirectory);
  cmd->callback([common, o] {
    if (idle_rank("embed")) return;
    const train::Checkpoint checkpoint(o->checkpoint);
    refuse_training_overrides(*common, "embed", {"precision", "threads"});
    Config config = with_model_of(resolve_config(*common, checkpoint.config()), checkpoint, *common);
    if (o->split) apply_override(config, "eval.fusion_split=" + std::to_string(*o->split));
    train::apply_threads(config.train.threads, config.train.precision);
    note_cpu_only(config, "embed");
    auto loaded = load_model<Model>(checkpoint, config);
    const auto items = data::read_items(o->manifest, {.allow_outside_paths = config.data.allow_outside_paths});
    if (items.empty()) throw Error(Location{o->manifest, 0, ""}, "the manifest has no items");
    data::ProductIndex products;
    std::vector<data::Record> records;
    for (const auto& item : items) records.push_back({data::to_example(item, products, item.product_id), {}});
    data::Loader loader(std::move(records), checkpoint.tokenizer(),
                        data::loader_options(config, config.eval.batch_size, false));
    const eval::SideStoreHeader header{eval::model_fingerprint(*loaded.model), config.eval.fusion_split,
                                       config.train.precision};
    std::optional<eval::SideStore> previous;
    if (!o->update.empty()) previous = eval::SideStore::load(fs::path(o->update) / "sides", header);
    const bool keep = o->keep_sides || previous;
    eval::SideStore store(header);
    const auto start = std::chrono::steady_clock::now();
    const auto e = eval::embed_items(loaded.model, loader, FusionSplit{config.eval.fusion_split},
                                     config.train.precision, store, previous ? &*previous : nullptr, keep);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (e.ids.empty()) throw Error(Location{o->manifest, 0, ""}, "no item could be embedded (every image failed to decode)");
    // The index is built before anything is written: one that cannot be built (IVF-PQ on a
    // handful of rows) leaves an earlier output in --out as it was.
    std::optional<eval::InnerProductIndex> index;
    if (!o->index.empty()) {  // row i is line i of ids.txt, as in the .npy files
      auto index_config = config;  // the index kind's knobs come from [eval], as evaluate's do
      index_config.eval.search = o->index;
      validate(index_config);
      index.emplace(e.multimodal, search_options(index_config));
    }
    const fs::path out = common->out;
    fs::create_directories(out);
    // Rows lacking a modality are NaN in that file, so row i is always line i of ids.txt.
    eval::write_npy(out / "image.npy", e.image);
    eval::write_npy(out / "text.npy", e.text);
    eval::write_npy(out / "multimodal.npy", e.multimodal);
    write_atomically(out / "ids.txt", [&](const fs::path& temporary) {
      std::ofstream f(temporary);
      for (const auto& id : e.ids) f << id << '\n';
      f.flush();
      if (!f) throw Error(Location{(out / "ids.txt").string(), 0, ""}, "cannot write");
    });
    if (keep) store.save(out / "sides");  // only the sides these items use: a removed item's go
    else fs::remove_all(out / "sides");    // an earlier output's, for other rows
    const auto counts = [](const eval::SideCounts& c) { return nlohmann::json{{"encoded", c.encoded}, {"reused", c.reused}}; };
    write_json(out / "embed.json", {{"items", e.ids.size()}, {"seconds", seconds},
                                    {"fusion_split", config.eval.fusion_split}, {"update", !o->update.empty()},
                                    {"image_sides", counts(e.image_sides)}, {"text_sides", counts(e.text_sides)}});
    if (index) {
      index->save(out / "multimodal.faiss");
      std::printf("wrote %s (%s)\n", (out / "multimodal.faiss").c_str(), o->index.c_str());
    } else {
      fs::remove(out / "multimodal.faiss");  // an earlier output's, for other rows
    }
    std::printf("wrote %zu items x %lld dims to %s/{image,text,multimodal}.npy and ids.txt in %.1f s "
                "(%lld skipped for bad images); encoders ran for %lld photos and %lld titles, %lld and %lld reused\n",
                e.ids.size(), static_cast<long long>(config.model.embed_dim), out.c_str(), seconds,
                static_cast<long long>(loader.stats().skipped), static_cast<long long>(e.image_sides.encoded),
                static_cast<long long>(e.text_sides.encoded), static_cast<long long>(e.image_sides.reused),
                static_cast<long long>(e.text_sides.reused));
  });
}

}  // namespace commercemm::cli
