#pragma once
// The unit of data every model call and task consumes.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace commercemm {

/// A batch of B items. Any modality may be absent: an undefined tensor means "this batch has
/// no such modality" (never zero-filled), so encoders and fusion skip it entirely.
struct Batch {
  torch::Tensor text_ids;   ///< [B, Lt] int64 token ids (padding id 0 where text_mask is 0)
  torch::Tensor text_mask;  ///< [B, Lt] int64/bool, 1 = token, 0 = padding
  torch::Tensor images;     ///< [B, 3, H, W] float, normalised
  torch::Tensor product_ids;  ///< [B] int64: items sharing a product id are never negatives
  /// [B] bool, for batches that mix items with and without a modality (retrieval sources: a
  /// query has no image). Rows marked false hold padding (zeros, an empty text) and take part
  /// in no loss. Undefined = every row has the modality (when its tensor is defined).
  torch::Tensor text_present;
  torch::Tensor image_present;
  std::vector<std::string> item_ids;  ///< [B] the manifest ids, for reports and embeddings
  /// [B] pass-B sources: each row's pair kind ("query", "review", ...); empty otherwise.
  std::vector<std::string> kinds;
  /// [B] int64 CPU: each row's index in the step's *global* batch (all ranks together), the
  /// key of its per-sample random draws (masks, negatives, dropout). Undefined = 0..B-1, as
  /// for a single process that holds the whole batch.
  torch::Tensor sample_index;

  bool has_text() const { return text_ids.defined(); }
  bool has_images() const { return images.defined(); }
  /// [B] bool, on the batch's device: rows that have text (an image). All false when the
  /// batch has no such modality, all true when it has it and no presence mask.
  torch::Tensor text_rows() const { return rows(text_ids, text_present); }
  torch::Tensor image_rows() const { return rows(images, image_present); }
  /// B, read from whichever modality is present (0 for an empty batch).
  std::int64_t size() const {
    if (text_ids.defined()) return text_ids.size(0);
    if (images.defined()) return images.size(0);
    return 0;
  }

 private:
  torch::Tensor rows(const torch::Tensor& data, const torch::Tensor& present) const {
    const auto on = (text_ids.defined() ? text_ids : images).options().dtype(torch::kBool);
    if (!data.defined()) return torch::zeros({size()}, on);
    return present.defined() ? present.to(on.device(), torch::kBool) : torch::ones({size()}, on);
  }
};

/// batch.sample_index as a vector (0..B-1 when undefined).
inline std::vector<std::int64_t> sample_indices(const Batch& batch) {
  const auto b = batch.size();
  std::vector<std::int64_t> out(static_cast<std::size_t>(b));
  if (!batch.sample_index.defined()) {
    for (std::int64_t i = 0; i < b; ++i) out[static_cast<std::size_t>(i)] = i;
    return out;
  }
  const auto index = batch.sample_index.to(torch::kCPU, torch::kLong).contiguous();
  TORCH_CHECK(index.numel() == b, "Batch::sample_index must have one entry per row");
  const auto* p = index.data_ptr<std::int64_t>();
  out.assign(p, p + b);
  return out;
}

}  // namespace commercemm
