#pragma once
// The Fusion concept: what cmm::Model needs from its third template argument.
#include <concepts>
#include <cstdint>

#include <torch/types.h>

#include <commercemm/core/modality.hpp>
#include <commercemm/core/model_config.hpp>
#include <commercemm/encoders/encoder.hpp>

namespace commercemm {

/// Where modality randomization splits the fusion stack: layers below `layers_alone` run each
/// modality alone (attention within its own tokens, weights shared by both modalities);
/// layers from there up run jointly over [text; image].
///  - FusionSplit{0} (the default): the deepest fusion, every layer joint.
///  - FusionSplit{depth}: no joint layer; text-side and image-side outputs never read each
///    other, so they can be computed and cached separately (a two-tower model).
struct FusionSplit {
  std::int64_t layers_alone = 0;
};

/// One modality's state at a fusion split: its tokens after the fusion layers that run it
/// alone. It depends on that modality only, so it can be computed once and reused when the
/// other modality of an item changes (a new title on the same photo reruns the text side).
/// Undefined tokens = the modality is absent.
struct FusionSide {
  TokenSequence state;      ///< [B, 1 + L, W]; [B, 1, W] (the CLS alone) when kept for pooling at the two-tower split
  FusionSplit split;        ///< the split it was computed at; joining sides of two splits is an error
  bool defined() const { return state.defined(); }
};

/// The fusion stack's output; a side is undefined when that modality was absent.
struct FusionOutput {
  TokenSequence text;    ///< [B, 1 + Lt, W] fused text tokens (MLM reads these)
  TokenSequence image;   ///< [B, 1 + N, W] fused image patches (MIM reads these)
  torch::Tensor pooled;  ///< [B, W] the multimodal representation (ITM and the multimodal embedding)
};

namespace fusion {

/// A fusion module is a ModuleHolder whose module
///  - is constructible from (FusionConfig, text_width, image_width);
///  - forward(text TokenSequence, image TokenSequence, FusionSplit) -> FusionOutput, where
///    either input may be absent (undefined tokens) but not both;
///  - width() -> W and depth() -> number of layers (the largest meaningful split).
template <class F>
concept Fusion = std::constructible_from<F, const FusionConfig&, std::int64_t, std::int64_t> &&
    requires(F f, const TokenSequence& s, FusionSplit split) {
      { f->forward(s, s, split) } -> std::same_as<FusionOutput>;
      { f->width() } -> std::convertible_to<std::int64_t>;
      { f->depth() } -> std::convertible_to<std::int64_t>;
    };

/// A fusion whose stack can be run in two parts, so an item's per-modality states can be cached
/// (Model::cache_image / cache_text / embed_multimodal need it):
///  - alone(sequence, modality, split) -> FusionSide: the input projection and the
///    `split.layers_alone` layers of one modality (Modality::text or Modality::image);
///  - pool(text side, image side) -> [B, W]: the joint layers and the pooled representation,
///    equal to forward(text, image, split).pooled; either side may be absent, not both.
template <class F>
concept SplittableFusion = Fusion<F> && requires(F f, const TokenSequence& s, const FusionSide& side, FusionSplit split) {
  { f->alone(s, Modality::text, split) } -> std::same_as<FusionSide>;
  { f->pool(side, side) } -> std::same_as<torch::Tensor>;
};

}  // namespace fusion
}  // namespace commercemm
