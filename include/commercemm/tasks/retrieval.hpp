#pragma once
// The nine pass-B "omni-retrieval" tasks: Retrieval<S, T> is InfoNCE between the source
// item's S embedding and its target product's T embedding over the batch, S and T each one of
// cmm::Text, cmm::Image, cmm::Multimodal. Sources lacking a modality (a text query has no
// image) take part only in the rows they can fill; items of the same product are not negatives.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/core/modality.hpp>
#include <commercemm/dist/all_gather.hpp>
#include <commercemm/dist/communicator.hpp>
#include <commercemm/losses/contrastive.hpp>
#include <commercemm/tasks/heads.hpp>
#include <commercemm/tasks/image_text.hpp>
#include <commercemm/tasks/task.hpp>

namespace commercemm::tasks {

/// [B] bool: rows of `batch` that have what modality `m` needs (multimodal needs either).
inline torch::Tensor rows_with(const Batch& batch, Modality m) {
  const auto text = batch.text_rows(), image = batch.image_rows();
  if (m == Modality::text) return text;
  if (m == Modality::image) return image;
  return text.logical_or(image);
}

/// Which pair kinds a retrieval task trains on (the sources' Batch::kinds).
namespace kinds {
/// A kind's name as a template argument: kinds::Only<"review">.
template <std::size_t N> struct Name {
  char text[N]{};
  constexpr Name(const char (&s)[N]) { std::copy_n(s, N, text); }  // NOLINT: implicit, for NTTPs
  constexpr std::string_view view() const { return {text, N - 1}; }
};
/// Every pair kind (the built-in tasks).
struct Any {
  static constexpr bool all = true;
  static bool contains(std::string_view) { return true; }
  static std::string suffix() { return ""; }
};
/// Only these kinds; the task's name ends with them: retrieval_text_multimodal_review.
template <Name... Ks> struct Only {
  static_assert(sizeof...(Ks) > 0, "kinds::Only<...> needs at least one pair kind");
  static constexpr bool all = false;
  static bool contains(std::string_view kind) { return ((kind == Ks.view()) || ...); }
  static std::string suffix() {
    std::string s;
    ((s += "_" + std::string(Ks.view())), ...);
    return s;
  }
};
}  // namespace kinds

/// [B] bool: rows of `batch` whose pair kind `Kinds` takes (all rows for kinds::Any).
template <class Kinds> torch::Tensor rows_of_kinds(const Batch& batch, const torch::TensorOptions& on) {
  if constexpr (Kinds::all) return torch::ones({batch.size()}, on);
  std::vector<std::uint8_t> take;
  for (const auto& kind : batch.kinds) take.push_back(Kinds::contains(kind) ? 1 : 0);
  if (static_cast<std::int64_t>(take.size()) != batch.size()) return torch::zeros({batch.size()}, on);
  return torch::tensor(take, torch::kUInt8).to(on.device(), torch::kBool);
}

/// A retrieval task's options: its temperature's and its key memory's.
struct RetrievalOptions : TemperatureOptions {
  /// The targets of the last `memory` rows (of the global batch) join each batch's keys as
  /// extra negatives (KeyMemory; 0 = in-batch negatives only). Pass B's batch is small and
  /// split over the pair kinds, so an image source may see a few dozen products a step.
  std::int64_t memory = 0;
  /// The step from which the remembered keys count (the memory fills from the start). Keys
  /// of earlier steps are only consistent with the current ones once the weights move
  /// slowly: from a random start the model can lower the loss by moving every embedding away
  /// from the last steps' (XBM starts its memory after warm-up for this reason).
  std::int64_t memory_start = 0;
  /// The keys (the batch's targets and what the memory keeps) are the momentum model's (the
  /// weights' moving average, train.ema_decay), as MoCo's key encoder: remembered rows and the
  /// batch's come from one slowly moving model, so the trained model cannot lower the loss by
  /// telling its own new embeddings from old ones. The targets take no gradient from this task
  /// (the networks learn through its sources and the other tasks'). The trained model still
  /// embeds the targets (a pass's needs are static): one forward more, not one less.
  bool momentum_keys = false;
  /// ALBEF's momentum distillation: the loss mixes (1 - distill) InfoNCE on the true pairs with
  /// distill times the cross-entropy against the momentum model's own softmax over the same
  /// keys, the memory's rows included (0 = off; ALBEF uses 0.4). Needs train.ema_decay.
  double distill = 0;
};
template <class F> void visit_fields(RetrievalOptions& o, F&& f) {
  visit_fields(static_cast<TemperatureOptions&>(o), f);
  f("memory", o.memory); f("memory_start", o.memory_start);
  f("momentum_keys", o.momentum_keys); f("distill", o.distill);
}
inline void check(const RetrievalOptions& o, const std::string& task) {
  check(static_cast<const TemperatureOptions&>(o), task);
  // The step copies the memory twice (for the backward, and with the heads' buffers for a
  // skipped step): 65,536 rows of 256-wide keys are 64 MiB a copy.
  detail::require(o.memory >= 0 && o.memory <= (std::int64_t{1} << 16), "tasks." + task + ".memory",
                  "must be in 0..65536 rows (0 = off)");
  detail::require(o.memory_start >= 0, "tasks." + task + ".memory_start", "must not be negative");
  detail::require(o.memory > 0 || o.memory_start == 0, "tasks." + task + ".memory_start",
                  "does nothing without a memory (memory = 0); leave it out");
  check_distill(o.distill, task);
}

template <ModalityTag Source, ModalityTag Target, gather::GatherPolicy Gather = gather::AcrossRanks,
          class Kinds = kinds::Any>
struct Retrieval {
  static std::string name() {
    return std::string("retrieval_") + Source::name + "_" + Target::name + Kinds::suffix();
  }
  static constexpr Pass pass = Pass::cross_pair;
  static constexpr Needs needs{.source = Source::value, .target = Target::value};
  using Head = RetrievalHead;
  using Options = RetrievalOptions;
  static void check(const Options& o) { tasks::check(o, name()); }
  static Head make_head(const ModelConfig& c, const Options& o) {
    return Head(o.temperature, o.learn_temperature, o.min_temperature, o.memory, c.embed_dim);
  }
  /// What the step must embed with the momentum model for this task (see CrossPairView).
  static Needs momentum_needs(const Options& o) {
    Needs n;
    if (o.momentum_keys || o.distill > 0) n.target = Target::value;
    if (o.distill > 0) n.source = Source::value;
    return n;
  }

  template <class ModelImpl>
  static losses::LossOutput loss(Head& head, ModelImpl&, const CrossPairView& view, TaskContext& ctx,
                                 const Options& o) {
    const auto& queries = view.source_embeddings.get(Source::value);
    auto keys = view.target_embeddings.get(Target::value);
    if (o.momentum_keys) {
      const auto& momentum = view.momentum_target.get(Target::value);
      TORCH_CHECK(momentum.defined() || !keys.defined(), name(), ": the step gave no momentum keys");
      keys = momentum.defined() ? momentum.detach() : momentum;
    }
    auto rows = rows_with(*view.source, Source::value);
    if constexpr (!Kinds::all) rows = rows.logical_and(rows_of_kinds<Kinds>(*view.source, rows.options()));
    // No source in the global batch has the modality (a batch of text queries has no image):
    // the task contributes nothing, but stays in the graph so the pass can always
    // back-propagate. Every rank takes the same branch (the step gives every rank the same
    // modalities), so the gathers below run on all ranks or on none.
    if (!queries.defined() || !keys.defined() || !dist::any_rank(rows.any().template item<bool>()))
      return {head->forward() * 0.0, {}, {{"rows", torch::zeros({})}}};
    losses::InfoNceOptions options{view.source->product_ids, view.target->product_ids, rows};
    losses::ExtraNegatives remembered;  // copies: the memory changes below, the backward needs these
    if (head->memory) {
      if (head->memory->keys.size(0) != o.memory)  // a --resume with another size
        throw Error(Location{"", 0, "tasks." + name() + ".memory"},
                    std::to_string(o.memory) + " rows, but the checkpoint's memory has " +
                        std::to_string(head->memory->keys.size(0)) + "; resume with the run's own value");
      if (ctx.step >= o.memory_start) remembered = {head->memory->keys.clone(), head->memory->products.clone()};
    }
    auto out = losses::info_nce(queries, keys, head->forward(), options, Gather{}, remembered);
    if (o.distill > 0) {
      const auto& teacher_queries = view.momentum_source.get(Source::value);
      const auto& teacher_keys = view.momentum_target.get(Target::value);
      TORCH_CHECK(teacher_queries.defined() && teacher_keys.defined(), name(), ": the step gave no momentum embeddings");
      torch::Tensor teacher;
      {
        torch::NoGradGuard no_grad;
        teacher = losses::info_nce_logits(teacher_queries, teacher_keys, head->forward(), options, Gather{}, remembered);
      }
      out = losses::distill_info_nce(out, teacher, o.distill, options);
    }
    // Every rank stores the global batch's keys, whatever the gather policy, so every rank's
    // memory is the same (and the one a checkpoint keeps).
    if (head->memory)
      head->memory->push(dist::gather_rows(keys.detach()).all, dist::gather_rows(view.target->product_ids).all);
    // Logged values are averaged over the ranks: scaled so the average is the global count.
    out.parts["rows"] = rows.sum().to(torch::kDouble) * static_cast<double>(dist::world_size());
    return out;
  }
};

namespace omni {
/// All nine source/target pairs.
struct All {
  template <class Gather>
  using tasks = std::tuple<Retrieval<Text, Text, Gather>, Retrieval<Text, Image, Gather>,
                           Retrieval<Text, Multimodal, Gather>, Retrieval<Image, Text, Gather>,
                           Retrieval<Image, Image, Gather>, Retrieval<Image, Multimodal, Gather>,
                           Retrieval<Multimodal, Text, Gather>, Retrieval<Multimodal, Image, Gather>,
                           Retrieval<Multimodal, Multimodal, Gather>>;
};
}  // namespace omni

/// OmniRetrieval<omni::All> stands for the nine Retrieval tasks; cmm::TaskList expands it.
template <class Set = omni::All, gather::GatherPolicy Gather = gather::AcrossRanks>
struct OmniRetrieval {
  using expands_to = typename Set::template tasks<Gather>;
};

}  // namespace commercemm::tasks

namespace commercemm {
namespace omni = tasks::omni;    // cmm::omni::All, as DESIGN.md writes it
namespace kinds = tasks::kinds;  // cmm::kinds::Only<"review">
}  // namespace commercemm
