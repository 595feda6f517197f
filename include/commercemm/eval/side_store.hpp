#pragma once
// eval::SideStore: the per-modality states of embedded items, kept so that `embed --update`
// reruns an encoder only for what changed. Below the fusion split each modality runs alone
// (Model::cache_image / cache_text), so an image's side and a title's side are each a function
// of that input only: stored under a key of the encoder's input (the decoded image's pixels,
// the title's token ids), they are reused by any item showing the same photo or title.
//
// On disk (a directory, `sides/` beside the embeddings), per modality m in {image, text}:
//   m_keys.npy [n] int64 (the 64-bit keys), m_embeddings.npy [n, D] float32,
//   m_tokens.npy [n, S, W] float32 (each side's real tokens first, zero padding after),
//   m_lengths.npy [n] int64 (real tokens per side),
// and sides.json, written last: the model's fingerprint, the fusion split, the precision, the
// dtype each modality's sides had in the model (bf16 round-trips through float32 exactly) and
// the row counts. Sides from another model, split or precision would give wrong embeddings
// silently, so load() refuses them with an error naming the field.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

#include <torch/types.h>

#include <commercemm/core/linkage.hpp>
#include <commercemm/core/modality.hpp>

namespace torch::nn {
class Module;
}

namespace commercemm::eval {

/// What the stored sides depend on besides their inputs: a store is reusable only under an
/// equal header.
struct SideStoreHeader {
  std::string model_fingerprint;  ///< model_fingerprint() of the model that computed them
  std::int64_t fusion_split = 0;  ///< eval.fusion_split: the layers each side ran alone
  std::string precision;          ///< train.precision, "fp32" or "bf16": the sides' arithmetic
  bool operator==(const SideStoreHeader&) const = default;
};

/// One stored side: the modality's embedding [D] (float32) and its fusion-side tokens [S, W]
/// (real tokens only, in the dtype the model gave them).
struct StoredSide {
  torch::Tensor embedding;
  torch::Tensor tokens;
};

class SideStore {
 public:
  explicit SideStore(SideStoreHeader header) : header_(std::move(header)) {}

  const SideStoreHeader& header() const { return header_; }
  /// The side stored under `key` for `modality` (Modality::image or text), or nullptr.
  const StoredSide* find(Modality modality, std::uint64_t key) const {
    const auto& table = sides(modality);
    const auto found = table.find(key);
    return found == table.end() ? nullptr : &found->second;
  }
  void put(Modality modality, std::uint64_t key, StoredSide side) { sides(modality)[key] = std::move(side); }
  std::size_t size(Modality modality) const { return sides(modality).size(); }
  void clear() { image_.clear(), text_.clear(); }

  /// Writes the store to `dir` (created if needed); sides.json is removed first and written
  /// last, so an interrupted save is refused by load().
  COMMERCEMM_DECL void save(const std::filesystem::path& dir) const;
  /// Reads a store written by save(). Throws commercemm::Error naming the file for a missing
  /// or inconsistent one, and naming the field when `expected` (the current model, split and
  /// precision) differs from what the store was computed with.
  COMMERCEMM_DECL static SideStore load(const std::filesystem::path& dir, const SideStoreHeader& expected);

 private:
  using Table = std::unordered_map<std::uint64_t, StoredSide>;
  Table& sides(Modality m) { return m == Modality::image ? image_ : text_; }
  const Table& sides(Modality m) const { return m == Modality::image ? image_ : text_; }

  SideStoreHeader header_;
  Table image_, text_;
};

/// FNV-1a 64 of a tensor's bytes (made contiguous on the CPU): the key of an encoder input.
COMMERCEMM_DECL std::uint64_t content_key(const torch::Tensor& tensor);
/// A fingerprint of a module's parameters and buffers (names, dtypes, shapes and values), as
/// 16 hex digits: equal for the same weights, whatever file they were loaded from.
COMMERCEMM_DECL std::string model_fingerprint(const torch::nn::Module& module);

}  // namespace commercemm::eval

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/eval/impl/side_store.ipp>
#endif
