#pragma once
// Sizes of the three networks. Structure is chosen at compile time (cmm::Model<...>); these
// numbers are chosen at run time, from a preset and the [model] table of a TOML config.
#include <cstdint>
#include <string>
#include <string_view>

#include <commercemm/core/error.hpp>

namespace commercemm {

/// encoders::ViT. Tokens: 1 CLS + (image_size / patch_size)^2 patches.
struct ImageEncoderConfig {
  std::int64_t image_size = 64;
  std::int64_t patch_size = 8;
  std::int64_t layers = 6;
  std::int64_t width = 256;
  std::int64_t heads = 4;
  std::int64_t mlp_ratio = 4;
  double dropout = 0.0;
  /// A safetensors file to start from (Hugging Face ViT names or this library's; see
  /// train/pretrained.hpp), read when a pre-training run starts; "" = random initialisation.
  std::string init;
  /// What the output's CLS state (read by the image embedding head and by fusion) holds:
  /// "cls" (the encoder's own: the ViT's CLS token, the ConvNet's average of its cells) or
  /// "cls_grid" (encoders::ConvNet only: that plus a learned linear map of the whole grid of
  /// cells, which keeps where each part of the picture is; an average forgets it).
  std::string pool = "cls";
  /// encoders::ConvNet only: N > 0 adds to the CLS state a learned linear map of the input's
  /// N x N thumbnail (mean-centred, L2-normalised: nn::thumbnail, what the raw-pixel reference
  /// row scores with), so the embedding can keep the pixel layout that finds other vendors'
  /// drawings of a product; 0 = off.
  std::int64_t thumbnail = 0;
  std::int64_t num_patches() const {
    const auto side = image_size / patch_size;
    return side * side;
  }
};

/// encoders::TextTransformer. Tokens: 1 CLS + up to max_length text tokens.
struct TextEncoderConfig {
  std::int64_t vocab_size = 8000;
  std::int64_t max_length = 40;
  std::int64_t layers = 6;
  std::int64_t width = 256;
  std::int64_t heads = 4;
  std::int64_t mlp_ratio = 4;
  double dropout = 0.0;
  /// Where the LayerNorms sit: "pre" (before each sub-layer, a final one after the stack) or
  /// "post" (after each residual sum, one over the embeddings: BERT's layout, which its
  /// weights need).
  std::string norm = "pre";
  /// A safetensors file to start from (Hugging Face BERT names or this library's); "" = random.
  std::string init;
  /// What the output's CLS state (read by the text embedding head and by fusion) holds:
  /// "cls" (the transformer's), "bag" (the mean of the input token embeddings, LayerNorm'd:
  /// fastText's bag of pieces, which keeps the lexical overlap of two texts) or "cls_bag"
  /// (their sum).
  std::string pool = "cls";
};

/// fusion::MergedAttention over [text tokens; image tokens].
struct FusionConfig {
  std::int64_t layers = 4;
  std::int64_t width = 256;
  std::int64_t heads = 4;
  std::int64_t mlp_ratio = 4;
  double dropout = 0.0;
};

struct ModelConfig {
  std::string preset = "small";   ///< the preset the other fields started from
  std::int64_t embed_dim = 256;   ///< D of the image, text and multimodal embeddings
  ImageEncoderConfig image;
  TextEncoderConfig text;
  FusionConfig fusion;
};

// visit_fields(config, f) calls f("key", member) for every field, in TOML order. The TOML
// reader, the JSON writer and `--set` overrides all walk configs through these, so a new
// field is added in one place.
template <class F> void visit_fields(ImageEncoderConfig& c, F&& f) {
  f("image_size", c.image_size); f("patch_size", c.patch_size); f("layers", c.layers);
  f("width", c.width); f("heads", c.heads); f("mlp_ratio", c.mlp_ratio); f("dropout", c.dropout);
  f("init", c.init); f("pool", c.pool); f("thumbnail", c.thumbnail);
}
template <class F> void visit_fields(TextEncoderConfig& c, F&& f) {
  f("vocab_size", c.vocab_size); f("max_length", c.max_length); f("layers", c.layers);
  f("width", c.width); f("heads", c.heads); f("mlp_ratio", c.mlp_ratio); f("dropout", c.dropout);
  f("norm", c.norm); f("init", c.init); f("pool", c.pool);
}
template <class F> void visit_fields(FusionConfig& c, F&& f) {
  f("layers", c.layers); f("width", c.width); f("heads", c.heads); f("mlp_ratio", c.mlp_ratio);
  f("dropout", c.dropout);
}
template <class F> void visit_fields(ModelConfig& c, F&& f) {
  f("preset", c.preset); f("embed_dim", c.embed_dim);
  f("image", c.image); f("text", c.text); f("fusion", c.fusion);
}

namespace detail {
inline void require(bool ok, const Location& where, const std::string& key, const std::string& what) {
  if (!ok) throw Error(Location{where.file, where.line, key}, what);
}
inline void validate_stack(const Location& at, const std::string& p, std::int64_t layers,
                           std::int64_t width, std::int64_t heads, std::int64_t mlp_ratio,
                           double dropout) {
  require(layers > 0, at, p + "layers", "must be at least 1, got " + std::to_string(layers));
  require(heads > 0, at, p + "heads", "must be at least 1, got " + std::to_string(heads));
  require(width > 0 && width % heads == 0, at, p + "width",
          "must be a positive multiple of " + p + "heads (" + std::to_string(heads) + "), got " +
              std::to_string(width));
  require(mlp_ratio > 0, at, p + "mlp_ratio", "must be at least 1");
  require(dropout >= 0.0 && dropout < 1.0, at, p + "dropout", "must be in [0, 1)");
}
}  // namespace detail

/// Throws commercemm::Error naming the offending key ("model.image.width") and, when given,
/// the config file it came from.
inline void validate(const ModelConfig& c, const std::string& file = "") {
  const Location at{file, 0, ""};
  detail::require(c.embed_dim > 0, at, "model.embed_dim", "must be at least 1");
  const auto& im = c.image;
  detail::validate_stack(at, "model.image.", im.layers, im.width, im.heads, im.mlp_ratio, im.dropout);
  detail::require(im.patch_size > 0, at, "model.image.patch_size", "must be at least 1");
  detail::require(im.image_size > 0 && im.image_size % im.patch_size == 0, at,
                  "model.image.image_size",
                  "must be a positive multiple of model.image.patch_size (" +
                      std::to_string(im.patch_size) + "), got " + std::to_string(im.image_size));
  detail::require(im.pool == "cls" || im.pool == "cls_grid", at, "model.image.pool",
                  "must be \"cls\" or \"cls_grid\", got \"" + im.pool + "\"");
  detail::require(im.thumbnail >= 0 && im.thumbnail <= im.image_size, at, "model.image.thumbnail",
                  "must be 0 (off) or a side from 1 to model.image.image_size (" +
                      std::to_string(im.image_size) + "), got " + std::to_string(im.thumbnail));
  const auto& tx = c.text;
  detail::validate_stack(at, "model.text.", tx.layers, tx.width, tx.heads, tx.mlp_ratio, tx.dropout);
  detail::require(tx.vocab_size > 0, at, "model.text.vocab_size", "must be at least 1");
  detail::require(tx.max_length > 0, at, "model.text.max_length", "must be at least 1");
  detail::require(tx.norm == "pre" || tx.norm == "post", at, "model.text.norm",
                  "must be \"pre\" or \"post\", got \"" + tx.norm + "\"");
  detail::require(tx.pool == "cls" || tx.pool == "bag" || tx.pool == "cls_bag", at, "model.text.pool",
                  "must be \"cls\", \"bag\" or \"cls_bag\", got \"" + tx.pool + "\"");
  const auto& fu = c.fusion;
  detail::validate_stack(at, "model.fusion.", fu.layers, fu.width, fu.heads, fu.mlp_ratio, fu.dropout);
}

namespace presets {

/// The names model() knows.
inline constexpr std::string_view names[] = {"tiny", "small", "base"};
inline bool is_preset(std::string_view name) {
  for (const auto known : names)
    if (name == known) return true;
  return false;
}

/// The named sizes: "tiny" (seconds on a CPU, for tests), "small" (the demo on 64 px emoji
/// art), "base" (the paper's sizes: ViT-B/16 image encoder, BERT-base text encoder with the
/// 30,522-token uncased vocabulary, 6 fusion layers; 511 text tokens, so that with the CLS
/// they fill BERT's 512 positions).
inline ModelConfig model(std::string_view name) {
  ModelConfig c;
  c.preset = std::string(name);
  if (name == "tiny") {
    c.embed_dim = 64;
    c.image = {32, 8, 2, 64, 2, 4, 0.0, ""};
    c.text = {8000, 32, 2, 64, 2, 4, 0.0, "pre", ""};
    c.fusion = {2, 64, 2, 4, 0.0};
  } else if (name == "small") {
    c.embed_dim = 256;
    c.image = {64, 8, 6, 256, 4, 4, 0.0, ""};
    c.text = {8000, 40, 6, 256, 4, 4, 0.0, "pre", ""};
    c.fusion = {4, 256, 4, 4, 0.0};
  } else if (name == "base") {
    c.embed_dim = 256;
    c.image = {224, 16, 12, 768, 12, 4, 0.1, ""};
    c.text = {30522, 511, 12, 768, 12, 4, 0.1, "pre", ""};
    c.fusion = {6, 768, 12, 4, 0.1};
  } else {
    throw Error(Location{"", 0, "model.preset"},
                "unknown preset '" + std::string(name) + "' (valid: tiny, small, base)");
  }
  return c;
}

}  // namespace presets
}  // namespace commercemm
