#pragma once
// Embeddings of a set of items (a split's catalog, or its sources of one pair kind), with
// what the downstream tasks score them by: the manifest items, their products, and the raw
// pixels and texts the reference rows need.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/config.hpp>
#include <commercemm/core/embeddings.hpp>
#include <commercemm/data/loader.hpp>
#include <commercemm/eval/baselines.hpp>

namespace commercemm::eval {

struct EmbeddedSet {
  std::vector<const data::Item*> items;   ///< [N] the manifest items, in row order
  torch::Tensor image, text, multimodal;  ///< [N, D] each, undefined where the set lacks it
  torch::Tensor products;                 ///< [N] int64 dense product ids (shared ProductIndex)
  torch::Tensor pixels;                   ///< [N, P] pixel_features, when asked for
  torch::Tensor labels;                   ///< [N] int64 classes of a set without manifest items (Fashion-MNIST)
  double model_seconds = 0;               ///< time spent in the model (embedding cost)

  std::int64_t size() const { return products.defined() ? products.size(0) : 0; }
  const torch::Tensor& get(Modality m) const {
    return m == Modality::image ? image : m == Modality::text ? text : multimodal;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto* item : items) out.push_back(item->text());
    return out;
  }
};

/// A model's embedding function (bound to a fusion split); empty when only pixels are wanted.
using EmbedFunction = std::function<Embeddings(const Batch&)>;

/// Runs `records` (their sources) through `embed` in order, no augmentation. Rows whose image
/// fails to decode are skipped by the loader (and counted there); `table` maps ids to items.
inline EmbeddedSet embed_records(std::vector<data::Record> records, const data::ItemTable& table,
                                 std::shared_ptr<const data::Tokenizer> tokenizer, const Config& config,
                                 const EmbedFunction& embed, bool keep_pixels) {
  data::Loader loader(std::move(records), std::move(tokenizer),
                     data::loader_options(config, config.eval.batch_size, false));
  EmbeddedSet out;
  std::vector<torch::Tensor> image, text, multimodal, products, pixels;
  while (auto batch = loader.next()) {
    const Batch& b = batch->source;
    for (const auto& id : b.item_ids) {
      const auto* item = table.find(id);
      if (!item) throw Error(Location{"", 0, "id"}, "item '" + id + "' is not in the manifest it came from");
      out.items.push_back(item);
    }
    products.push_back(b.product_ids);
    if (keep_pixels && b.has_images()) pixels.push_back(pixel_features(b.images));
    if (!embed) continue;
    const auto started = std::chrono::steady_clock::now();
    auto e = embed(b);
    out.model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    auto keep = [](std::vector<torch::Tensor>& into, const torch::Tensor& t) {
      if (t.defined()) into.push_back(t.detach().to(torch::kFloat32));
    };
    keep(image, e.image), keep(text, e.text), keep(multimodal, e.multimodal);
  }
  // A set is uniform (every row has the same modalities), so a tensor covers all rows or none.
  auto cat = [&](std::vector<torch::Tensor>& parts) {
    if (parts.empty()) return torch::Tensor();
    auto all = torch::cat(parts);
    if (all.size(0) != static_cast<std::int64_t>(out.items.size())) throw Error(Location{"", 0, ""}, "a set mixes items with and without a modality");
    return all;
  };
  out.image = cat(image), out.text = cat(text), out.multimodal = cat(multimodal), out.pixels = cat(pixels);
  out.products = products.empty() ? torch::empty({0}, torch::kLong) : torch::cat(products);
  return out;
}

}  // namespace commercemm::eval
