#pragma once
// The Task concept: what a pre-training task is, for cmm::TaskList and the step planner.
//
// A task is a type (it holds no state: its learnable state lives in its Head module) with
//
//   static std::string name();           snake_case, the key of [tasks.<name>] in configs,
//                                        of metrics and of logs ("itc", "retrieval_text_image")
//   static constexpr Pass pass;          Pass::image_text (pass A) or Pass::cross_pair (pass B)
//   static constexpr Needs needs;        which model outputs the planner must compute for it;
//                                        the planner computes the union once per pass
//   using Head = ...;                    a torch::nn module holder with its parameters
//                                        (temperature, prediction head), or tasks::NoHead
//   static Head make_head(const ModelConfig&[, const Options&]);
//   template <class ModelImpl>
//   static losses::LossOutput loss(Head&, ModelImpl& model, const View& view, TaskContext&
//                                  [, const Options&]);
//       View is ImageTextView for pass A and CrossPairView for pass B.
//
// and optionally
//   struct Options { ... };              the task's hyper-parameters, with a visit_fields
//                                        overload listing them (core/options.hpp): read from
//                                        [tasks.<name>] (every key but `weight`), an unknown
//                                        key is an error; then passed as the last argument
//                                        of make_head, prepare and loss
//   template <class ModelImpl>
//   static FusionRequest prepare(Head&, ModelImpl&, const ImageTextView&, TaskContext&
//                                [, const Options&]);
//       pass A only: called after the encoders and before the fusion call, to add rows (e.g.
//       ITM's negative pairs) to the pass's single fusion call; the loss then reads
//       view.requested_fused(name).
//   static double patch_mask_ratio(const Options&);   required when needs.mask_image: the
//                                        share of patches the shared view masks
//   static TokenMasking token_masking(const Options&); required when needs.mask_text: how
//                                        the shared view's text is masked (tasks/masking.hpp)
//   static Needs momentum_needs(const Options&);     what the step must also compute with
//       the momentum model (the weights' moving average, train.ema_decay), without gradient:
//       pass A `embeddings` (view.momentum_image_embedding / momentum_text_embedding), pass B
//       source and target modalities (view.momentum_source / momentum_target); for MoCo keys
//       and ALBEF distillation. A non-empty answer without train.ema_decay is a config error
//   template <class ModelImpl> static constexpr bool supports_model;
//       false makes cmm::Recipe stop with the task's own explanation.
// cmm::Recipe checks loss and prepare against its model: a mis-signed one is a compile error
// of one sentence (tasks/invoke.hpp), never a silently skipped hook.
#include <concepts>
#include <cstdint>
#include <map>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/embeddings.hpp>
#include <commercemm/core/model_config.hpp>
#include <commercemm/core/modality.hpp>
#include <commercemm/core/sample_keys.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/fusion/fusion.hpp>
#include <commercemm/losses/loss.hpp>

namespace commercemm {

/// The two forward/backward passes of a pre-training step.
enum class Pass { image_text, cross_pair };

/// What a task needs computed. Pass A fields and pass B fields; the rest stay false.
struct Needs {
  // Pass A (image-text pairs): a masked view (where any task masks) and, under
  // train.views = "separate", the unmasked view; under "shared" the masked view serves all.
  bool mask_text = false;   ///< MLM masking applied to the masked view's text
  bool mask_image = false;  ///< patch masking applied to the masked view's image
  bool teacher = false;     ///< clean-image teacher features (MIM)
  bool embeddings = false;  ///< image and text embeddings of the unmasked view (ITC, ITM)
  bool fusion = false;      ///< the masked view fused (MLM, MIM)
  bool clean_fusion = false;  ///< the unmasked view fused (ITM's positive pairs)
  // Pass B (cross pairs): the embeddings of each side.
  Modalities source{};
  Modalities target{};

  constexpr Needs operator|(const Needs& o) const {
    return {mask_text || o.mask_text, mask_image || o.mask_image, teacher || o.teacher,
            embeddings || o.embeddings, fusion || o.fusion, clean_fusion || o.clean_fusion,
            source | o.source, target | o.target};
  }
};

/// Extra rows for pass A's single fusion call: row i fuses the unmasked text of global batch
/// row text_rows[i] with the unmasked image of global batch row image_rows[i]. Global rows
/// index every rank's rows in rank order (dist::gather_rows); in a single process, the
/// batch's own rows.
struct FusionRequest {
  torch::Tensor text_rows;   ///< [R] int64
  torch::Tensor image_rows;  ///< [R] int64
};

/// Per-step state a task may use.
struct TaskContext {
  std::int64_t step = 0;
  FusionSplit split;                  ///< this step's modality-randomization draw
  std::int64_t mask_token = 0;        ///< the tokenizer's [MASK] id
  /// The pass's per-sample random keys (seed, step, each row's global index): every random
  /// choice a task makes about a sample comes from keys.uniform(stream, row), never from a
  /// stateful generator, so distributed and resumed runs draw what a single process does.
  SampleKeys keys;
};

/// Pass A's computed outputs for one batch of image-text pairs.
struct ImageTextView {
  const Batch* batch = nullptr;
  TokenSequence text, image;  ///< encoder outputs of the masked view (MLM, MIM)
  TokenSequence clean_text, clean_image;  ///< of the unmasked view (the masked one if nothing is masked)
  torch::Tensor image_embedding, text_embedding;  ///< [B, D] L2-normalised, of the unmasked view
  /// The momentum model's embeddings of the unmasked inputs (no gradient), when a task's
  /// momentum_needs() asks for `embeddings`; else undefined.
  torch::Tensor momentum_image_embedding, momentum_text_embedding;
  FusionOutput fused;         ///< the masked view fused
  FusionOutput clean_fused;   ///< the unmasked view fused (ITM's positive pairs)
  torch::Tensor mlm_labels;   ///< [B, Lt] the original id where masked, -100 elsewhere
  torch::Tensor patch_mask;   ///< [B, N] bool, true = masked
  TokenSequence teacher;      ///< clean-image features [B, 1 + N, Wi], no gradient
  std::map<std::string, FusionOutput> requested;  ///< rows a task asked for, by task name

  const FusionOutput& requested_fused(const std::string& task) const { return requested.at(task); }
};

/// Pass B's computed outputs for one batch of cross pairs (source item -> target product).
struct CrossPairView {
  const Batch* source = nullptr;
  const Batch* target = nullptr;
  Embeddings source_embeddings, target_embeddings;
  /// The same rows embedded by the momentum model (the weights' moving average), without
  /// gradient: only the modalities some task's momentum_needs() asks for, else undefined.
  Embeddings momentum_source, momentum_target;
};

namespace tasks {

/// The options of a task that declares none: it takes no keys besides `weight`.
struct NoOptions {};
template <class F> void visit_fields(NoOptions&, F&&) {}

template <class T> struct task_options { using type = NoOptions; };
template <class T>
  requires requires { typename T::Options; }
struct task_options<T> { using type = typename T::Options; };
/// T::Options, or NoOptions.
template <class T> using task_options_t = typename task_options<T>::type;

/// The Task concept: the required members documented at the top of this header (the optional
/// ones are checked where they are called, tasks/invoke.hpp).
template <class T>
concept Task = requires {
  { T::name() } -> std::convertible_to<std::string>;
  { T::pass } -> std::convertible_to<Pass>;
  { T::needs } -> std::convertible_to<Needs>;
  typename T::Head;
  requires requires(const ModelConfig& c, const task_options_t<T>& o) {
    { T::make_head(c) } -> std::same_as<typename T::Head>;
  } || requires(const ModelConfig& c, const task_options_t<T>& o) {
    { T::make_head(c, o) } -> std::same_as<typename T::Head>;
  };
};

}  // namespace tasks
}  // namespace commercemm
