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
#include <algorithm>
#include <array>
#include <cmath>
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
#include <commercemm/train/recipe_options.hpp>

namespace commercemm::train {

/// What one pass computed: per-task losses (unweighted) and logged parts, for metrics.
struct PassResult {
  bool ran = false;
  double total = 0.0;                      ///< the weighted sum that was back-propagated
  std::map<std::string, double> losses;    ///< by task name
  std::map<std::string, double> parts;     ///< "task/part" -> value (temperature, accuracy, ...)
  std::int64_t dropped_text = 0;   ///< pass B: sources whose text modality dropout removed
  std::int64_t dropped_image = 0;  ///< pass B: sources whose image modality dropout removed
  std::int64_t droppable = 0;      ///< pass B: sources that had both modalities to lose one of
};

struct StepResult {
  std::int64_t step = 0;
  schedules::Draw draw;
  PassResult image_text, cross_pair;
};

/// Cheap counters for tests and logs.
struct StepCounters {
  std::int64_t backward = 0;            ///< backward passes run
  std::int64_t image_text_passes = 0;   ///< pass A inputs built
  std::int64_t cross_pair_passes = 0;   ///< pass B inputs built
  std::int64_t optimizer_steps = 0;
};

namespace detail {
// The teacher policy of a recipe: the one its MIM tasks name (they must agree), else none.
template <class T> struct teacher_of { using type = void; };
template <class T>
  requires requires { typename T::Teacher; }
struct teacher_of<T> { using type = typename T::Teacher; };

template <class Found, class... Ts> struct find_teacher { using type = Found; };
template <class Found, class T, class... Ts> struct find_teacher<Found, T, Ts...> {
  using mine = typename teacher_of<T>::type;
  static_assert(std::is_void_v<mine> || std::is_void_v<Found> || std::is_same_v<mine, Found>,
                "cmm::TaskList: the MIM tasks name different teachers; a recipe computes one "
                "teacher, so every MIM task must use the same teacher policy");
  using type = typename find_teacher<std::conditional_t<std::is_void_v<mine>, Found, mine>, Ts...>::type;
};
template <class Tuple> struct recipe_teacher;
template <class... Ts> struct recipe_teacher<std::tuple<Ts...>> {
  using found = typename find_teacher<void, Ts...>::type;
  using type = std::conditional_t<std::is_void_v<found>, teachers::StopGradient, found>;
};

/// Rows [start, start + n) of a fusion output.
inline FusionOutput slice(const FusionOutput& f, std::int64_t start, std::int64_t n) {
  auto rows = [&](const TokenSequence& s) {
    if (!s.defined()) return s;
    return TokenSequence{s.tokens.narrow(0, start, n), s.valid.defined() ? s.valid.narrow(0, start, n) : s.valid};
  };
  return {rows(f.text), rows(f.image), f.pooled.narrow(0, start, n)};
}

inline TokenSequence select_rows(const TokenSequence& s, const torch::Tensor& rows) {
  return {s.tokens.index_select(0, rows), s.valid.defined() ? s.valid.index_select(0, rows) : s.valid};
}

/// [B, L] validity, with every position of rows where `present` is false marked invalid.
inline TokenSequence restrict_rows(TokenSequence s, const torch::Tensor& present) {
  if (!present.defined() || !s.defined()) return s;
  auto valid = s.valid.defined() ? s.valid
                                 : torch::ones({s.tokens.size(0), s.tokens.size(1)}, s.tokens.options().dtype(torch::kBool));
  s.valid = valid.logical_and(present.to(valid.device(), torch::kBool).unsqueeze(1));
  return s;
}

/// Stacks the rows of two token sequences, padding the shorter one (padding invalid).
inline TokenSequence cat_rows(const TokenSequence& a, const TokenSequence& b) {
  const auto l = std::max(a.tokens.size(1), b.tokens.size(1));
  auto pad = [&](const TokenSequence& s) {
    auto valid = s.valid.defined() ? s.valid
                                   : torch::ones({s.tokens.size(0), s.tokens.size(1)}, s.tokens.options().dtype(torch::kBool));
    const auto extra = l - s.tokens.size(1);
    if (extra == 0) return std::make_pair(s.tokens, valid);
    return std::make_pair(
        torch::cat({s.tokens, torch::zeros({s.tokens.size(0), extra, s.tokens.size(2)}, s.tokens.options())}, 1),
        torch::cat({valid, torch::zeros({valid.size(0), extra}, valid.options())}, 1));
  };
  auto [ta, va] = pad(a);
  auto [tb, vb] = pad(b);
  return {torch::cat({ta, tb}), torch::cat({va, vb})};
}

/// Stacks two batches' text (ids and masks), padding to the longer one.
inline std::pair<torch::Tensor, torch::Tensor> cat_text(const Batch& a, const Batch& b) {
  const auto l = std::max(a.text_ids.size(1), b.text_ids.size(1));
  auto pad = [&](const torch::Tensor& t) {
    return torch::constant_pad_nd(t, {0, l - t.size(1)}, 0);
  };
  return {torch::cat({pad(a.text_ids), pad(b.text_ids)}), torch::cat({pad(a.text_mask), pad(b.text_mask)})};
}

/// Absent modality on one side of pass B: a CLS-only sequence that is entirely invalid.
inline TokenSequence absent(std::int64_t rows, std::int64_t width, const torch::TensorOptions& options) {
  return {torch::zeros({rows, 1, width}, options), torch::zeros({rows, 1}, options.dtype(torch::kBool))};
}
}  // namespace detail

/// Holds every task's head as a submodule named after the task, so they are saved, loaded
/// and optimised with the model.
template <class Tuple> class TaskHeadsImpl;
template <class... Ts>
class TaskHeadsImpl<std::tuple<Ts...>> : public torch::nn::Module {
 public:
  TaskHeadsImpl(const ModelConfig& config, const std::tuple<tasks::task_options_t<Ts>...>& options)
      : heads_(make_heads(config, options, std::index_sequence_for<Ts...>{})) {
    std::apply([&](auto&... head) { (register_module(Ts::name(), head.ptr()), ...); }, heads_);
  }
  template <std::size_t I> auto& get() { return std::get<I>(heads_); }

 private:
  template <std::size_t... I>
  static std::tuple<typename Ts::Head...> make_heads(const ModelConfig& config,
                                                    const std::tuple<tasks::task_options_t<Ts>...>& options,
                                                    std::index_sequence<I...>) {
    return {tasks::make_head<Ts>(config, std::get<I>(options))...};
  }
  std::tuple<typename Ts::Head...> heads_;
};

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
    heads_->to(model_->parameters().front().device());  // the heads live where the model does
    teacher_.attach(*model_);
    if (auto* channel = dist::active().gradients)
      reducer_ = std::make_unique<dist::GradientReducer>(parameters(), *channel, config_.dist.bucket_mb << 20);
  }

  Model& model() { return model_; }
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
  /// A NaN or infinite loss throws commercemm::Error before any parameter changes.
  StepResult run(const Batch* image_text, const Batch* source, const Batch* target,
                 torch::optim::Optimizer& optimizer, std::int64_t step) {
    StepResult result;
    result.step = step;
    result.draw = schedule_.draw(step);
    TaskContext ctx{step, result.draw.split, special_.mask, {}};
    optimizer.zero_grad();
    // train.accumulate = N: each pass runs on N micro-batches (rows keep their global
    // indices, so every per-sample draw is the one the whole batch would make), each loss
    // scaled by 1/N, gradients summed; contrastive negatives come from the micro-batch.
    const auto n = config_.train.accumulate;
    if (image_text) {
      result.image_text = accumulate(n, [&](std::int64_t m) { return image_text_pass(micro_batch(*image_text, m, n), ctx); });
      if (RecipeT::UpdatePolicy::step_after_each_pass && result.image_text.ran) update(optimizer);
    }
    if (source && target)
      result.cross_pair = accumulate(n, [&](std::int64_t m) {
        return cross_pair_pass(micro_batch(*source, m, n), micro_batch(*target, m, n), ctx, result.draw);
      });
    if (!RecipeT::UpdatePolicy::step_after_each_pass || result.cross_pair.ran) update(optimizer);
    return result;
  }

  /// Rows [m B / n, (m + 1) B / n) of `batch`, with their global sample indices.
  static Batch micro_batch(const Batch& batch, std::int64_t m, std::int64_t n) {
    if (n == 1) return batch;
    const auto b = batch.size();
    if (b < n)
      throw Error(Location{"", 0, "train.accumulate"}, "a batch of " + std::to_string(b) + " rows cannot be cut into " +
                                                           std::to_string(n) + " micro-batches");
    const auto first = b * m / n, rows = b * (m + 1) / n - first;
    auto slice = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, first, rows) : t; };
    Batch out;
    out.text_ids = slice(batch.text_ids), out.text_mask = slice(batch.text_mask), out.images = slice(batch.images);
    out.product_ids = slice(batch.product_ids);
    out.text_present = slice(batch.text_present), out.image_present = slice(batch.image_present);
    out.sample_index = batch.sample_index.defined() ? slice(batch.sample_index) : torch::arange(first, first + rows, torch::kLong);
    auto part = [&](const std::vector<std::string>& v) {
      return v.empty() ? v : std::vector<std::string>(v.begin() + first, v.begin() + first + rows);
    };
    out.item_ids = part(batch.item_ids), out.kinds = part(batch.kinds);
    return out;
  }

  /// Pass A: forward, weighted sum, backward (no optimizer step).
  PassResult image_text_pass(const Batch& batch_in, TaskContext& ctx) {
    const auto needs = union_needs(Pass::image_text);
    if (!needs) return {};
    ++counters_.image_text_passes;
    Batch batch = batch_in;
    agree_on_modalities(batch);
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
      }
      if (needs->mask_image)
        view.patch_mask = tasks::mask_patches(model_->config().image.num_patches(), patch_mask_ratio(), ctx.keys)
                              .to(batch.images.device());
      view.text = model_->encode_text(ids, batch.text_mask);
      view.image = model_->encode_image(batch.images, view.patch_mask);
      if (needs->teacher) view.teacher = teacher_.features(*model_, batch.images);
      if (needs->embeddings) {
        view.image_embedding = model_->embed_image(view.image);
        view.text_embedding = model_->embed_text(view.text);
      }
      fuse_pass_a(view, needs->fusion, ctx);
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
    agree_on_modalities(source);
    agree_on_modalities(target);
    const auto dropped = schedules::apply_modality_dropout(source, draw, static_cast<std::uint64_t>(config_.train.seed), ctx.step);
    PassResult result;
    if (draw.drop_text > 0 || draw.drop_image > 0) {  // counted over the global batch
      result.dropped_text = static_cast<std::int64_t>(dist::sum_over_ranks(static_cast<double>(dropped.text)));
      result.dropped_image = static_cast<std::int64_t>(dist::sum_over_ranks(static_cast<double>(dropped.image)));
      result.droppable = static_cast<std::int64_t>(dist::sum_over_ranks(static_cast<double>(dropped.eligible)));
    }
    ctx.keys = SampleKeys::of(source, static_cast<std::uint64_t>(config_.train.seed), ctx.step);
    CrossPairView view{&source, &target, {}, {}};
    torch::Tensor total;
    {
      AutocastGuard autocast(config_.train.precision, device_type());
      encode_pass_b(source, target, needs->source, needs->target, view, ctx);
      total = sum_losses(Pass::cross_pair, view, ctx, result);
    }
    backward(total, result, Pass::cross_pair);
    return result;
  }

 private:
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

  // One fusion call for the shared view (if any task reads it) and every requested row.
  void fuse_pass_a(ImageTextView& view, bool shared, TaskContext& ctx) {
    std::vector<std::pair<std::string, FusionRequest>> requests;
    for_each_task([&]<class T, std::size_t I>() {
      if constexpr (T::pass == Pass::image_text && tasks::has_prepare<T, typename Model::Impl>) {
        if (weights_[I] > 0)
          requests.emplace_back(T::name(), tasks::prepare<T>(heads_->template get<I>(), *model_, view, ctx, std::get<I>(options_)));
      }
    });
    if (!shared && requests.empty()) return;
    if (requests.empty()) {
      view.fused = model_->fuse(view.text, view.image, ctx.split);
      return;
    }
    // Requested rows index the global batch: fuse from every rank's encoder outputs (this
    // rank's own rows start at `offset`; in a single process the gather is the view itself).
    const auto text = dist::gather_tokens(view.text), image = dist::gather_tokens(view.image);
    const auto b = view.batch->size();
    const auto own = torch::arange(b, torch::TensorOptions(torch::kLong).device(view.text.tokens.device()));
    std::vector<torch::Tensor> text_rows, image_rows;
    if (shared) text_rows.push_back(own + text.offset), image_rows.push_back(own + image.offset);
    for (const auto& [name, r] : requests) text_rows.push_back(r.text_rows), image_rows.push_back(r.image_rows);
    const auto fused = model_->fuse(detail::select_rows(text.all, torch::cat(text_rows)),
                                    detail::select_rows(image.all, torch::cat(image_rows)), ctx.split);
    std::int64_t offset = 0;
    if (shared) {
      view.fused = detail::slice(fused, 0, b), offset = b;
      // The shared view keeps its own text length (the gather padded it to every rank's longest).
      auto& t = view.fused.text;
      if (t.defined() && t.tokens.size(1) > view.text.tokens.size(1)) {
        const auto l = view.text.tokens.size(1);
        t = {t.tokens.narrow(1, 0, l), t.valid.defined() ? t.valid.narrow(1, 0, l) : t.valid};
      }
    }
    for (const auto& [name, r] : requests) {
      const auto n = r.text_rows.size(0);
      view.requested[name] = detail::slice(fused, offset, n);
      offset += n;
    }
  }

  // Each network once over [source rows; target rows]; embeddings split back per side.
  void encode_pass_b(const Batch& source, const Batch& target, Modalities src, Modalities tgt,
                     CrossPairView& view, TaskContext& ctx) {
    const auto bs = source.size(), bt = target.size();
    const bool mm = src.has(Modality::multimodal) || tgt.has(Modality::multimodal);
    const bool src_text = source.has_text() && (src.has(Modality::text) || src.has(Modality::multimodal));
    const bool tgt_text = target.has_text() && (tgt.has(Modality::text) || tgt.has(Modality::multimodal));
    const bool src_image = source.has_images() && (src.has(Modality::image) || src.has(Modality::multimodal));
    const bool tgt_image = target.has_images() && (tgt.has(Modality::image) || tgt.has(Modality::multimodal));

    TokenSequence s_text, t_text, s_image, t_image;
    if (src_text && tgt_text) {
      auto [ids, mask] = detail::cat_text(source, target);
      const auto both = model_->encode_text(ids, mask);
      s_text = {both.tokens.narrow(0, 0, bs), both.valid.narrow(0, 0, bs)};
      t_text = {both.tokens.narrow(0, bs, bt), both.valid.narrow(0, bs, bt)};
    } else if (src_text) {
      s_text = model_->encode_text(source.text_ids, source.text_mask);
    } else if (tgt_text) {
      t_text = model_->encode_text(target.text_ids, target.text_mask);
    }
    if (src_image && tgt_image) {
      const auto both = model_->encode_image(torch::cat({source.images, target.images}));
      s_image = {both.tokens.narrow(0, 0, bs), {}};
      t_image = {both.tokens.narrow(0, bs, bt), {}};
    } else if (src_image) {
      s_image = model_->encode_image(source.images);
    } else if (tgt_image) {
      t_image = model_->encode_image(target.images);
    }
    // Rows that lack a modality (queries without images, dropped modalities) are invalid.
    s_text = detail::restrict_rows(s_text, source.text_present);
    s_image = detail::restrict_rows(s_image, source.image_present);
    t_text = detail::restrict_rows(t_text, target.text_present);
    t_image = detail::restrict_rows(t_image, target.image_present);

    if (src.has(Modality::text) && s_text.defined()) view.source_embeddings.text = model_->embed_text(s_text);
    if (src.has(Modality::image) && s_image.defined()) view.source_embeddings.image = model_->embed_image(s_image);
    if (tgt.has(Modality::text) && t_text.defined()) view.target_embeddings.text = model_->embed_text(t_text);
    if (tgt.has(Modality::image) && t_image.defined()) view.target_embeddings.image = model_->embed_image(t_image);
    if (!mm) return;

    // One fusion call over both sides; a side without a modality gets invalid placeholders.
    const bool any_text = s_text.defined() || t_text.defined(), any_image = s_image.defined() || t_image.defined();
    auto fill = [&](const TokenSequence& s, std::int64_t rows, const TokenSequence& other) {
      return s.defined() ? s : detail::absent(rows, other.tokens.size(2), other.tokens.options());
    };
    TokenSequence text, image;
    if (any_text) text = detail::cat_rows(fill(s_text, bs, s_text.defined() ? s_text : t_text),
                                          fill(t_text, bt, t_text.defined() ? t_text : s_text));
    if (any_image) image = detail::cat_rows(fill(s_image, bs, s_image.defined() ? s_image : t_image),
                                            fill(t_image, bt, t_image.defined() ? t_image : s_image));
    const auto fused = model_->embed_multimodal(model_->fuse(text, image, ctx.split));
    if (src.has(Modality::multimodal)) view.source_embeddings.multimodal = fused.narrow(0, 0, bs);
    if (tgt.has(Modality::multimodal)) view.target_embeddings.multimodal = fused.narrow(0, bs, bt);
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
    for (auto k : task_keys)
      if (!std::isfinite(v[k]))
        throw Error(Location{"", 0, "tasks." + keys[k]},
                    "loss is " + std::to_string(v[k]) + " at step " + std::to_string(ctx.step) +
                        "; no parameter was updated");
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
    }
    loss_scale_ = 1.0;
    return out;
  }

  void backward(const torch::Tensor& total, PassResult& result, Pass pass) {
    result.ran = true;
    if (reducer_) reducer_->begin(static_cast<int>(pass));
    (loss_scale_ == 1.0 ? total : total * loss_scale_).backward();
    if (reducer_) reducer_->finish();
    ++counters_.backward;
  }

  // Every rank must run the same networks, since the losses' gathers are collectives: a
  // modality that this rank's shard lacks but another rank's has joins as absent rows
  // (present = false), exactly as such rows sit in a single process's whole batch.
  void agree_on_modalities(Batch& batch) const {
    auto* comm = dist::current();
    if (!comm || batch.size() == 0) return;
    auto flags = torch::tensor({batch.has_text() ? 1 : 0, batch.has_images() ? 1 : 0}, torch::kInt);
    comm->all_reduce_max(flags);
    const auto b = batch.size();
    const auto device = (batch.has_text() ? batch.text_ids : batch.images).device();
    const auto on = torch::TensorOptions().device(device);
    if (flags[0].item<int>() && !batch.has_text()) {
      batch.text_ids = torch::full({b, 1}, special_.pad, on.dtype(torch::kLong));
      batch.text_mask = torch::zeros({b, 1}, on.dtype(torch::kLong));
      batch.text_present = torch::zeros({b}, on.dtype(torch::kBool));
    }
    if (flags[1].item<int>() && !batch.has_images()) {
      const auto size = model_->config().image.image_size;
      batch.images = torch::zeros({b, 3, size, size}, on.dtype(torch::kFloat));
      batch.image_present = torch::zeros({b}, on.dtype(torch::kBool));
    }
  }

  void update(torch::optim::Optimizer& optimizer) {
    if (config_.train.grad_clip > 0) torch::nn::utils::clip_grad_norm_(parameters(), config_.train.grad_clip);
    optimizer.step();
    optimizer.zero_grad();
    ++counters_.optimizer_steps;
    teacher_.after_step(*model_);
  }

  Model model_;
  Config config_;
  TaskOptions<Tasks> options_;
  std::shared_ptr<Heads> heads_;
  Schedule schedule_;
  data::SpecialTokens special_;
  Teacher teacher_;
  std::unique_ptr<dist::GradientReducer> reducer_;  // distributed only
  double loss_scale_ = 1.0;                          // 1 / train.accumulate while accumulating
  std::array<std::string, task_count> names_;
  std::array<double, task_count> weights_{};
  StepCounters counters_;
};

}  // namespace commercemm::train
