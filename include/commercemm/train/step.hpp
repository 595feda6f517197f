#pragma once
// cmm::train::Step<Recipe>: one pre-training step, the step planner of DESIGN section 4.
//
// From the recipe's tasks (those with a non-zero weight in the config) it works out which
// encoder and fusion calls each pass needs, runs each network at most once per pass, hands
// every task the shared outputs, sums the weighted losses and runs one backward per pass:
//   pass A (image-text pairs): one shared view, masked where MLM/MIM are selected, plus a
//     no-grad clean-image teacher forward when MIM is; ITM's negative pairs join the single
//     fusion call;
//   pass B (cross pairs): the source and target sides go through each network in one call.
// A task that is not selected costs nothing; a pass with no task is not built at all.
//
// Distributed (dist::current() set, see dist/world.hpp): each rank holds a shard of the global
// batch. Random draws are keyed by global sample index, the contrastive losses gather every
// rank's keys, ITM fuses with negatives from any rank, losses are global means, and a
// dist::GradientReducer averages each pass's gradients while its backward runs, so every rank
// takes the step one process would take on the whole batch.
//
// The pieces live in files named after them: step_result.hpp (what a step reports),
// task_heads.hpp, recipe_options.hpp (task and schedule options), recipe_teacher.hpp,
// cross_pair_encoding.hpp (pass B's network calls), token_rows.hpp, micro_batch.hpp
// (train.accumulate), modality_agreement.hpp (distributed), autocast.hpp, and the update
// policies in update_policy.hpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <commercemm/core/config.hpp>
#include <commercemm/core/config_io.hpp>
#include <commercemm/data/tokenizer.hpp>
#include <commercemm/dist/all_gather.hpp>
#include <commercemm/dist/communicator.hpp>
#include <commercemm/dist/gradient_reducer.hpp>
#include <commercemm/schedules/schedule.hpp>
#include <commercemm/tasks/masking.hpp>
#include <commercemm/tasks/task_list.hpp>
#include <commercemm/tasks/teachers.hpp>
#include <commercemm/tasks/invoke.hpp>
#include <commercemm/train/autocast.hpp>
#include <commercemm/train/cross_pair_encoding.hpp>
#include <commercemm/train/micro_batch.hpp>
#include <commercemm/train/modality_agreement.hpp>
#include <commercemm/train/recipe_teacher.hpp>
#include <commercemm/train/step_result.hpp>
#include <commercemm/train/task_heads.hpp>
#include <commercemm/train/token_rows.hpp>
#include <commercemm/train/recipe_options.hpp>

namespace commercemm::train {

template <class RecipeT>
class Step {
 public:
  using Model = typename RecipeT::Model;
  using Tasks = typename RecipeT::TaskTuple;
  using Schedule = typename RecipeT::Schedule;
  using Heads = TaskHeadsImpl<Tasks>;
  using Teacher = typename detail::recipe_teacher<Tasks>::type;
  static constexpr std::size_t task_count = std::tuple_size_v<Tasks>;

  /// `special` gives the tokenizer's [MASK] id for MLM. The tasks' hyper-parameters come from
  /// [tasks.<name>] and the schedule's options from [schedule] (train/recipe_options.hpp), or
  /// from `schedule_options` when given; config() then holds every resolved value.
  Step(Model model, const Config& config, data::SpecialTokens special,
       std::optional<schedules::ScheduleOptions> schedule_options = std::nullopt)
      : model_(std::move(model)),
        config_(config),
        options_(read_task_options<Tasks>(config_)),
        heads_(std::make_shared<Heads>(config.model, options_)),
        schedule_(schedule_options ? *schedule_options : read_schedule_options<Schedule>(config_)),
        special_(special) {
    read_weights();
    check_shared_views();
    check_modality_dropout();
    check_momentum_model();
    set_teacher_momentum();
    heads_->to(model_->parameters().front().device());  // the heads live where the model does
    teacher_.attach(*model_);
    if (auto* channel = dist::active().gradients)
      reducer_ = std::make_unique<dist::GradientReducer>(parameters(), *channel, config_.dist.bucket_mb << 20);
  }

  Model& model() { return model_; }
  /// The momentum model that tasks asking momentum_needs() read (the Trainer passes its
  /// weight average, train.ema_decay): same architecture, no gradient, kept in eval mode.
  void set_momentum_model(Model momentum) {
    momentum_ = std::move(momentum);
    if (momentum_) momentum_->eval();
  }
  /// Whether a running task reads the momentum model (then set_momentum_model is required).
  bool needs_momentum_model() { return momentum_needs(Pass::image_text) || momentum_needs(Pass::cross_pair); }
  /// The run's config with every task option and schedule option resolved.
  const Config& config() const { return config_; }
  /// Task I's options, as read from the config.
  template <std::size_t I> const auto& options() const { return std::get<I>(options_); }
  Heads& heads() { return *heads_; }
  std::shared_ptr<Heads> heads_ptr() { return heads_; }
  const Schedule& schedule() const { return schedule_; }
  const StepCounters& counters() const { return counters_; }
  /// Seconds spent waiting for gradient all-reduces the backward did not hide (0 alone).
  double exposed_gradient_seconds() const { return reducer_ ? reducer_->exposed_seconds() : 0.0; }
  /// The MIM teacher's own weights (an EMA encoder), for checkpoints; null when it has none.
  std::shared_ptr<torch::nn::Module> teacher_module() const {
    if constexpr (requires(const Teacher& t) { t.module(); }) return teacher_.module();
    return nullptr;
  }

  /// Every trainable tensor: the model's and the heads'.
  std::vector<torch::Tensor> parameters() {
    auto params = model_->parameters();
    for (auto& p : heads_->parameters()) params.push_back(p);
    return params;
  }

  /// Whether any selected task trains on `pass`; a pass no task uses needs no data.
  bool runs(Pass pass) { return union_needs(pass).has_value(); }

  /// Names and weights of the tasks that run (weight > 0), in recipe order.
  std::vector<std::pair<std::string, double>> active_tasks() const {
    std::vector<std::pair<std::string, double>> out;
    for (std::size_t i = 0; i < task_count; ++i)
      if (weights_[i] > 0) out.emplace_back(names_[i], weights_[i]);
    return out;
  }

  /// One training step: pass A on `image_text` (may be null), pass B on `source` -> `target`
  /// (may be null), then the optimizer update(s) the recipe's update policy prescribes.
  /// A NaN or infinite loss (that pass's backward is not run) or gradient skips the update:
  /// parameters, optimizer state, buffers (MIM-kl's centre) and the EMA teacher stay as they
  /// were, and the result says what was found where (StepResult::skipped, PassResult::nonfinite).
  StepResult run(const Batch* image_text, const Batch* source, const Batch* target,
                 torch::optim::Optimizer& optimizer, std::int64_t step) {
    StepResult result;
    result.step = step;
    result.draw = schedule_.draw(step);
    TaskContext ctx{step, result.draw.split, special_.mask, {}};
    optimizer.zero_grad();
    save_buffers();
    // train.accumulate = N: each pass runs on N micro-batches (rows keep their global
    // indices, so every per-sample draw is the one the whole batch would make), each loss
    // scaled by 1/N, gradients summed. MLM is normalised by the whole batch's masked tokens
    // and MIM-kl's centre moves once, so they take the whole batch's step exactly; contrastive
    // negatives and ITM's come from the micro-batch.
    const auto n = config_.train.accumulate;
    if (n > 1) check_micro_batches(image_text, source, n);
    if (image_text) {
      if (n > 1) prepare_text_masks(*image_text, ctx);
      defer_center_updates(n > 1);
      result.image_text = accumulate(n, [&](std::int64_t m) { return image_text_pass(micro_batch(*image_text, m, n), ctx); });
      defer_center_updates(false);  // flushes what the micro-batches gathered
      masked_tokens_total_ = 0, text_loss_scale_ = 1.0;
      if (RecipeT::UpdatePolicy::step_after_each_pass && result.image_text.ran) {
        result.skipped |= !update(optimizer);
        save_buffers();  // pass B's own update window: its skip must not undo pass A's update
      }
    }
    if (source && target)
      result.cross_pair = accumulate(n, [&](std::int64_t m) {
        return cross_pair_pass(micro_batch(*source, m, n), micro_batch(*target, m, n), ctx, result.draw);
      });
    if (!RecipeT::UpdatePolicy::step_after_each_pass || result.cross_pair.ran) result.skipped |= !update(optimizer);
    return result;
  }

  /// Pass A: forward, weighted sum, backward (no optimizer step).
  PassResult image_text_pass(const Batch& batch_in, TaskContext& ctx) {
    const auto needs = union_needs(Pass::image_text);
    if (!needs) return {};
    ++counters_.image_text_passes;
    Batch batch = batch_in;
    if (!agree_on_modalities(batch, special_.pad, model_->config().image.image_size)) return {};
    ctx.keys = SampleKeys::of(batch, static_cast<std::uint64_t>(config_.train.seed), ctx.step);
    ImageTextView view;
    view.batch = &batch;
    torch::Tensor total;
    PassResult result;
    {
      AutocastGuard autocast(config_.train.precision, device_type());
      auto ids = batch.text_ids;
      if (needs->mask_text) {
        const auto [first, end] = random_token_range();
        std::tie(ids, view.mlm_labels) =
            tasks::mask_tokens(batch.text_ids, batch.text_mask, ctx.mask_token, end, ctx.keys, token_masking(), first);
        // A micro-batch's share of the whole batch's masked tokens, times the micro-batches:
        // the 1/n loss scale then leaves exactly the whole batch's mean (see prepare_text_masks).
        if (masked_tokens_total_ > 0)
          text_loss_scale_ = static_cast<double>(config_.train.accumulate) *
                             dist::sum_over_ranks(view.mlm_labels.ne(-100).sum().template item<double>()) /
                             masked_tokens_total_;
      }
      if (needs->mask_image)
        view.patch_mask = tasks::mask_patches(model_->config().image.num_patches(), patch_mask_ratio(), ctx.keys)
                              .to(batch.images.device());
      view.text = model_->encode_text(ids, batch.text_mask);
      view.image = model_->encode_image(batch.images, view.patch_mask);
      // The unmasked view, for ITC and ITM (train.views = "separate"): only what was masked
      // runs again, and its image is also MIM's stop-gradient target.
      const bool separate = config_.train.views == "separate" && (needs->embeddings || needs->clean_fusion);
      view.clean_text = separate && needs->mask_text ? model_->encode_text(batch.text_ids, batch.text_mask) : view.text;
      view.clean_image = separate && needs->mask_image ? model_->encode_image(batch.images) : view.image;
      if (needs->teacher) {
        if constexpr (std::is_same_v<Teacher, teachers::StopGradient>) {
          if (separate) view.teacher = {view.clean_image.tokens.detach(), view.clean_image.valid};
        }
        if (!view.teacher.defined()) view.teacher = teacher_.features(*model_, batch.images);
      }
      if (needs->embeddings) {
        view.image_embedding = model_->embed_image(view.clean_image);
        view.text_embedding = model_->embed_text(view.clean_text);
      }
      if (const auto momentum = momentum_needs(Pass::image_text); momentum && momentum->embeddings)
        encode_momentum(batch, view);
      fuse_pass_a(view, *needs, ctx);
      total = sum_losses(Pass::image_text, view, ctx, result);
    }
    backward(total, result, Pass::image_text);
    return result;
  }

  /// Pass B: forward, weighted sum, backward (no optimizer step).
  PassResult cross_pair_pass(const Batch& source_batch, const Batch& target_batch, TaskContext& ctx,
                             const schedules::Draw& draw) {
    const auto needs = union_needs(Pass::cross_pair);
    if (!needs) return {};
    ++counters_.cross_pair_passes;
    Batch source = source_batch, target = target_batch;
    const bool source_rows = agree_on_modalities(source, special_.pad, model_->config().image.image_size);
    const bool target_rows = agree_on_modalities(target, special_.pad, model_->config().image.image_size);
    if (!source_rows || !target_rows) return {};
    const auto dropped = schedules::apply_modality_dropout(source, draw, static_cast<std::uint64_t>(config_.train.seed), ctx.step);
    PassResult result;
    if (draw.drop_text > 0 || draw.drop_image > 0) {  // counted over the global batch
      result.dropped_text = static_cast<std::int64_t>(dist::sum_over_ranks(static_cast<double>(dropped.text)));
      result.dropped_image = static_cast<std::int64_t>(dist::sum_over_ranks(static_cast<double>(dropped.image)));
      result.droppable = static_cast<std::int64_t>(dist::sum_over_ranks(static_cast<double>(dropped.eligible)));
    }
    ctx.keys = SampleKeys::of(source, static_cast<std::uint64_t>(config_.train.seed), ctx.step);
    CrossPairView view{&source, &target, {}, {}, {}, {}};
    torch::Tensor total;
    {
      AutocastGuard autocast(config_.train.precision, device_type());
      encode_cross_pairs(*model_, source, target, needs->source, needs->target, view, ctx.split);
      if (const auto momentum = momentum_needs(Pass::cross_pair)) encode_momentum(source, target, *momentum, view, ctx.split);
      total = sum_losses(Pass::cross_pair, view, ctx, result);
    }
    backward(total, result, Pass::cross_pair);
    return result;
  }

 private:
  // Under accumulation a masked-token loss (MLM) must be normalised by the masked tokens of the
  // whole batch, not of each micro-batch: counted here (cheap: the masks are pure draws).
  void prepare_text_masks(const Batch& batch, const TaskContext& ctx) {
    const auto needs = union_needs(Pass::image_text);
    if (!needs || !needs->mask_text || !batch.has_text()) return;
    const auto keys = SampleKeys::of(batch, static_cast<std::uint64_t>(config_.train.seed), ctx.step);
    const auto [first, end] = random_token_range();
    const auto labels = tasks::mask_tokens(batch.text_ids, batch.text_mask, ctx.mask_token, end, keys, token_masking(), first).second;
    masked_tokens_total_ = dist::sum_over_ranks(labels.ne(-100).sum().template item<double>());
  }
  // MIM-kl heads move their centre once per step under accumulation.
  void defer_center_updates(bool defer) {
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (requires(typename T::Head& h) { h->defer_center_updates(true); h->flush_center(); }) {
        auto& head = heads_->template get<I>();
        head->defer_center_updates(defer);
        if (!defer) head->flush_center();
      }
    });
  }

  // Every rank's shard must cut into n micro-batches; else every rank stops with the error.
  static void check_micro_batches(const Batch* image_text, const Batch* source, std::int64_t n) {
    std::int64_t fewest = std::numeric_limits<std::int64_t>::max();
    for (const auto* b : {image_text, source})
      if (b) fewest = std::min(fewest, b->size());
    const bool short_here = fewest < n;
    if (dist::any_rank(short_here))
      throw Error(Location{"", 0, "train.accumulate"}, "a batch of " + std::to_string(short_here ? fewest : n) +
                                                           " rows (on some rank) cannot be cut into " + std::to_string(n) +
                                                           " micro-batches");
  }

  // The share of patches masked and how text is masked, as the recipe's masking tasks declare
  // them (one shared masked view serves every task, so two tasks must agree).
  double patch_mask_ratio() {
    double ratio = 0.0;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (T::needs.mask_image) {
        static_assert(requires { T::patch_mask_ratio(std::get<I>(options_)); },
                      "a task with needs.mask_image must declare `static double patch_mask_ratio(const Options&)`");
        if (weights_[I] > 0) ratio = T::patch_mask_ratio(std::get<I>(options_));
      }
    });
    return ratio;
  }
  tasks::TokenMasking token_masking() {
    tasks::TokenMasking masking;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (T::needs.mask_text) {
        static_assert(requires { T::token_masking(std::get<I>(options_)); },
                      "a task with needs.mask_text must declare `static TokenMasking token_masking(const Options&)`");
        if (weights_[I] > 0) masking = T::token_masking(std::get<I>(options_));
      }
    });
    return masking;
  }
  // An EMA teacher's momentum, from the MIM tasks' options (they share one teacher).
  void set_teacher_momentum() {
    std::string first;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (requires { std::get<I>(options_).teacher_momentum; }) {
        const double m = std::get<I>(options_).teacher_momentum;
        if (!first.empty() && m != teacher_.momentum())
          throw Error(Location{"", 0, "tasks." + T::name() + ".teacher_momentum"},
                      "differs from tasks." + first + ".teacher_momentum: the tasks share one teacher");
        teacher_.set_momentum(m);
        first = T::name();
      }
    });
  }

  // What the running tasks of `pass` ask of the momentum model (tasks' momentum_needs()).
  std::optional<Needs> momentum_needs(Pass pass) {
    std::optional<Needs> needs;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (tasks::has_momentum_needs<T>) {
        const Needs n = T::momentum_needs(std::get<I>(options_));
        if (T::pass == pass && weights_[I] > 0 && asks(n)) needs = needs ? (*needs | n) : n;
      }
    });
    return needs;
  }
  static bool asks(const Needs& n) { return n.embeddings || !n.source.empty() || !n.target.empty(); }
  void check_momentum_model() {
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (tasks::has_momentum_needs<T>) {
        const Needs n = T::momentum_needs(std::get<I>(options_));
        // Pass A computes `embeddings` for the momentum model, pass B source and target rows.
        const bool other_pass = T::pass == Pass::image_text ? !(n.source.empty() && n.target.empty()) : n.embeddings;
        TORCH_CHECK(!other_pass, T::name(), ": momentum_needs asks for another pass's outputs");
        if (weights_[I] > 0 && asks(n) && config_.train.ema_decay <= 0)
          throw Error(Location{"", 0, "tasks." + T::name()},
                      "reads a momentum model, which is the weights' moving average: set train.ema_decay");
      }
    });
  }
  void require_momentum_model() const {
    if (!momentum_) throw Error("a task reads the momentum model, but the step was given none (Step::set_momentum_model)");
  }
  // Pass A: the momentum model sees the unmasked inputs, as ALBEF's does (under
  // train.views = "shared" the trained model's ITC embeddings are of the masked view).
  void encode_momentum(const Batch& batch, ImageTextView& view) {
    require_momentum_model();
    torch::NoGradGuard no_grad;
    view.momentum_image_embedding = momentum_->embed_image(momentum_->encode_image(batch.images));
    view.momentum_text_embedding = momentum_->embed_text(momentum_->encode_text(batch.text_ids, batch.text_mask));
  }
  // Pass B: the rows and modalities the tasks ask for.
  void encode_momentum(const Batch& source, const Batch& target, const Needs& needs, CrossPairView& view,
                       FusionSplit split) {
    require_momentum_model();
    torch::NoGradGuard no_grad;
    CrossPairView momentum{&source, &target, {}, {}, {}, {}};
    encode_cross_pairs(*momentum_, source, target, needs.source, needs.target, momentum, split);
    view.momentum_source = std::move(momentum.source_embeddings);
    view.momentum_target = std::move(momentum.target_embeddings);
  }

  void check_shared_views() {
    std::string first;
    double ratio = -1;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (T::needs.mask_image) {
        const double r = T::patch_mask_ratio(std::get<I>(options_));
        if (weights_[I] <= 0) return;
        if (ratio >= 0 && r != ratio)
          throw Error(Location{"", 0, "tasks." + T::name() + ".mask_ratio"},
                      "differs from tasks." + first + ".mask_ratio: the tasks share one masked view");
        ratio = r, first = T::name();
      }
    });
    // "separate" re-encodes the unmasked inputs for ITC and ITM: without a task that masks
    // and one that reads them, the key would do nothing.
    const auto a = union_needs(Pass::image_text);
    if (config_.train.views == "separate" &&
        !(a && (a->mask_text || a->mask_image) && (a->embeddings || a->clean_fusion)))
      throw Error(Location{"", 0, "train.views"},
                  "\"separate\" does nothing in this recipe: it needs a masking task (MLM, MIM) and ITC or ITM in pass A");
  }

  // ModalityDropout drops from pass B's sources: without a pass-B task its shares do nothing.
  void check_modality_dropout() {
    const auto draw = schedule_.draw(0);
    if ((draw.drop_text > 0 || draw.drop_image > 0) && !union_needs(Pass::cross_pair))
      throw Error(Location{"", 0, draw.drop_text > 0 ? "schedule.drop_text" : "schedule.drop_image"},
                  "drops a modality from pass B's sources, and this recipe has no cross-pair task (or all have "
                  "weight 0): it would do nothing");
  }

  // MLM's random replacements come from the regular tokens: above the special ids when the
  // vocabulary starts with them (BERT), below them when it appends them (BPE).
  std::pair<std::int64_t, std::int64_t> random_token_range() const {
    const auto vocab = model_->config().text.vocab_size;
    const auto low = std::min({special_.pad, special_.unk, special_.mask});
    const auto high = std::max({special_.pad, special_.unk, special_.mask});
    if (high < vocab / 2) return {high + 1, vocab};
    return {0, low};
  }

  void read_weights() {  // read_task_options() already refused tables of unknown tasks
    for_each_task([&]<class T, std::size_t I>() {
      names_[I] = T::name();
      weights_[I] = config_.tasks.at(names_[I]).weight;
    });
  }

  template <class F> void for_each_task(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<std::tuple_element_t<I, Tasks>, I>(), ...);
    }(std::make_index_sequence<task_count>{});
  }

  c10::DeviceType device_type() { return model_->parameters().front().device().type(); }

  std::optional<Needs> union_needs(Pass pass) {
    std::optional<Needs> needs;
    for_each_task([&]<class T, std::size_t I>() {
      if (T::pass == pass && weights_[I] > 0) needs = needs ? (*needs | T::needs) : T::needs;
    });
    return needs;
  }

  // One fusion call for the masked view (MLM, MIM), the unmasked view (ITM's positives) and
  // every requested row (which index the unmasked view), each only if some task reads it.
  void fuse_pass_a(ImageTextView& view, const Needs& needs, TaskContext& ctx) {
    std::vector<std::pair<std::string, FusionRequest>> requests;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (T::pass == Pass::image_text && tasks::has_prepare<T, typename Model::Impl>) {
        if (weights_[I] > 0)
          requests.emplace_back(T::name(), tasks::prepare<T>(heads_->template get<I>(), *model_, view, ctx, std::get<I>(options_)));
      }
    });
    // With nothing masked (or one shared view) the two views are the same tensors: fuse once.
    const bool same = view.clean_text.tokens.is_same(view.text.tokens) && view.clean_image.tokens.is_same(view.image.tokens);
    const bool masked_rows = needs.fusion || (same && needs.clean_fusion), clean_rows = needs.clean_fusion && !same;
    if (!masked_rows && !clean_rows && requests.empty()) return;
    const auto b = view.batch->size();
    TokenSequence text_in, image_in;
    if (requests.empty()) {  // this rank's rows, whole: no gather and no row selection
      const auto pick = [&](const TokenSequence& masked, const TokenSequence& clean) {
        return masked_rows && clean_rows ? detail::concat_rows(masked, clean) : masked_rows ? masked : clean;
      };
      text_in = pick(view.text, view.clean_text), image_in = pick(view.image, view.clean_image);
    } else {
      // Requested rows index the global batch: fuse from every rank's encoder outputs (this
      // rank's own rows start at `offset`; in a single process the gather is the view itself).
      // The unmasked view's rows follow the masked view's in one table.
      const auto text = dist::gather_tokens(view.text), image = dist::gather_tokens(view.image);
      const auto clean_text = same ? text : dist::gather_tokens(view.clean_text);
      const auto clean_image = same ? image : dist::gather_tokens(view.clean_image);
      const auto rows_of = [](const TokenSequence& s) { return s.defined() ? s.tokens.size(0) : std::int64_t{0}; };
      const std::int64_t clean_text_base = same ? 0 : rows_of(text.all), clean_image_base = same ? 0 : rows_of(image.all);
      const auto own = torch::arange(b, torch::TensorOptions(torch::kLong).device(view.text.tokens.device()));
      std::vector<torch::Tensor> text_rows, image_rows;
      if (masked_rows) text_rows.push_back(own + text.offset), image_rows.push_back(own + image.offset);
      if (clean_rows)
        text_rows.push_back(own + clean_text.offset + clean_text_base),
            image_rows.push_back(own + clean_image.offset + clean_image_base);
      for (const auto& [name, r] : requests)
        text_rows.push_back(r.text_rows + clean_text_base), image_rows.push_back(r.image_rows + clean_image_base);
      text_in = detail::select_rows(same ? text.all : detail::concat_rows(text.all, clean_text.all), torch::cat(text_rows));
      image_in = detail::select_rows(same ? image.all : detail::concat_rows(image.all, clean_image.all), torch::cat(image_rows));
    }
    const auto fused = model_->fuse(text_in, image_in, ctx.split);
    // Each view keeps its own text length (the gather padded it to every rank's longest).
    const auto own_length = [&](FusionOutput f) {
      auto& t = f.text;
      if (t.defined() && t.tokens.size(1) > view.text.tokens.size(1)) {
        const auto l = view.text.tokens.size(1);
        t = {t.tokens.narrow(1, 0, l), t.valid.defined() ? t.valid.narrow(1, 0, l) : t.valid};
      }
      return f;
    };
    std::int64_t offset = 0;
    if (masked_rows) view.fused = own_length(detail::slice(fused, 0, b)), offset = b;
    if (clean_rows) view.clean_fused = own_length(detail::slice(fused, offset, b)), offset += b;
    else if (needs.clean_fusion) view.clean_fused = view.fused;
    for (const auto& [name, r] : requests) {
      const auto n = r.text_rows.size(0);
      view.requested[name] = detail::slice(fused, offset, n);
      offset += n;
    }
  }

  // The weighted sum to back-propagate. The logged values (each task's loss and parts, the
  // pass total) travel in one tensor and, distributed, are averaged over the ranks (each
  // rank's loss is its share of a global mean, so the average is the global loss): one
  // synchronisation per pass, which the non-finite check needs anyway.
  template <class View>
  torch::Tensor sum_losses(Pass pass, const View& view, TaskContext& ctx, PassResult& result) {
    torch::Tensor total;
    double weight_sum = 0;
    std::vector<std::string> keys;
    std::vector<torch::Tensor> values;
    std::vector<std::size_t> task_keys;  // which keys are task losses (checked for finiteness)
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (std::is_same_v<View, ImageTextView> == (T::pass == Pass::image_text)) {
        if (T::pass != pass || weights_[I] <= 0) return;
        auto out = tasks::loss<T>(heads_->template get<I>(), *model_, view, ctx, std::get<I>(options_));
        if constexpr (T::needs.mask_text) {
          if (text_loss_scale_ != 1.0) out.loss = out.loss * text_loss_scale_;
        }
        task_keys.push_back(keys.size());
        keys.push_back(names_[I]);
        values.push_back(out.loss.detach());
        for (const auto& [part, tensor] : out.parts) keys.push_back(names_[I] + "/" + part), values.push_back(tensor.detach());
        auto weighted = out.loss * weights_[I];
        total = total.defined() ? total + weighted : weighted;
        weight_sum += weights_[I];
      }
    });
    if (config_.train.normalize_pass_weights && weight_sum > 0) total = total / weight_sum;
    values.push_back(total.detach());
    for (auto& v : values) v = v.to(torch::kCPU, torch::kDouble).reshape({});
    auto reported = torch::stack(values);
    if (auto* comm = dist::current()) {
      comm->all_reduce_sum(reported);
      reported /= static_cast<double>(comm->size());
    }
    const auto* v = reported.data_ptr<double>();
    for (auto k : task_keys)  // the reduced values: every rank finds the same
      if (!std::isfinite(v[k]) && result.nonfinite.empty())
        result.nonfinite = "loss of tasks." + keys[k] + " is " + std::to_string(v[k]);
    std::size_t next_task = 0;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      if (next_task < task_keys.size() && task_keys[next_task] == k) {
        result.losses[keys[k]] = v[k];
        ++next_task;
      } else {
        result.parts[keys[k]] = v[k];
      }
    }
    result.total = v[keys.size()];
    return total;
  }

  // Runs `pass(m)` for m < n with the loss scaled by 1/n; losses and parts averaged over the
  // micro-batches, dropout counts summed.
  template <class F> PassResult accumulate(std::int64_t n, F&& pass) {
    if (n == 1) return pass(0);
    loss_scale_ = 1.0 / static_cast<double>(n);
    PassResult out;
    for (std::int64_t m = 0; m < n; ++m) {
      auto r = pass(m);
      if (!r.ran) continue;
      out.ran = true;
      out.total += r.total / static_cast<double>(n);
      for (const auto& [k, v] : r.losses) out.losses[k] += v / static_cast<double>(n);
      for (const auto& [k, v] : r.parts) out.parts[k] += v / static_cast<double>(n);
      out.dropped_text += r.dropped_text, out.dropped_image += r.dropped_image, out.droppable += r.droppable;
      if (out.nonfinite.empty()) out.nonfinite = r.nonfinite;
    }
    loss_scale_ = 1.0;
    return out;
  }

  void backward(const torch::Tensor& total, PassResult& result, Pass pass) {
    result.ran = true;
    // Nothing to learn (every task of the pass found no rows in the global batch and its
    // temperature is fixed): the same on every rank, so all skip the backward together.
    if (!total.requires_grad()) return;
    // A non-finite loss (found in the reduced values, so on every rank) is not back-propagated:
    // the update is skipped anyway, and every rank skips the same gradient collectives.
    if (!result.nonfinite.empty()) {
      poisoned_ = true;
      return;
    }
    if (reducer_) reducer_->begin(static_cast<int>(pass));
    (loss_scale_ == 1.0 ? total : total * loss_scale_).backward();
    if (reducer_) reducer_->finish();
    ++counters_.backward;
    // Checked after the all-reduce, so every rank sees the same gradients and agrees.
    if (!poisoned_ && !gradients_finite()) {
      result.nonfinite = "gradient";
      poisoned_ = true;
    }
  }

  // One pass over the gradients; a sum in double is non-finite exactly when an element is.
  bool gradients_finite() {
    std::vector<torch::Tensor> sums;
    for (const auto& p : parameters())
      if (p.grad().defined()) sums.push_back(p.grad().sum(torch::kDouble));
    return sums.empty() || torch::stack(sums).sum().isfinite().template item<bool>();
  }

  // Buffers a forward may move (MIM-kl's centre), kept at the start of each update's window
  // and put back when that update is skipped. A buffer is copied again only when it changed
  // since its last copy (its version counter or its storage moved), so fixed ones are copied once.
  void save_buffers() {
    const auto buffers = heads_->buffers();
    saved_buffers_.resize(buffers.size());
    for (std::size_t i = 0; i < buffers.size(); ++i) {
      auto& saved = saved_buffers_[i];
      if (saved.copy.defined() && saved.unchanged(buffers[i])) continue;
      saved.copy = buffers[i].clone();
      saved.mark(buffers[i]);
    }
    poisoned_ = false;
  }
  void restore_buffers() {
    torch::NoGradGuard no_grad;
    const auto buffers = heads_->buffers();
    for (std::size_t i = 0; i < buffers.size(); ++i) {
      auto& saved = saved_buffers_[i];
      if (saved.unchanged(buffers[i])) continue;
      buffers[i].copy_(saved.copy);
      saved.mark(buffers[i]);
    }
  }

  // The optimizer step, or, after a non-finite loss or gradient, nothing at all: returns
  // whether the parameters were updated.
  bool update(torch::optim::Optimizer& optimizer) {
    if (poisoned_) {
      optimizer.zero_grad();
      restore_buffers();
      poisoned_ = false;
      ++counters_.skipped_updates;
      return false;
    }
    if (config_.train.grad_clip > 0) torch::nn::utils::clip_grad_norm_(parameters(), config_.train.grad_clip);
    optimizer.step();
    optimizer.zero_grad();
    ++counters_.optimizer_steps;
    teacher_.after_step(*model_);
    return true;
  }

  Model model_;
  Model momentum_{nullptr};  // the trainer's weight average, when a task reads it
  Config config_;
  TaskOptions<Tasks> options_;
  std::shared_ptr<Heads> heads_;
  Schedule schedule_;
  data::SpecialTokens special_;
  Teacher teacher_;
  std::unique_ptr<dist::GradientReducer> reducer_;  // distributed only
  double loss_scale_ = 1.0;                          // 1 / train.accumulate while accumulating
  double masked_tokens_total_ = 0;                   // the whole batch's, while accumulating
  double text_loss_scale_ = 1.0;                     // this micro-batch's masked-token weight
  bool poisoned_ = false;                            // a non-finite loss or gradient since the last update
  struct SavedBuffer {
    torch::Tensor copy;
    std::int64_t version = -1;    // the buffer's version counter when copied (or restored)
    const void* data = nullptr;   // and its storage: loading a checkpoint may swap it
    bool unchanged(const torch::Tensor& b) const { return version == b._version() && data == b.data_ptr(); }
    void mark(const torch::Tensor& b) { version = b._version(), data = b.data_ptr(); }
  };
  std::vector<SavedBuffer> saved_buffers_;           // the heads' buffers at the window's start
  std::array<std::string, task_count> names_;
  std::array<double, task_count> weights_{};
  StepCounters counters_;
};

}  // namespace commercemm::train
