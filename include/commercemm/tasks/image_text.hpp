#pragma once
// The five pass-A tasks (DESIGN section 4): MLM, MIM-kl, MIM-fr, ITC and ITM.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/dist/all_gather.hpp>
#include <commercemm/losses/contrastive.hpp>
#include <commercemm/losses/distillation.hpp>
#include <commercemm/tasks/heads.hpp>
#include <commercemm/tasks/masking.hpp>
#include <commercemm/tasks/negatives.hpp>
#include <commercemm/tasks/task.hpp>
#include <commercemm/tasks/teachers.hpp>

namespace commercemm {
namespace losses {
/// Loss tags for tasks::MIM.
struct KL {};
struct FeatureRegression {};
}  // namespace losses

namespace tasks {
namespace detail {
/// [B, L, W] tokens after the CLS, at the positions where mask [B, L] is true -> [M, W].
inline torch::Tensor at_positions(const torch::Tensor& tokens, const torch::Tensor& mask) {
  return tokens.narrow(1, 1, tokens.size(1) - 1).index({mask});
}

inline void require(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw Error(Location{"", 0, key}, what);
}
inline void require_share(double p, const std::string& key) {
  require(std::isfinite(p) && p >= 0.0 && p <= 1.0, key, "must be in [0, 1], got " + std::to_string(p));
}
}  // namespace detail

/// The hyper-parameters of a contrastive task's temperature ([tasks.itc], [tasks.retrieval_*]).
struct TemperatureOptions {
  double temperature = 0.07;      ///< initial value (CLIP, ALBEF)
  bool learn_temperature = true;  ///< learned (clamped below by min_temperature) or fixed
  double min_temperature = 0.01;  ///< floor of a learned temperature: logits stay bounded
};
template <class F> void visit_fields(TemperatureOptions& o, F&& f) {
  f("temperature", o.temperature); f("learn_temperature", o.learn_temperature); f("min_temperature", o.min_temperature);
}
inline void check(const TemperatureOptions& o, const std::string& task) {
  detail::require(o.min_temperature > 0, "tasks." + task + ".min_temperature", "must be positive");
  detail::require(o.temperature >= o.min_temperature, "tasks." + task + ".temperature",
                  "must be at least min_temperature (" + std::to_string(o.min_temperature) + ")");
}
inline Temperature make_temperature(const TemperatureOptions& o) {
  return Temperature(o.temperature, o.learn_temperature, o.min_temperature);
}

/// Masked language modelling: 15% of the text tokens masked (80% [MASK], 10% random, 10%
/// kept; [tasks.mlm] mask_prob, mask_token_share, random_token_share), predicted from the
/// fused text tokens; output layer tied to the token embedding.
struct MLM {
  static std::string name() { return "mlm"; }
  static constexpr Pass pass = Pass::image_text;
  static constexpr Needs needs{.mask_text = true, .fusion = true};
  using Head = MlmHead;
  struct Options {
    double mask_prob = 0.15;          ///< share of the text tokens chosen
    double mask_token_share = 0.8;    ///< of those: replaced by [MASK]
    double random_token_share = 0.1;  ///< of those: replaced by a random token (the rest kept)
    template <class F> friend void visit_fields(Options& o, F&& f) {
      f("mask_prob", o.mask_prob); f("mask_token_share", o.mask_token_share); f("random_token_share", o.random_token_share);
    }
  };
  static void check(const Options& o) {
    detail::require_share(o.mask_prob, "tasks.mlm.mask_prob");
    detail::require_share(o.mask_token_share, "tasks.mlm.mask_token_share");
    detail::require_share(o.random_token_share, "tasks.mlm.random_token_share");
    detail::require(o.mask_token_share + o.random_token_share <= 1.0, "tasks.mlm.random_token_share",
                    "mask_token_share + random_token_share must be <= 1");
  }
  static TokenMasking token_masking(const Options& o) { return {o.mask_prob, o.mask_token_share, o.random_token_share}; }
  static Head make_head(const ModelConfig& c) { return Head(c.fusion.width, c.text.width, c.text.vocab_size); }

  template <class ModelImpl>
  static losses::LossOutput loss(Head& head, ModelImpl& model, const ImageTextView& view, TaskContext&) {
    const auto chosen = view.mlm_labels.ne(-100);
    const auto hidden = detail::at_positions(view.fused.text.tokens, chosen);
    const auto logits = head->forward(hidden, model.text_encoder()->token_embedding());
    return losses::masked_cross_entropy(logits, view.mlm_labels.index({chosen}));
  }
};

/// Masked image modelling: 40% of the patches replaced by a mask token; at those positions
/// the fused image tokens predict the teacher's view of the clean patch.
///   MIM<losses::KL>                 distribution over K prototypes, KL to the teacher's
///                                   (sharper, centred) distribution: "mim_kl"
///   MIM<losses::FeatureRegression>  the teacher's feature itself, squared error: "mim_fr"
/// Teacher: teachers::StopGradient (default) or teachers::Ema<M>; every MIM task of a recipe
/// must use the same one, since the planner computes the teacher once.
/// [tasks.mim_fr]: the share of masked patches.
struct MimFrOptions {
  double mask_ratio = 0.4;
  template <class F> friend void visit_fields(MimFrOptions& o, F&& f) { f("mask_ratio", o.mask_ratio); }
};
/// [tasks.mim_kl]: the share of masked patches, the prototypes and DINO's temperatures.
struct MimKlOptions {
  double mask_ratio = 0.4;
  std::int64_t prototypes = 256;      ///< K visual prototypes
  double student_temperature = 0.1;
  double teacher_temperature = 0.04;  ///< sharper than the student's (DINO)
  double center_momentum = 0.9;       ///< running mean that centres the teacher's logits
  template <class F> friend void visit_fields(MimKlOptions& o, F&& f) {
    f("mask_ratio", o.mask_ratio); f("prototypes", o.prototypes); f("student_temperature", o.student_temperature);
    f("teacher_temperature", o.teacher_temperature); f("center_momentum", o.center_momentum);
  }
};

/// MIM options with an EMA teacher: its momentum too ([tasks.mim_*] teacher_momentum).
template <class Base, class Teacher> struct WithTeacherMomentum : Base {
  double teacher_momentum = Teacher::default_momentum;
  template <class F> friend void visit_fields(WithTeacherMomentum& o, F&& f) {
    visit_fields(static_cast<Base&>(o), f);
    f("teacher_momentum", o.teacher_momentum);
  }
};

template <class Loss, class TeacherT = teachers::StopGradient>
struct MIM {
  static_assert(std::is_same_v<Loss, losses::KL> || std::is_same_v<Loss, losses::FeatureRegression>,
                "tasks::MIM<Loss>: Loss is losses::KL (MIM-kl) or losses::FeatureRegression (MIM-fr)");
  static constexpr bool is_kl = std::is_same_v<Loss, losses::KL>;
  using Teacher = TeacherT;
  using BaseOptions = std::conditional_t<is_kl, MimKlOptions, MimFrOptions>;
  using Options = std::conditional_t<requires { TeacherT::default_momentum; },
                                     WithTeacherMomentum<BaseOptions, TeacherT>, BaseOptions>;

  static std::string name() { return is_kl ? "mim_kl" : "mim_fr"; }
  static constexpr Pass pass = Pass::image_text;
  static constexpr Needs needs{.mask_image = true, .teacher = true, .fusion = true};
  using Head = std::conditional_t<is_kl, MimKlHead, torch::nn::Linear>;
  static void check(const Options& o) {
    detail::require(o.mask_ratio > 0.0 && o.mask_ratio < 1.0, "tasks." + name() + ".mask_ratio", "must be in (0, 1)");
    if constexpr (requires { o.teacher_momentum; })
      detail::require(o.teacher_momentum > 0.0 && o.teacher_momentum < 1.0, "tasks." + name() + ".teacher_momentum",
                      "must be in (0, 1)");
    if constexpr (is_kl) {
      detail::require(o.prototypes >= 2, "tasks.mim_kl.prototypes", "must be at least 2");
      detail::require(o.student_temperature > 0, "tasks.mim_kl.student_temperature", "must be positive");
      detail::require(o.teacher_temperature > 0, "tasks.mim_kl.teacher_temperature", "must be positive");
      detail::require_share(o.center_momentum, "tasks.mim_kl.center_momentum");
    }
  }
  static double patch_mask_ratio(const Options& o) { return o.mask_ratio; }
  static Head make_head(const ModelConfig& c, const Options& o) {
    if constexpr (is_kl) return Head(c.fusion.width, c.image.width, o.prototypes);
    else return Head(c.fusion.width, c.image.width);
  }

  template <class ModelImpl>
  static losses::LossOutput loss(Head& head, ModelImpl&, const ImageTextView& view, TaskContext&, const Options& o) {
    const auto student = detail::at_positions(view.fused.image.tokens, view.patch_mask);
    const auto teacher = detail::at_positions(view.teacher.tokens, view.patch_mask);
    if constexpr (is_kl) {
      const auto teacher_logits = head->teacher_logits(teacher);
      auto out = losses::kl_distillation(head->student(student), teacher_logits, head->center,
                                         {o.student_temperature, o.teacher_temperature});
      head->update_center(teacher_logits, o.center_momentum);
      return out;
    } else {
      return losses::feature_regression(head(student), teacher);
    }
  }
};

/// A momentum distillation weight (ITC's and the retrieval tasks' `distill`).
inline void check_distill(double distill, const std::string& task) {
  detail::require(distill >= 0 && distill < 1, "tasks." + task + ".distill", "must be in [0, 1) (0 = off)");
}

struct ItcOptions : TemperatureOptions {
  /// ALBEF's momentum distillation: each direction mixes (1 - distill) InfoNCE with distill
  /// times the cross-entropy against the momentum model's softmax (0 = off; ALBEF uses 0.4).
  /// The momentum model is the weights' moving average (train.ema_decay) and sees the
  /// unmasked inputs; under train.views = "shared" ITC's own embeddings are of the masked view.
  double distill = 0;
};
template <class F> void visit_fields(ItcOptions& o, F&& f) {
  visit_fields(static_cast<TemperatureOptions&>(o), f);
  f("distill", o.distill);
}

/// Image-text contrastive: symmetric InfoNCE between the image and text embeddings, with a
/// learnable clamped temperature; items of the same product are not negatives.
template <gather::GatherPolicy Gather = gather::AcrossRanks>
struct ITC {
  static std::string name() { return "itc"; }
  static constexpr Pass pass = Pass::image_text;
  static constexpr Needs needs{.embeddings = true};
  using Head = Temperature;
  using Options = ItcOptions;
  static void check(const Options& o) {
    tasks::check(static_cast<const TemperatureOptions&>(o), name());
    check_distill(o.distill, name());
  }
  static Head make_head(const ModelConfig&, const Options& o) { return make_temperature(o); }
  /// The momentum model's image and text embeddings of the unmasked inputs, for distill.
  static Needs momentum_needs(const Options& o) { return {.embeddings = o.distill > 0}; }

  template <class ModelImpl>
  static losses::LossOutput loss(Head& head, ModelImpl&, const ImageTextView& view, TaskContext&, const Options& o) {
    const auto& products = view.batch->product_ids;
    // Distilled, the momentum model's embeddings are required (the step computes them).
    const losses::MomentumTeacher teacher{view.momentum_image_embedding, view.momentum_text_embedding, o.distill};
    auto out = losses::symmetric_info_nce(view.image_embedding, view.text_embedding, head->forward(),
                                          {products, products, {}}, Gather{}, teacher);
    out.parts["temperature"] = head->forward().detach();
    return out;
  }
};

/// Image-text matching: a binary head on the fused representation tells matched pairs from
/// negatives; for every image a negative text and for every text a negative image, drawn by
/// the Negatives policy from the embeddings' similarity over the whole global batch (every
/// rank's items). Negative rows join the pass's one fusion call (prepare()).
template <class Negatives = negatives::Hard>
struct ITM {
  static std::string name() { return "itm"; }
  static constexpr Pass pass = Pass::image_text;
  static constexpr Needs needs{.embeddings = true, .clean_fusion = true};
  using Head = torch::nn::Linear;
  struct TemperedOptions {
    double negative_temperature = 0.07;  ///< Hard: negatives drawn by softmax(similarity / this)
    template <class F> friend void visit_fields(TemperedOptions& o, F&& f) {
      f("negative_temperature", o.negative_temperature);
    }
  };
  struct UntemperedOptions {  // negatives::Random: a temperature would do nothing
    template <class F> friend void visit_fields(UntemperedOptions&, F&&) {}
  };
  using Options = std::conditional_t<negatives::tempered<Negatives>, TemperedOptions, UntemperedOptions>;
  static void check(const Options& o) {
    if constexpr (negatives::tempered<Negatives>)
      detail::require(o.negative_temperature > 0, "tasks.itm.negative_temperature", "must be positive");
  }
  static double temperature(const Options& o) {
    if constexpr (negatives::tempered<Negatives>) return o.negative_temperature;
    else return 1.0;
  }
  static Head make_head(const ModelConfig& c) { return Head(c.fusion.width, 1); }

  template <class ModelImpl>
  static FusionRequest prepare(Head&, ModelImpl&, const ImageTextView& view, TaskContext& ctx, const Options& o) {
    // Candidates are the whole global batch: every rank's embeddings and products.
    const auto texts = dist::gather_rows(view.text_embedding.detach());
    const auto images = dist::gather_rows(view.image_embedding.detach()).all;
    const auto products = dist::gather_rows(view.batch->product_ids).all;
    const auto b = view.image_embedding.size(0);
    const auto rows = torch::arange(b, torch::kLong) + texts.offset;  // this rank's global rows
    const auto allowed = negatives::allowed(rows, texts.all.size(0), view.batch->product_ids, products);
    const auto image_to_text = torch::matmul(view.image_embedding.detach(), texts.all.t());  // [b, B]
    const auto text_to_image = torch::matmul(view.text_embedding.detach(), images.t());      // [b, B]
    const auto text_for_image =
        Negatives::sample(image_to_text, allowed, ctx.keys.uniforms(random::Stream::itm_text), temperature(o));
    const auto image_for_text =
        Negatives::sample(text_to_image, allowed, ctx.keys.uniforms(random::Stream::itm_image), temperature(o));
    const auto a = text_for_image.ge(0), c = image_for_text.ge(0);
    const auto device = view.image_embedding.device();
    return {torch::cat({text_for_image.index({a}), rows.index({c})}).to(device),
            torch::cat({rows.index({a}), image_for_text.index({c})}).to(device)};
  }

  template <class ModelImpl>
  static losses::LossOutput loss(Head& head, ModelImpl&, const ImageTextView& view, TaskContext&, const Options&) {
    const auto& negatives = view.requested_fused(name());
    const auto logits = head(torch::cat({view.clean_fused.pooled, negatives.pooled})).squeeze(-1);
    auto labels = torch::zeros({logits.size(0)}, logits.options().dtype(torch::kLong));
    labels.narrow(0, 0, view.clean_fused.pooled.size(0)).fill_(1);
    auto out = losses::binary_match(logits, labels);
    out.parts["accuracy"] = logits.gt(0).eq(labels.to(torch::kBool)).to(torch::kFloat).mean().detach();
    return out;
  }
};

}  // namespace tasks
}  // namespace commercemm
