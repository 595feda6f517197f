#pragma once
// Pretrained encoders from safetensors files: Hugging Face's ViT (google/vit-base-patch16-224
// naming) into encoders::ViT, Hugging Face's BERT (bert-base-uncased naming) into
// encoders::TextTransformer with model.text.norm = "post", and this library's own names (what
// `commercemm export` and `commercemm import` write) into any encoder.
//
// Every tensor is checked before any is copied: a missing name, a wrong shape or a
// non-floating dtype is an Error naming the file and the tensor (the file's name, and ours).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/core/model_config.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/train/safetensors.hpp>
#include <commercemm/train/tokenizer_setup.hpp>

namespace commercemm::train {

/// The naming a weights file uses.
enum class WeightNaming { commercemm, hugging_face_vit, hugging_face_bert };

/// A tensor under the model's name, with the file's name for it (for errors).
struct MappedTensor {
  torch::Tensor tensor;
  std::string from;
};
using MappedTensors = std::map<std::string, MappedTensor>;

namespace detail {

/// Hands out a file's tensors by their names (with or without the model-class prefix such as
/// "vit." or "bert.") and, at the end, refuses any it did not hand out, except the parts of the
/// public checkpoints that have no counterpart here (poolers, classifier and MLM heads).
class NameTaker {
 public:
  NameTaker(const Safetensors& file, std::string path, std::string prefix, std::vector<std::string> ignorable)
      : file_(file), path_(std::move(path)), prefix_(std::move(prefix)), ignorable_(std::move(ignorable)) {}

  bool has(const std::string& name) const { return find(name) != file_.tensors.end(); }

  /// The tensor `name`: it must exist and be floating point.
  torch::Tensor take(const std::string& name) {
    const auto found = find(name);
    if (found == file_.tensors.end()) throw Error(Location{path_, 0, name}, "missing from the file");
    const auto& [full, tensor] = *found;
    if (!torch::isFloatingType(tensor.scalar_type()))
      throw Error(Location{path_, 0, full}, std::string("has dtype ") + c10::toString(tensor.scalar_type()) +
                                                ", a weight must be floating point (F32, F16, BF16 or F64)");
    taken_.insert(full);
    return tensor.to(torch::kFloat32);
  }

  /// Throws for a name nobody took that is not one of the known extras; returns those extras.
  std::vector<std::string> finish() const {
    std::vector<std::string> ignored;
    for (const auto& [name, tensor] : file_.tensors) {
      if (taken_.count(name)) continue;
      std::string bare = name.rfind(prefix_, 0) == 0 ? name.substr(prefix_.size()) : name;
      bool known = false;
      for (const auto& p : ignorable_) known = known || bare.rfind(p, 0) == 0 || name.rfind(p, 0) == 0;
      if (!known)
        throw Error(Location{path_, 0, name}, "has no counterpart in the model (not a checkpoint of this kind?)");
      ignored.push_back(name);
    }
    return ignored;
  }

 private:
  /// `name` as it is, else under the prefix.
  std::map<std::string, torch::Tensor>::const_iterator find(const std::string& name) const {
    const auto it = file_.tensors.find(name);
    return it != file_.tensors.end() ? it : file_.tensors.find(prefix_ + name);
  }

  const Safetensors& file_;
  std::string path_, prefix_;
  std::vector<std::string> ignorable_;
  std::set<std::string> taken_;
};

inline std::int64_t count_layers(const Safetensors& file, const std::string& path, const std::string& marker) {
  std::int64_t layers = 0;
  for (const auto& [name, tensor] : file.tensors) {
    const auto at = name.find(marker);
    if (at == std::string::npos) continue;
    const auto begin = at + marker.size(), end = name.find('.', begin);
    try {
      layers = std::max<std::int64_t>(layers, std::stoll(name.substr(begin, end - begin)) + 1);
    } catch (const std::exception&) {
      throw Error(Location{path, 0, name}, "a layer index that is not a number");
    }
  }
  return layers;
}

inline void require_layers(const Safetensors& file, const std::string& path, const std::string& marker,
                           std::int64_t layers, const char* key) {
  const auto found = count_layers(file, path, marker);
  if (found != layers)
    throw Error(Location{path, 0, key}, "the file holds " + std::to_string(found) + " layers ('" + marker +
                                            "N.'), the config asks for " + std::to_string(layers));
}

/// q, k and v projections -> our fused qkv (rows in that order).
inline void map_attention(NameTaker& file, MappedTensors& out, const std::string& from, const std::string& to) {
  for (const char* part : {"weight", "bias"}) {
    const std::string p = part;
    out[to + ".qkv." + p] = {torch::cat({file.take(from + "query." + p), file.take(from + "key." + p),
                                         file.take(from + "value." + p)}),
                             from + "{query,key,value}." + p};
  }
}

/// from.{weight, bias} (or the names given) -> to.weight, to.bias.
inline void map_linear(NameTaker& file, MappedTensors& out, const std::string& from, const std::string& to,
                       const std::string& weight = "weight", const std::string& bias = "bias") {
  out[to + ".weight"] = {file.take(from + "." + weight), from + "." + weight};
  out[to + ".bias"] = {file.take(from + "." + bias), from + "." + bias};
}

/// LayerNorm, under the current names (weight, bias) or the original BERT's (gamma, beta).
inline void map_norm(NameTaker& file, MappedTensors& out, const std::string& from, const std::string& to) {
  const bool old = !file.has(from + ".weight") && file.has(from + ".gamma");
  map_linear(file, out, from, to, old ? "gamma" : "weight", old ? "beta" : "bias");
}

}  // namespace detail

/// The naming of `file`'s tensors, from the names only Hugging Face's ViT or BERT have.
inline WeightNaming naming_of(const Safetensors& file) {
  for (const char* prefix : {"", "vit."})
    if (file.tensors.count(std::string(prefix) + "embeddings.patch_embeddings.projection.weight"))
      return WeightNaming::hugging_face_vit;
  for (const char* prefix : {"", "bert."})
    if (file.tensors.count(std::string(prefix) + "embeddings.word_embeddings.weight"))
      return WeightNaming::hugging_face_bert;
  return WeightNaming::commercemm;
}

/// Hugging Face ViTModel / ViTForImageClassification tensors ("vit." prefix optional) under
/// encoders::ViT's names. The model's image_size, patch_size, width and layers must be the
/// file's (ViT-B/16: 224, 16, 768, 12); the pooler and classifier are left out (and listed in
/// `ignored`). HF ViT has no mask token unless trained with one: ours then keeps its init.
inline MappedTensors vit_from_hugging_face(const Safetensors& file, const ImageEncoderConfig& config,
                                           const std::string& path, std::vector<std::string>* ignored = nullptr) {
  detail::require_layers(file, path, "encoder.layer.", config.layers, "model.image.layers");
  detail::NameTaker names(file, path, "vit.", {"pooler.", "classifier."});
  MappedTensors out;
  out["cls_token"] = {names.take("embeddings.cls_token"), "embeddings.cls_token"};
  out["positions"] = {names.take("embeddings.position_embeddings"), "embeddings.position_embeddings"};
  if (names.has("embeddings.mask_token")) out["mask_token"] = {names.take("embeddings.mask_token"), "embeddings.mask_token"};
  detail::map_linear(names, out, "embeddings.patch_embeddings.projection", "patch_embed");
  for (std::int64_t i = 0; i < config.layers; ++i) {
    const std::string from = "encoder.layer." + std::to_string(i) + ".", to = "blocks." + std::to_string(i) + ".";
    detail::map_norm(names, out, from + "layernorm_before", to + "norm1");
    detail::map_attention(names, out, from + "attention.attention.", to + "attn");
    detail::map_linear(names, out, from + "attention.output.dense", to + "attn.proj");
    detail::map_norm(names, out, from + "layernorm_after", to + "norm2");
    detail::map_linear(names, out, from + "intermediate.dense", to + "fc1");
    detail::map_linear(names, out, from + "output.dense", to + "fc2");
  }
  detail::map_norm(names, out, "layernorm", "norm");
  auto left = names.finish();
  if (ignored) *ignored = std::move(left);
  return out;
}

/// Hugging Face BertModel / BertForMaskedLM tensors ("bert." prefix optional) under
/// encoders::TextTransformer's names, for model.text.norm = "post". BERT's [CLS] is a token:
/// its embedding (row `cls_id` of the vocabulary) becomes our CLS, which sits at position 0 as
/// BERT's does; the token-type-0 embedding is folded into the positions. So max_length text
/// tokens need max_length + 1 of BERT's positions (511 of 512 for bert-base).
inline MappedTensors bert_from_hugging_face(const Safetensors& file, const TextEncoderConfig& config,
                                            std::int64_t cls_id, const std::string& path,
                                            std::vector<std::string>* ignored = nullptr) {
  if (config.norm != "post")
    throw Error(Location{path, 0, "model.text.norm"},
                "BERT's weights are post-LN (a LayerNorm after each residual sum): set model.text.norm = \"post\"");
  detail::require_layers(file, path, "encoder.layer.", config.layers, "model.text.layers");
  detail::NameTaker names(file, path, "bert.", {"pooler.", "cls.", "embeddings.position_ids"});
  MappedTensors out;
  const auto words = names.take("embeddings.word_embeddings.weight");
  if (words.dim() != 2 || words.size(0) != config.vocab_size)
    throw Error(Location{path, 0, "embeddings.word_embeddings.weight"},
                "shape " + shape_string(words) + ": the tokenizer's vocabulary has " +
                    std::to_string(config.vocab_size) + " tokens (use the checkpoint's own vocab.txt)");
  if (cls_id < 0 || cls_id >= words.size(0))
    throw Error(Location{path, 0, "[CLS]"}, "the vocabulary has no [CLS] token for BERT's CLS embedding");
  out["embedding.weight"] = {words, "embeddings.word_embeddings.weight"};
  out["cls_token"] = {words[cls_id].view({1, 1, -1}), "embeddings.word_embeddings.weight[" + std::to_string(cls_id) + "]"};
  const auto positions = names.take("embeddings.position_embeddings.weight");
  const auto types = names.take("embeddings.token_type_embeddings.weight");
  if (positions.dim() != 2 || positions.size(0) < config.max_length + 1)
    throw Error(Location{path, 0, "embeddings.position_embeddings.weight"},
                "shape " + shape_string(positions) + " has fewer than model.text.max_length + 1 = " +
                    std::to_string(config.max_length + 1) + " positions (the CLS takes one)");
  if (types.dim() != 2 || types.size(0) < 1 || types.size(1) != positions.size(1))
    throw Error(Location{path, 0, "embeddings.token_type_embeddings.weight"},
                "shape " + shape_string(types) + " does not match the position embeddings'");
  out["positions"] = {(positions.narrow(0, 0, config.max_length + 1) + types[0]).unsqueeze(0),
                      "embeddings.position_embeddings.weight + embeddings.token_type_embeddings.weight[0]"};
  detail::map_norm(names, out, "embeddings.LayerNorm", "norm");
  for (std::int64_t i = 0; i < config.layers; ++i) {
    const std::string from = "encoder.layer." + std::to_string(i) + ".", to = "blocks." + std::to_string(i) + ".";
    detail::map_attention(names, out, from + "attention.self.", to + "attn");
    detail::map_linear(names, out, from + "attention.output.dense", to + "attn.proj");
    detail::map_norm(names, out, from + "attention.output.LayerNorm", to + "norm1");
    detail::map_linear(names, out, from + "intermediate.dense", to + "fc1");
    detail::map_linear(names, out, from + "output.dense", to + "fc2");
    detail::map_norm(names, out, from + "output.LayerNorm", to + "norm2");
  }
  auto left = names.finish();
  if (ignored) *ignored = std::move(left);
  return out;
}

/// This library's names: the tensors under `prefix` ("image_encoder.", "text_encoder.", as a
/// whole model's file holds them), with the prefix taken off.
inline MappedTensors under_prefix(const Safetensors& file, const std::string& prefix, const std::string& path) {
  MappedTensors out;
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = {tensor, name};
  if (out.empty())
    throw Error(Location{path, 0, prefix + "*"}, "the file holds no tensor under this prefix, nor Hugging Face "
                                                 "ViT or BERT names");
  return out;
}

/// Every parameter and buffer of `module`, by name: what `export` writes.
inline std::map<std::string, torch::Tensor> named_tensors(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.value();
  return out;
}

/// Copies `tensors` into `module`'s parameters and buffers. All are checked first (nothing is
/// copied unless all fit): each of the module's tensors must be given, except those in
/// `optional`; each given one must exist in the module, with its shape and a floating dtype.
inline void load_tensors(torch::nn::Module& module, const MappedTensors& tensors, const std::string& path,
                         const std::set<std::string>& optional = {}) {
  const auto targets = named_tensors(module);
  const auto origin = [](const std::string& ours, const MappedTensor& m) {
    return m.from == ours ? ours : ours + " (from " + m.from + ")";
  };
  for (const auto& [name, mapped] : tensors) {
    const auto it = targets.find(name);
    if (it == targets.end()) throw Error(Location{path, 0, mapped.from}, "the model has no tensor '" + name + "'");
    if (!torch::isFloatingType(mapped.tensor.scalar_type()) && torch::isFloatingType(it->second.scalar_type()))
      throw Error(Location{path, 0, origin(name, mapped)}, std::string("has dtype ") +
                                                             c10::toString(mapped.tensor.scalar_type()) +
                                                             ", the model's is floating point");
    if (mapped.tensor.sizes() != it->second.sizes())
      throw Error(Location{path, 0, origin(name, mapped)}, "shape " + shape_string(mapped.tensor) +
                                                             " in the file, the model's is " + shape_string(it->second) +
                                                             " (do the config's sizes match the checkpoint's?)");
  }
  for (const auto& [name, target] : targets)
    if (!tensors.count(name) && !optional.count(name))
      throw Error(Location{path, 0, name}, "missing from the file (shape " + shape_string(target) + ")");
  torch::NoGradGuard no_grad;
  for (const auto& [name, mapped] : tensors) targets.at(name).detach().copy_(mapped.tensor);
}

namespace detail {
/// Says which tensors of a public checkpoint were not loaded (poolers, classifiers, MLM heads).
inline void note_left_out(const std::filesystem::path& path, const std::vector<std::string>& ignored) {
  if (!ignored.empty())
    std::fprintf(stderr, "note: %s: %zu tensors with no counterpart here were left out (%s, ...)\n", path.c_str(),
                 ignored.size(), ignored.front().c_str());
}
}  // namespace detail

/// Loads the image encoder from `file` (read from `path`): Hugging Face ViT names, or
/// "image_encoder.*".
template <class ImageEncoder>
void load_image_encoder(ImageEncoder& encoder, const ImageEncoderConfig& config, const Safetensors& file,
                        const std::string& path) {
  std::vector<std::string> ignored;
  switch (naming_of(file)) {
    case WeightNaming::hugging_face_vit:
      load_tensors(*encoder, vit_from_hugging_face(file, config, path, &ignored), path, {"mask_token"});
      break;
    case WeightNaming::commercemm: load_tensors(*encoder, under_prefix(file, "image_encoder.", path), path); break;
    case WeightNaming::hugging_face_bert:
      throw Error(Location{path, 0, "model.image.init"}, "holds BERT (text) weights, not an image encoder's");
  }
  detail::note_left_out(path, ignored);
}
template <class ImageEncoder>
void load_image_encoder(ImageEncoder& encoder, const ImageEncoderConfig& config, const std::filesystem::path& path) {
  load_image_encoder(encoder, config, read_safetensors(path), path.string());
}

/// Loads the text encoder from `file` (read from `path`): Hugging Face BERT names, or
/// "text_encoder.*". `cls_id` is the tokenizer's [CLS] id (BERT only; -1 if it has none).
template <class TextEncoder>
void load_text_encoder(TextEncoder& encoder, const TextEncoderConfig& config, std::int64_t cls_id,
                       const Safetensors& file, const std::string& path) {
  std::vector<std::string> ignored;
  switch (naming_of(file)) {
    case WeightNaming::hugging_face_bert:
      load_tensors(*encoder, bert_from_hugging_face(file, config, cls_id, path, &ignored), path);
      break;
    case WeightNaming::commercemm: load_tensors(*encoder, under_prefix(file, "text_encoder.", path), path); break;
    case WeightNaming::hugging_face_vit:
      throw Error(Location{path, 0, "model.text.init"}, "holds ViT (image) weights, not a text encoder's");
  }
  detail::note_left_out(path, ignored);
}
template <class TextEncoder>
void load_text_encoder(TextEncoder& encoder, const TextEncoderConfig& config, std::int64_t cls_id,
                       const std::filesystem::path& path) {
  load_text_encoder(encoder, config, cls_id, read_safetensors(path), path.string());
}

/// Starts `model`'s encoders from model.image.init and model.text.init, where set (one file
/// named by both is read once). `cls_id`: the tokenizer's [CLS] (cls_id_of), for BERT.
template <class Model>
void load_pretrained_encoders(Model& model, const ModelConfig& config, std::int64_t cls_id) {
  Safetensors file;
  if (!config.image.init.empty()) {
    file = read_safetensors(config.image.init);
    load_image_encoder(model->image_encoder(), config.image, file, config.image.init);
  }
  if (!config.text.init.empty()) {
    if (config.text.init != config.image.init) file = read_safetensors(config.text.init);
    load_text_encoder(model->text_encoder(), config.text, cls_id, file, config.text.init);
  }
}

}  // namespace commercemm::train
