#pragma once
// Fine-tuning a pre-trained model for one downstream task on the benchmark's train split:
//   categorization: a new linear head on the task's embedding (cosine classifier, logits =
//     linear(e) / 0.05), cross-entropy, the networks at finetune.lr and the head at head_lr;
//   retrieval: the task's own contrastive objective (symmetric InfoNCE, temperature 0.05,
//     same-product keys masked) between its query and gallery embeddings.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/eval/downstream.hpp>
#include <commercemm/losses/contrastive.hpp>
#include <commercemm/train/autocast.hpp>
#include <commercemm/train/lr_schedule.hpp>
#include <commercemm/train/metrics_log.hpp>
#include <commercemm/train/progress.hpp>
#include <commercemm/train/trainer.hpp>

namespace commercemm::train {

/// Starts a head at the nearest-centroid classifier of the model's current embeddings (rows =
/// L2-normalised class centroids, bias 0): fine-tuning then begins at the frozen-feature score
/// rather than at chance, which a few hundred steps on a hundred classes would not leave.
template <class Model>
void init_from_centroids(Model& model, eval::FinetunedHead& head, const eval::DownstreamTask& task,
                         const eval::Benchmark& bench, std::shared_ptr<const data::Tokenizer> tokenizer,
                         const Config& config) {
  constexpr std::int64_t fashion_images = 1000;  // plenty for ten centroids
  torch::NoGradGuard no_grad;
  model->eval();
  const eval::EmbedFunction embed = [&model, &config](const Batch& b) {
    return model->embed(b, FusionSplit{config.eval.fusion_split});
  };
  torch::Tensor features, labels;
  if (task.label == "fashion_mnist") {
    const auto& f = *bench.fashion_train;
    const auto n = std::min(fashion_images, f.images.size(0));
    const auto set = eval::detail::embed_fashion({f.images.slice(0, 0, n), f.labels.slice(0, 0, n)}, config, embed, false);
    features = set.image, labels = set.labels;
  } else {
    data::ProductIndex products;
    const auto set = eval::embed_records(data::image_text_records(bench.train, products), bench.train.catalog,
                                         tokenizer, config, embed, false);
    features = set.get(task.query), labels = eval::labels_of(set, task.label, head.labels);
  }
  head.linear->weight.copy_(eval::class_centroids(features, labels, head.labels.size()));
  head.linear->bias.zero_();
  model->train();
}

/// Fine-tunes `model` for `task` (finetune.* of `config`); returns the head of a
/// categorization task. Each logged step goes to `log` as {"step", "lr", "loss": {task: v}}.
template <class Model>
std::optional<eval::FinetunedHead> finetune(Model& model, const eval::DownstreamTask& task, const eval::Benchmark& bench,
                                            std::shared_ptr<const data::Tokenizer> tokenizer, const Config& config,
                                            MetricsLog& log) {
  const auto& f = config.finetune;
  const FusionSplit split{config.eval.fusion_split};  // train at the split it is scored at
  const bool categorization = task.kind == eval::TaskKind::categorization;
  const bool fashion = task.label == "fashion_mnist";
  std::optional<eval::FinetunedHead> head;
  if (categorization) {
    head.emplace();
    head->task = task.name;
    if (fashion) {
      for (const auto& c : data::fashion_mnist_classes) head->labels.add(std::string(c));
    } else {
      for (const auto& item : bench.train.catalog) head->labels.add(eval::item_label(item, task.label));
    }
    head->linear = torch::nn::Linear(config.model.embed_dim, head->labels.size());
    init_from_centroids(model, *head, task, bench, tokenizer, config);
  }

  // Two groups: the pre-trained networks (with the usual decay exclusions) and the new head.
  auto optimizer = make_adamw({model.ptr().get()}, f.lr, config.train.weight_decay);
  std::vector<double> base_rates{f.lr, f.lr};
  if (head) {
    optimizer->add_param_group(torch::optim::OptimizerParamGroup(
        head->linear->parameters(), std::make_unique<torch::optim::AdamWOptions>(
                                        torch::optim::AdamWOptions(f.head_lr).weight_decay(config.train.weight_decay))));
    base_rates.push_back(f.head_lr);
  }
  const LrSchedule schedule{1.0, f.warmup_steps, f.steps, 0.1};

  data::ProductIndex products;
  std::unique_ptr<data::Loader> loader;
  if (!fashion) {
    auto records = task.pairs ? data::cross_pair_records(bench.train, products, {*task.pairs})
                              : data::image_text_records(bench.train, products);
    if (records.empty()) throw Error(Location{"", 0, task.name}, "the train split has no examples for this task");
    loader = std::make_unique<data::Loader>(std::move(records), tokenizer,
                                            data::loader_options(config, f.batch_size, true));
  }
  std::mt19937_64 rng(static_cast<std::uint64_t>(config.train.seed));
  auto next = [&] { return loader->next_cycling(); };

  model->train();
  Progress progress("finetune " + task.name, f.steps, config.train.log_every);
  double window = 0;
  std::int64_t window_steps = 0;
  for (std::int64_t step = 0; step < f.steps; ++step) {
    const double factor = schedule.at(step);
    for (std::size_t g = 0; g < optimizer->param_groups().size(); ++g)
      static_cast<torch::optim::AdamWOptions&>(optimizer->param_groups()[g].options()).lr(base_rates[g] * factor);
    optimizer->zero_grad();
    torch::Tensor loss;
    {
      AutocastGuard autocast(config.train.precision);
      if (fashion) {
        const auto& images = bench.fashion_train->images;
        std::uniform_int_distribution<std::int64_t> pick(0, images.size(0) - 1);
        std::vector<std::int64_t> rows(static_cast<std::size_t>(f.batch_size));
        for (auto& r : rows) r = pick(rng);
        const auto index = torch::tensor(rows, torch::kLong);
        data::ImageOptions options;
        options.size = config.model.image.image_size;
        Batch b;
        b.images = data::fashion_mnist_to_model(images.index_select(0, index), options);
        const auto logits = head->linear(model->embed(b, split).image) / eval::FinetunedHead::temperature;
        loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), bench.fashion_train->labels.index_select(0, index));
      } else if (categorization) {
        const auto batch = next();
        std::vector<std::int64_t> labels;
        for (const auto& id : batch.source.item_ids)
          labels.push_back(head->labels.find(eval::item_label(*bench.train.catalog.find(id), task.label)));
        const auto e = model->embed(batch.source, split).get(task.query);
        const auto logits = head->linear(e) / eval::FinetunedHead::temperature;
        loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), torch::tensor(labels, torch::kLong));
      } else {
        const auto batch = next();
        torch::Tensor queries, keys;
        if (task.pairs) {
          queries = model->embed(batch.source, split).get(task.query);
          keys = model->embed(batch.target, split).get(task.gallery);
        } else {
          const auto e = model->embed(batch.source, split);
          queries = e.get(task.query), keys = e.get(task.gallery);
        }
        const auto products_of = batch.source.product_ids;
        loss = losses::symmetric_info_nce(queries.to(torch::kFloat32), keys.to(torch::kFloat32),
                                          torch::tensor(eval::FinetunedHead::temperature), {products_of, products_of, {}})
                   .loss;
      }
    }
    const double value = loss.template item<double>();
    if (!std::isfinite(value))
      throw Error(Location{"", 0, "finetune"}, "loss is " + std::to_string(value) + " at step " + std::to_string(step));
    loss.backward();
    if (config.train.grad_clip > 0) {
      std::vector<torch::Tensor> params;
      for (auto& group : optimizer->param_groups())
        for (auto& p : group.params()) params.push_back(p);
      torch::nn::utils::clip_grad_norm_(params, config.train.grad_clip);
    }
    optimizer->step();
    window += value, ++window_steps;
    if ((step + 1) % config.train.log_every == 0 || step + 1 == f.steps) {
      const double mean = window / static_cast<double>(window_steps);
      log.write({{"step", step + 1}, {"lr", f.lr * factor}, {"loss", {{task.name, mean}}}});
      char note[64];
      std::snprintf(note, sizeof note, "loss %.3f", mean);
      progress.update(step + 1, note);
      window = 0, window_steps = 0;
    }
  }
  model->eval();
  return head;
}

}  // namespace commercemm::train
