#pragma once
// Pass B's network calls: each network once over [source rows; target rows], the embeddings
// split back per side, and one fusion call when a task needs multimodal embeddings.
#include <cstdint>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/modality.hpp>
#include <commercemm/tasks/task.hpp>
#include <commercemm/train/token_rows.hpp>

namespace commercemm::train {

// Each network once over [source rows; target rows]; embeddings split back per side.
template <class ModelImpl>
void encode_cross_pairs(ModelImpl& model, const Batch& source, const Batch& target, Modalities src, Modalities tgt,
                        CrossPairView& view, FusionSplit split) {
  const auto bs = source.size(), bt = target.size();
  const bool mm = src.has(Modality::multimodal) || tgt.has(Modality::multimodal);
  const bool src_text = source.has_text() && (src.has(Modality::text) || src.has(Modality::multimodal));
  const bool tgt_text = target.has_text() && (tgt.has(Modality::text) || tgt.has(Modality::multimodal));
  const bool src_image = source.has_images() && (src.has(Modality::image) || src.has(Modality::multimodal));
  const bool tgt_image = target.has_images() && (tgt.has(Modality::image) || tgt.has(Modality::multimodal));

  TokenSequence s_text, t_text, s_image, t_image;
  if (src_text && tgt_text) {
    auto [ids, mask] = detail::cat_text(source, target);
    const auto both = model.encode_text(ids, mask);
    s_text = {both.tokens.narrow(0, 0, bs), both.valid.narrow(0, 0, bs)};
    t_text = {both.tokens.narrow(0, bs, bt), both.valid.narrow(0, bs, bt)};
  } else if (src_text) {
    s_text = model.encode_text(source.text_ids, source.text_mask);
  } else if (tgt_text) {
    t_text = model.encode_text(target.text_ids, target.text_mask);
  }
  if (src_image && tgt_image) {
    const auto both = model.encode_image(torch::cat({source.images, target.images}));
    s_image = {both.tokens.narrow(0, 0, bs), {}};
    t_image = {both.tokens.narrow(0, bs, bt), {}};
  } else if (src_image) {
    s_image = model.encode_image(source.images);
  } else if (tgt_image) {
    t_image = model.encode_image(target.images);
  }
  // Rows that lack a modality (queries without images, dropped modalities) are invalid.
  s_text = detail::restrict_rows(s_text, source.text_present);
  s_image = detail::restrict_rows(s_image, source.image_present);
  t_text = detail::restrict_rows(t_text, target.text_present);
  t_image = detail::restrict_rows(t_image, target.image_present);

  if (src.has(Modality::text) && s_text.defined()) view.source_embeddings.text = model.embed_text(s_text);
  if (src.has(Modality::image) && s_image.defined()) view.source_embeddings.image = model.embed_image(s_image);
  if (tgt.has(Modality::text) && t_text.defined()) view.target_embeddings.text = model.embed_text(t_text);
  if (tgt.has(Modality::image) && t_image.defined()) view.target_embeddings.image = model.embed_image(t_image);
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
  const auto fused = model.embed_multimodal(model.fuse(text, image, split));
  if (src.has(Modality::multimodal)) view.source_embeddings.multimodal = fused.narrow(0, 0, bs);
  if (tgt.has(Modality::multimodal)) view.target_embeddings.multimodal = fused.narrow(0, bs, bt);
}


}  // namespace commercemm::train
