#pragma once
// cmm::train::Trainer<Recipe>: the pre-training loop around Step<Recipe>. It owns the
// loaders (pass A: the catalog's image-text pairs; pass B: cross pairs, kinds balanced), AdamW
// with the usual weight-decay exclusions, warm-up + cosine learning rate, the weights' moving
// average (train.ema_decay), metrics.jsonl, progress, and checkpoints from which --resume
// continues step for step.
//
// Distributed (a dist::World joined before, so dist::current() is set): train.batch_size and
// the cross-pair batch are the global batches, each rank's loaders read its shard, rank 0's
// initial weights are copied to all, the ranks check they run the same recipe and config,
// they agree on stopping, and rank 0 alone writes metrics, progress and checkpoints.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/data/loader.hpp>
#include <commercemm/dist/communicator.hpp>
#include <commercemm/dist/consistency.hpp>
#include <commercemm/dist/environment.hpp>
#include <commercemm/schedules/schedule.hpp>
#include <commercemm/train/checkpoint.hpp>
#include <commercemm/train/device.hpp>
#include <commercemm/train/lr_schedule.hpp>
#include <commercemm/train/metrics_log.hpp>
#include <commercemm/train/pretrained.hpp>
#include <commercemm/train/progress.hpp>
#include <commercemm/train/step.hpp>
#include <commercemm/train/tokenizer_setup.hpp>
#include <commercemm/train/weight_average.hpp>

namespace commercemm::train {

/// Set by SIGINT/SIGTERM (see install_stop_handlers): the loop checkpoints and returns.
inline std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}
/// The first SIGINT/SIGTERM asks the loop to stop after its step (and checkpoint); a second
/// one ends the process at once, as the handler restores the default action.
inline void install_stop_handlers() {
  stop_requested().store(false);  // the static exists before any signal arrives
  auto handler = [](int signal) {
    stop_requested().store(true);
    std::signal(signal, SIG_DFL);
  };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

/// Weight decay applies to weight matrices only: biases, norm scales, temperatures (all 1-D)
/// and the learned CLS/mask tokens, position tables and modality-type rows are excluded.
inline bool decays(const std::string& name, const torch::Tensor& parameter) {
  if (parameter.dim() < 2) return false;
  for (const char* part : {"cls_token", "mask_token", "positions", "modality_type"})
    if (name.find(part) != std::string::npos) return false;
  return true;
}

/// AdamW over the named modules' parameters in two groups: with and without weight decay.
inline std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::nn::Module*>& modules, double lr,
                                                       double weight_decay) {
  std::vector<torch::Tensor> with, without;
  for (auto* module : modules)
    for (const auto& p : module->named_parameters())
      if (p.value().requires_grad()) (decays(p.key(), p.value()) ? with : without).push_back(p.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(with, std::make_unique<torch::optim::AdamWOptions>(
                                torch::optim::AdamWOptions(lr).weight_decay(weight_decay)));
  groups.emplace_back(without, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(lr).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(lr));
}

template <class Recipe>
class Trainer {
 public:
  using Model = typename Recipe::Model;

  /// `config.model.text.vocab_size` is set from the tokenizer. `out` (may be empty) receives
  /// metrics.jsonl and checkpoints/. The encoders start from model.image.init and
  /// model.text.init (train/pretrained.hpp) unless `pretrained` is false (a run about to be
  /// resumed takes its weights from the checkpoint).
  Trainer(Config config, std::shared_ptr<const data::Tokenizer> tokenizer, const data::DatasetSplit& train,
          std::filesystem::path out = {}, bool pretrained = true)
      : config_(with_vocabulary(std::move(config), *tokenizer)),
        tokenizer_(std::move(tokenizer)),
        out_(std::move(out)),
        checkpoints_(out_ / "checkpoints", config_.train.keep_checkpoints),
        device_(resolve_device(config_.train.device)) {
    auto* comm = dist::current();
    const int ranks = comm ? comm->size() : 1;
    apply_threads(config_.train.threads, config_.train.precision, comm ? dist::environment().local_world_size : 1);
    torch::manual_seed(static_cast<std::uint64_t>(config_.train.seed));
    Model model(config_.model);
    if (pretrained) load_pretrained_encoders(model, config_.model, cls_id_of(*tokenizer_));
    model->to(device_);
    step_ = std::make_unique<Step<Recipe>>(model, config_, tokenizer_->special_tokens());
    config_ = step_->config();  // every task and schedule option resolved, for config.json and checkpoints
    optimizer_ = make_adamw({step_->model().ptr().get(), step_->heads_ptr().get()}, config_.train.lr,
                            config_.train.weight_decay);
    auto sharded = [&](std::int64_t rows, const char* key, bool training) {
      if (rows % ranks != 0)
        throw Error(Location{"", 0, key}, "the global batch of " + std::to_string(rows) + " does not divide among " +
                                               std::to_string(ranks) + " ranks (WORLD_SIZE)");
      if (rows % (ranks * config_.train.accumulate) != 0)
        throw Error(Location{"", 0, key}, "the global batch of " + std::to_string(rows) + " does not divide into " +
                                               std::to_string(ranks) + " ranks x train.accumulate = " +
                                               std::to_string(config_.train.accumulate) + " micro-batches");
      auto options = data::loader_options(config_, rows, training);
      options.shard = comm ? comm->rank() : 0;
      options.shards = ranks;
      return options;
    };
    if (step_->runs(Pass::image_text))
      image_text_ = std::make_unique<data::Loader>(data::image_text_records(train, products_), tokenizer_,
                                                   sharded(config_.train.batch_size, "train.batch_size", true));
    if (step_->runs(Pass::cross_pair)) {
      const auto rows = config_.train.cross_pair_batch_size > 0 ? config_.train.cross_pair_batch_size
                                                                : std::max<std::int64_t>(2, config_.train.batch_size / 2);
      auto options = sharded(rows, config_.train.cross_pair_batch_size > 0 ? "train.cross_pair_batch_size"
                                                                           : "train.batch_size (pass B takes half)", false);
      options.shuffle = true;
      options.drop_last = true;
      const auto sampling = config_.data.pair_sampling == "products" ? data::PairSampling::products
                                                                     : data::PairSampling::pairs;
      auto records = data::mixed_cross_pair_records(train, products_, config_.data.pair_kinds,
                                                    static_cast<std::uint64_t>(config_.train.seed), sampling);
      cross_pair_ = std::make_unique<data::Loader>(std::move(records), tokenizer_, options);
    }
    if (!cross_pair_ && !config_.data.pair_kinds.empty()) {
      const auto& first = config_.data.pair_kinds.begin()->second.where;
      throw Error(Location{first.file, first.line, "data.pair_kinds"},
                  "this recipe has no cross-pair task (or all have weight 0): the weights would do nothing");
    }
    if (!cross_pair_ && config_.train.cross_pair_batch_size != TrainConfig{}.cross_pair_batch_size)
      throw Error(Location{"", 0, "train.cross_pair_batch_size"},
                  "this recipe has no cross-pair task (or all have weight 0): pass B's rows would do nothing");
    if (!cross_pair_ && config_.data.pair_sampling != DataConfig{}.pair_sampling)
      throw Error(Location{"", 0, "data.pair_sampling"},
                  "this recipe has no cross-pair task (or all have weight 0): the sampling would do nothing");
    if (comm) {
      // Same recipe (its type), config and vocabulary everywhere; then rank 0's weights.
      dist::check_same(*comm, "recipe or config",
                       dist::fingerprint(std::string(typeid(Recipe).name()) + to_json(config_).dump() +
                                         std::to_string(tokenizer_->vocab_size())));
      dist::broadcast_from_rank0(*comm, *step_->model());
      dist::broadcast_from_rank0(*comm, step_->heads());
      if (auto teacher = step_->teacher_module()) dist::broadcast_from_rank0(*comm, *teacher);
    }
    if (config_.train.ema_decay > 0) {
      average_ = make_average();
      average_pairs_ = nn::MovingAverage(*average_, *step_->model(), nn::MovingAverage::Buffers::copied);
      average_pairs_.copy();
      step_->set_momentum_model(average_);  // the momentum model of MoCo keys and distillation
    }
  }

  const Config& config() const { return config_; }
  Step<Recipe>& step() { return *step_; }
  Model& model() { return step_->model(); }
  /// The weights' moving average (train.ema_decay); a null holder when the run keeps none.
  Model& average() { return average_; }
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  std::int64_t steps_done() const { return state_.step; }
  /// Rank 0 writes the run's outputs (every process in a single-process run).
  bool writes() const { return dist::rank() == 0; }
  /// Whether the last run() ended early because a rank was asked to stop (SIGINT/SIGTERM).
  bool stopped() const { return stopped_; }
  const torch::Device& device() const { return device_; }
  const std::shared_ptr<const data::Tokenizer>& tokenizer() const { return tokenizer_; }

  /// Continues from `checkpoint`: weights, optimizer moments, loader positions and RNG.
  void resume(const Checkpoint& checkpoint) {
    if (checkpoint.state().kind != "pretrain")
      throw Error(Location{checkpoint.path().string(), 0, "state.kind"}, "not a pre-training checkpoint");
    checkpoint.load("model", *step_->model());
    if (average_) checkpoint.load("average", *average_);
    checkpoint.load("heads", step_->heads());
    if (auto teacher = step_->teacher_module()) checkpoint.load("teacher", *teacher);  // an EMA teacher must be there
    checkpoint.load("optimizer", *optimizer_);
    checkpoint.restore_rng();
    state_ = checkpoint.state();
    if (image_text_) image_text_->start_epoch(state_.image_text.epoch, state_.image_text.batch);
    if (cross_pair_) cross_pair_->start_epoch(state_.cross_pair.epoch, state_.cross_pair.batch);
    resumed_ = true;
  }

  /// Trains until `until` steps are done (default: train.steps) or a stop is requested;
  /// checkpoints every train.checkpoint_every steps and at the end. Returns the step results.
  std::vector<StepResult> run(std::int64_t until = -1) {
    const std::int64_t total = config_.train.steps;
    if (until < 0) until = total;
    until = std::min(until, total);
    const LrSchedule lr{config_.train.lr, config_.train.warmup_steps, total, 0.1};
    const bool write = writes() && !out_.empty();
    if (write) {
      checkpoints_.remove_stray_temporaries();
      if (!log_.is_open()) log_ = MetricsLog(out_ / "metrics.jsonl", resumed_ ? state_.step : -1);
      if (!nonfinite_log_.is_open()) nonfinite_log_ = MetricsLog(out_ / "nonfinite.jsonl", resumed_ ? state_.step : -1);
    }
    std::optional<Progress> progress;
    if (writes()) progress.emplace("pretrain", total, config_.train.log_every, state_.step);
    const auto started_run = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_run).count(); };
    const std::int64_t ranks = dist::world_size();
    std::vector<StepResult> results;
    Window window;
    bool stopping = false;
    while (state_.step < until && !stopping) {
      const auto started = std::chrono::steady_clock::now();
      dist::note_step(state_.step);
      std::optional<data::LoaderBatch> a, b;  // absent when no task uses the pass
      if (image_text_) a = next(*image_text_, state_.image_text);
      if (cross_pair_) b = next(*cross_pair_, state_.cross_pair);
      if (a) a->source = to_device(std::move(a->source), device_);
      if (b) b->source = to_device(std::move(b->source), device_), b->target = to_device(std::move(b->target), device_);
      const double rate = lr.at(state_.step);
      set_learning_rate(*optimizer_, rate);
      auto result = step_->run(a ? &a->source : nullptr, b ? &b->source : nullptr, b ? &b->target : nullptr,
                               *optimizer_, state_.step);
      ++state_.step;
      // Every rank stops after the same step (a signal may reach them at different times).
      stopping = dist::any_rank(stop_requested().load());
      if (result.skipped) {
        note_nonfinite(result, a ? &a->source : nullptr, b ? &*b : nullptr);
      } else {
        nonfinite_in_a_row_ = 0;
        if (average_)
          average_pairs_.update(weight_average_decay(config_.train.ema_decay, state_.step));
        window.add(result, ((a ? a->source.size() : 0) + (b ? b->source.size() : 0)) * ranks,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      }
      const bool checkpoint_now = state_.step % config_.train.checkpoint_every == 0 || state_.step == total;
      if ((state_.step % config_.train.log_every == 0 || checkpoint_now) && window.steps > 0) {
        if (write) log_.write(window.record(state_.step, rate, result.draw, elapsed()));
        if (progress) progress->update(state_.step, window.note());
        window = Window{};
      }
      // A skipped step's weights are the last good ones, but its checkpoint would push a good
      // one out: only the run's final checkpoint is written after a skip.
      if (checkpoint_now && write && (!result.skipped || state_.step == total)) save();
      results.push_back(std::move(result));
    }
    stopped_ = stopping;
    if (stopping) {
      // Log the steps since the last line, so a stopped run loses none of its curve.
      if (write && window.steps > 0) log_.write(window.record(state_.step, lr.at(state_.step - 1), results.back().draw, elapsed()));
      if (write) save();
    }
    return results;
  }

  /// Writes checkpoints/step-N.pt and last.pt now.
  std::filesystem::path save() {
    if (!writes()) return {};
    CheckpointParts parts;
    parts.config = &config_;
    parts.tokenizer = tokenizer_.get();
    parts.state = state_;
    parts.model = step_->model().ptr().get();
    parts.average = average_ ? average_.ptr().get() : nullptr;
    parts.heads = &step_->heads();
    parts.teacher = step_->teacher_module().get();
    parts.optimizer = optimizer_.get();
    return checkpoints_.save(parts);
  }

 private:
  // A skipped step: logged with where it went wrong and the batch's items (this rank's shard
  // on stderr; rank 0's in nonfinite.jsonl); train.max_nonfinite in a row stop the run.
  void note_nonfinite(const StepResult& r, const Batch* image_text, const data::LoaderBatch* cross_pair) {
    ++nonfinite_in_a_row_;
    const bool in_a = !r.image_text.nonfinite.empty();
    const Batch* batch = in_a ? image_text : cross_pair ? &cross_pair->source : nullptr;
    const std::string what = in_a ? r.image_text.nonfinite : r.cross_pair.nonfinite;
    const std::string pass = in_a ? "pass A (image-text pairs)" : "pass B (cross pairs)";
    std::vector<std::string> items = batch ? batch->item_ids : std::vector<std::string>{};
    std::vector<std::string> targets;
    if (!in_a && cross_pair) targets = cross_pair->target.item_ids;
    std::string shown;
    for (std::size_t i = 0; i < items.size() && i < 8; ++i) shown += (i ? ", " : "") + items[i];
    if (items.size() > 8) shown += ", ... (" + std::to_string(items.size()) + " items)";
    std::cerr << dist::rank_prefix() << "warning: step " << state_.step << ": " << what << " in " << pass
              << "; the update was skipped (" << nonfinite_in_a_row_ << " in a row, train.max_nonfinite = "
              << config_.train.max_nonfinite << "); batch items: " << shown << "\n";
    if (writes() && !out_.empty())
      nonfinite_log_.write({{"step", state_.step}, {"pass", in_a ? "image_text" : "cross_pair"}, {"what", what},
                            {"in_a_row", nonfinite_in_a_row_}, {"items", items}, {"targets", targets}});
    if (nonfinite_in_a_row_ >= config_.train.max_nonfinite) {
      const auto files = checkpoints_.list();
      throw Error(Location{"", 0, "train.max_nonfinite"},
                  std::to_string(nonfinite_in_a_row_) + " steps in a row had a non-finite loss or gradient (step " +
                      std::to_string(state_.step) + ": " + what + " in " + pass + "); stopping. " +
                      (files.empty() ? std::string("No checkpoint was written yet.")
                                     : "The last checkpoint, " + files.back().string() + ", is from a good step."));
    }
  }

  // Losses averaged over the steps since the last log line.
  struct Window {
    std::map<std::string, double> sums;
    std::map<std::string, double> totals;
    std::int64_t steps = 0, samples = 0, dropped_text = 0, dropped_image = 0, droppable = 0;
    double seconds = 0;

    void add(const StepResult& r, std::int64_t rows, double step_seconds) {
      ++steps;
      samples += rows;
      seconds += step_seconds;
      for (const auto* pass : {&r.image_text, &r.cross_pair})
        for (const auto& [name, value] : pass->losses) sums[name] += value;
      if (r.image_text.ran) totals["image_text"] += r.image_text.total;
      if (r.cross_pair.ran) totals["cross_pair"] += r.cross_pair.total;
      dropped_text += r.cross_pair.dropped_text;
      dropped_image += r.cross_pair.dropped_image;
      droppable += r.cross_pair.droppable;
    }
    nlohmann::json record(std::int64_t step, double lr, const schedules::Draw& draw, double elapsed) const {
      auto drawn = schedules::to_json(draw);
      drawn["dropped_text"] = dropped_text;  // summed over the window's steps
      drawn["dropped_image"] = dropped_image;
      drawn["droppable"] = droppable;
      nlohmann::json j{{"step", step}, {"lr", lr}, {"steps_averaged", steps},
                       {"samples_per_s", seconds > 0 ? static_cast<double>(samples) / seconds : 0.0},
                       {"step_s", seconds / static_cast<double>(std::max<std::int64_t>(steps, 1))},
                       {"elapsed_s", elapsed}, {"draw", drawn}};
      for (const auto& [name, sum] : sums) j["loss"][name] = sum / static_cast<double>(steps);
      for (const auto& [name, sum] : totals) j["total"][name] = sum / static_cast<double>(steps);
      return j;
    }
    std::string note() const {
      std::string text;
      for (const auto& [name, sum] : totals) {
        char part[64];
        std::snprintf(part, sizeof part, "%s %.3f  ", name.c_str(), sum / static_cast<double>(std::max<std::int64_t>(steps, 1)));
        text += part;
      }
      return text;
    }
  };

  // A model to average into, built without touching the default generator (its
  // initialisation draws would otherwise shift every later draw of the run).
  Model make_average() {
    auto generator = at::detail::getDefaultCPUGenerator();
    torch::Tensor state;
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      state = generator.get_state();
    }
    Model average(config_.model);
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(state);
    }
    average->to(device_);
    average->eval();
    for (auto& p : average->parameters()) p.set_requires_grad(false);
    return average;
  }

  static Config with_vocabulary(Config c, const data::Tokenizer& tokenizer) {
    c.model.text.vocab_size = tokenizer.vocab_size();
    validate(c);
    return c;
  }

  // The next batch (a new epoch when one ends); `position` tracks it for checkpoints.
  static data::LoaderBatch next(data::Loader& loader, LoaderPosition& position) {
    auto batch = loader.next_cycling();
    position = {loader.epoch(), loader.position()};
    return batch;
  }

  Config config_;
  std::shared_ptr<const data::Tokenizer> tokenizer_;
  std::filesystem::path out_;
  CheckpointDirectory checkpoints_;
  torch::Device device_;
  std::unique_ptr<Step<Recipe>> step_;
  Model average_{nullptr};
  nn::MovingAverage average_pairs_;  // average_'s tensors paired with the trained model's
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  data::ProductIndex products_;
  std::unique_ptr<data::Loader> image_text_, cross_pair_;
  TrainState state_;
  MetricsLog log_, nonfinite_log_;
  std::int64_t nonfinite_in_a_row_ = 0;
  bool resumed_ = false, stopped_ = false;
};

}  // namespace commercemm::train
