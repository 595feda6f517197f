#pragma once
// Shared by the example programs: the embedded emoji-commerce data, a BPE vocabulary learned
// from its training text, a pre-training loop over cmm::train::Step, and held-out retrieval
// scores. (The full app, with checkpoints and the seven downstream tasks, is `commercemm`.)
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/commercemm.hpp>
#include <commercemm/data/loader.hpp>
#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/train/lr_schedule.hpp>

namespace example {
namespace cmm = commercemm;
namespace cd = commercemm::data;

struct Data {
  cd::DatasetSplit train, held_out;  ///< held_out: the test products, never trained on
  std::shared_ptr<const cd::ByteLevelBpe> tokenizer;
};

inline Data load(const std::string& dir, std::int64_t vocab_size) {
  Data d{cd::read_split(dir, "train"), cd::read_split(dir, "test"), nullptr};
  std::vector<std::string> corpus;
  for (const auto& item : d.train.catalog) corpus.push_back(item.text());
  for (const auto& item : d.train.sources)
    if (item.has_text()) corpus.push_back(item.text());
  d.tokenizer = std::make_shared<const cd::ByteLevelBpe>(cd::train_byte_level_bpe(corpus, {vocab_size, 2}));
  return d;
}

inline cd::LoaderOptions loader_options(const cmm::Config& c, std::int64_t batch, bool augment) {
  cd::LoaderOptions o;
  o.batch_size = batch;
  o.max_length = c.model.text.max_length;
  o.image.size = c.model.image.image_size;
  o.seed = static_cast<std::uint64_t>(c.train.seed);
  if (augment) o.augment = cd::Augmentation{};
  return o;
}

/// Pre-trains for config.train.steps steps, printing the losses every `every` steps.
template <class Recipe>
void pretrain(cmm::train::Step<Recipe>& step, const Data& data, const cmm::Config& config, std::int64_t every) {
  at::set_num_threads(static_cast<int>(config.train.threads));
  torch::optim::AdamW optimizer(step.parameters(), torch::optim::AdamWOptions(config.train.lr)
                                                       .weight_decay(config.train.weight_decay));
  const cmm::train::LrSchedule lr{config.train.lr, config.train.warmup_steps, config.train.steps, 0.1};
  cd::ProductIndex products;
  cd::Loader pass_a(cd::image_text_records(data.train, products), data.tokenizer,
                    loader_options(config, config.train.batch_size, true));
  cd::Loader pass_b(cd::balanced_cross_pair_records(data.train, products), data.tokenizer,
                    loader_options(config, config.train.batch_size / 2, false));
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t s = 0; s < config.train.steps; ++s) {
    auto a = pass_a.next();
    if (!a) pass_a.start_epoch(pass_a.epoch() + 1), a = pass_a.next();
    auto b = pass_b.next();
    if (!b) pass_b.start_epoch(pass_b.epoch() + 1), b = pass_b.next();
    cmm::train::set_learning_rate(optimizer, lr.at(s));
    const auto r = step.run(&a->source, &b->source, &b->target, optimizer, s);
    if (s % every == 0 || s + 1 == config.train.steps) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4lld  %6.1fs  split %lld ", static_cast<long long>(s), seconds,
                  static_cast<long long>(r.draw.split.layers_alone));
      for (const auto* pass : {&r.image_text, &r.cross_pair})
        for (const auto& [name, value] : pass->losses) std::printf(" %s %.3f", name.c_str(), value);
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  const auto a = pass_a.stats(), b = pass_b.stats();
  std::printf("loader: %lld image-text pairs and %lld cross pairs delivered, %lld records skipped for bad images\n",
              static_cast<long long>(a.records), static_cast<long long>(b.records),
              static_cast<long long>(a.skipped + b.skipped));
}

/// Recall@1 of image -> text over the held-out products, and of held-out queries -> products
/// (by the multimodal embedding of the catalog).
template <class Model> std::pair<double, double> held_out_recall(Model& model, const Data& data, const cmm::Config& c) {
  model->eval();
  torch::NoGradGuard no_grad;
  auto options = loader_options(c, 64, false);
  options.shuffle = false;
  options.drop_last = false;
  cd::ProductIndex products;
  cd::Loader catalog(cd::image_text_records(data.held_out, products), data.tokenizer, options);
  std::vector<torch::Tensor> images, texts, items, ids;
  while (auto b = catalog.next()) {
    const auto e = model->embed(b->source);
    images.push_back(e.image), texts.push_back(e.text), items.push_back(e.multimodal);
    ids.push_back(b->source.product_ids);
  }
  const auto sim = torch::matmul(torch::cat(images), torch::cat(texts).t());
  const double image_to_text = sim.argmax(1).eq(torch::arange(sim.size(0))).to(torch::kDouble).mean().template item<double>();
  cd::Loader queries(cd::cross_pair_records(data.held_out, products, {cd::PairKind::query}), data.tokenizer, options);
  const auto catalog_items = torch::cat(items), catalog_ids = torch::cat(ids);
  double hits = 0, total = 0;
  while (auto b = queries.next()) {
    const auto q = model->embed(b->source).text;
    const auto best = torch::matmul(q, catalog_items.t()).argmax(1);
    hits += catalog_ids.index_select(0, best).eq(b->source.product_ids).sum().template item<double>();
    total += static_cast<double>(q.size(0));
  }
  model->train();
  return {image_to_text, hits / std::max(total, 1.0)};
}

}  // namespace example
