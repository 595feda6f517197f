#pragma once
// eval::embed_items: the image, text and multimodal embeddings of a loader's items, computed
// side by side (Model::cache_image / cache_text, then embed_multimodal), so that a side stored
// by an earlier run (eval::SideStore) is reused instead of rerunning its encoder: the `embed`
// command, with and without --update.
//
// Each item's multimodal embedding fuses the modalities it has, and only those: rows are
// joined in groups of one presence pattern (image and text, text only, image only), so an
// item's embedding never depends on the other items of its batch.
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/data/loader.hpp>
#include <commercemm/eval/side_store.hpp>
#include <commercemm/fusion/fusion.hpp>
#include <commercemm/model.hpp>
#include <commercemm/train/autocast.hpp>

namespace commercemm::eval {

/// Distinct sides (photos, titles) an embed_items call ran the encoder for, and those it took
/// from the previous store. Items sharing a photo or a title share its side.
struct SideCounts {
  std::int64_t encoded = 0, reused = 0;
};

struct ItemEmbeddings {
  torch::Tensor image, text, multimodal;  ///< [n, D] float32; NaN rows where the item lacks the modality
  std::vector<std::string> ids;           ///< row i's manifest id
  SideCounts image_sides, text_sides;
};

namespace item_detail {

/// Row r's key: its decoded pixels, or its token ids up to the mask's length.
inline std::uint64_t key_of(const Batch& b, Modality m, std::int64_t r) {
  if (m == Modality::image) return content_key(b.images[r]);
  const auto length = b.text_mask[r].sum().item<std::int64_t>();
  return content_key(b.text_ids[r].narrow(0, 0, length));
}

/// The sides of `rows` stacked for embed_multimodal: tokens padded to the longest with a
/// validity mask, or no mask when every side is whole (as the encoders give image sides).
inline ModalityCache stack(const std::vector<const StoredSide*>& rows, FusionSplit split) {
  std::int64_t longest = 0;
  bool ragged = false;
  for (const auto* s : rows) {
    ragged |= longest != 0 && s->tokens.size(0) != longest;
    longest = std::max(longest, s->tokens.size(0));
  }
  const auto& first = rows.front()->tokens;
  const auto n = static_cast<std::int64_t>(rows.size());
  auto tokens = torch::zeros({n, longest, first.size(1)}, first.options());
  torch::Tensor valid = ragged ? torch::zeros({n, longest}, torch::kBool) : torch::Tensor();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto length = rows[static_cast<std::size_t>(i)]->tokens.size(0);
    tokens[i].narrow(0, 0, length).copy_(rows[static_cast<std::size_t>(i)]->tokens);
    if (ragged) valid[i].narrow(0, 0, length).fill_(true);
  }
  ModalityCache out;
  out.side = {{tokens, valid}, split};
  return out;
}

}  // namespace item_detail

/// Embeds every item `loader` yields with `model` (in eval mode, on the CPU) at `split` and
/// `precision`.
/// Sides found in `previous` (an earlier run's store, checked compatible by its load) are
/// reused; the others are computed. Every side the items use ends in `store`; with
/// `keep = false` it is emptied after each batch, so memory stays one batch's worth.
template <class Model>
ItemEmbeddings embed_items(Model& model, data::Loader& loader, FusionSplit split, const std::string& precision,
                           SideStore& store, const SideStore* previous = nullptr, bool keep = true) {
  torch::NoGradGuard no_grad;
  train::AutocastGuard autocast(precision);
  ItemEmbeddings out;
  std::vector<torch::Tensor> image, text, multimodal;
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  const auto d = model->config().embed_dim;
  while (auto next = loader.next()) {
    const Batch& b = next->source;
    const auto n = b.size();
    const auto has_image = b.image_rows().to(torch::kCPU), has_text = b.text_rows().to(torch::kCPU);
    std::vector<std::vector<const StoredSide*>> found(2, std::vector<const StoredSide*>(static_cast<std::size_t>(n)));
    for (const auto m : {Modality::image, Modality::text}) {
      const bool is_image = m == Modality::image;
      const auto present = (is_image ? has_image : has_text).template accessor<bool, 1>();
      auto& counts = is_image ? out.image_sides : out.text_sides;
      std::vector<std::uint64_t> keys(static_cast<std::size_t>(n));
      std::vector<std::int64_t> missing;  // one row per side no store holds
      std::unordered_set<std::uint64_t> queued;
      for (std::int64_t r = 0; r < n; ++r) {
        if (!present[r]) continue;
        const auto key = keys[static_cast<std::size_t>(r)] = item_detail::key_of(b, m, r);
        if (store.find(m, key) || queued.count(key) != 0) continue;
        if (const auto* old = previous ? previous->find(m, key) : nullptr) {
          store.put(m, key, *old);
          ++counts.reused;
        } else {
          queued.insert(key);
          missing.push_back(r);
        }
      }
      if (!missing.empty()) {
        const auto rows = torch::tensor(missing, torch::kLong);
        const auto cache = is_image ? model->cache_image(b.images.index_select(0, rows), split)
                                    : model->cache_text(b.text_ids.index_select(0, rows), b.text_mask.index_select(0, rows), split);
        const auto& state = cache.side.state;
        for (std::size_t i = 0; i < missing.size(); ++i) {
          const auto j = static_cast<std::int64_t>(i);
          const auto length = state.valid.defined() ? state.valid[j].sum().template item<std::int64_t>() : state.tokens.size(1);
          store.put(m, keys[static_cast<std::size_t>(missing[i])],
                    {cache.embedding[j].to(torch::kCPU, torch::kFloat).clone(),
                     state.tokens[j].narrow(0, 0, length).to(torch::kCPU).clone()});
        }
        counts.encoded += static_cast<std::int64_t>(missing.size());
      }
      for (std::int64_t r = 0; r < n; ++r)
        if (present[r]) found[is_image ? 0 : 1][static_cast<std::size_t>(r)] = store.find(m, keys[static_cast<std::size_t>(r)]);
    }

    auto image_rows = torch::full({n, d}, nan), text_rows = torch::full({n, d}, nan), joint = torch::full({n, d}, nan);
    for (std::int64_t r = 0; r < n; ++r) {
      if (const auto* s = found[0][static_cast<std::size_t>(r)]) image_rows[r].copy_(s->embedding);
      if (const auto* s = found[1][static_cast<std::size_t>(r)]) text_rows[r].copy_(s->embedding);
    }
    // Join each presence pattern apart: an item fuses what it has and nothing of its neighbours.
    for (const auto& [with_image, with_text] : {std::pair{true, true}, std::pair{false, true}, std::pair{true, false}}) {
      std::vector<std::int64_t> group;
      std::vector<const StoredSide*> images, texts;
      for (std::int64_t r = 0; r < n; ++r) {
        const auto* i = found[0][static_cast<std::size_t>(r)];
        const auto* t = found[1][static_cast<std::size_t>(r)];
        if ((i != nullptr) != with_image || (t != nullptr) != with_text) continue;
        group.push_back(r);
        if (i) images.push_back(i);
        if (t) texts.push_back(t);
      }
      if (group.empty()) continue;
      const auto image_side = with_image ? item_detail::stack(images, split) : ModalityCache{};
      const auto text_side = with_text ? item_detail::stack(texts, split) : ModalityCache{};
      const auto fused = model->embed_multimodal(text_side, image_side).to(torch::kCPU, torch::kFloat);
      joint.index_copy_(0, torch::tensor(group, torch::kLong), fused);
    }
    image.push_back(image_rows), text.push_back(text_rows), multimodal.push_back(joint);
    out.ids.insert(out.ids.end(), b.item_ids.begin(), b.item_ids.end());
    if (!keep) store.clear();
  }
  if (!out.ids.empty()) out.image = torch::cat(image), out.text = torch::cat(text), out.multimodal = torch::cat(multimodal);
  return out;
}

}  // namespace commercemm::eval
