#pragma once
// The Encoder concepts: what cmm::Model<ImageEncoder, TextEncoder, Fusion> needs from the
// first two template arguments. encoders::ViT and encoders::TextTransformer satisfy them; a
// user's own encoder does too if it provides the members below.
#include <concepts>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/core/model_config.hpp>

namespace commercemm {

/// "[2, 3, 64, 64]": tensor shapes in error messages.
inline std::string shape_string(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string out = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

/// Image encoders take [B, 3, S, S] with S = model.image.image_size; anything else is an error
/// that names the shape it got.
inline void check_image_shape(const torch::Tensor& images, const ImageEncoderConfig& config) {
  const auto s = config.image_size;
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != s || images.size(3) != s)
    throw Error(Location{"", 0, "images"}, "expected [B, 3, " + std::to_string(s) + ", " + std::to_string(s) +
                                               "] (model.image.image_size), got " + shape_string(images));
}

/// The token-level output of an encoder or of the fusion stack.
struct TokenSequence {
  torch::Tensor tokens;  ///< [B, L, W]; position 0 is the sequence's CLS. Undefined = absent.
  torch::Tensor valid;   ///< [B, L] bool, true = real token; undefined = every token is real.

  bool defined() const { return tokens.defined(); }
  /// [B, W]: the CLS state, what the embedding heads read.
  torch::Tensor cls() const { return tokens.select(1, 0); }
};

namespace encoders {

/// An image encoder is a torch::nn::ModuleHolder (TORCH_MODULE style) whose module
///  - is constructible from an ImageEncoderConfig;
///  - forward(images [B, 3, H, W] float, patch_mask [B, N] bool or undefined) -> TokenSequence
///    [B, 1 + N, W] (CLS first); where patch_mask is true the patch is replaced by a learned
///    mask token (masked image modelling);
///  - width() -> W and num_patches() -> N.
template <class E>
concept ImageEncoder = std::constructible_from<E, const ImageEncoderConfig&> &&
    requires(E e, const torch::Tensor& t) {
      { e->forward(t, t) } -> std::same_as<TokenSequence>;
      { e->width() } -> std::convertible_to<std::int64_t>;
      { e->num_patches() } -> std::convertible_to<std::int64_t>;
    };

/// A text encoder is a ModuleHolder whose module
///  - is constructible from a TextEncoderConfig;
///  - forward(ids [B, L] int64, mask [B, L] (1 = token)) -> TokenSequence [B, 1 + L, W] with
///    its own CLS first and `valid` set from the mask;
///  - width() -> W, and token_embedding() -> the [V, W] input embedding matrix (masked
///    language modelling ties its output layer to it).
template <class E>
concept TextEncoder = std::constructible_from<E, const TextEncoderConfig&> &&
    requires(E e, const torch::Tensor& t) {
      { e->forward(t, t) } -> std::same_as<TokenSequence>;
      { e->width() } -> std::convertible_to<std::int64_t>;
      { e->token_embedding() } -> std::convertible_to<torch::Tensor>;
    };

namespace detail {
// A config section's fields as TOML would spell their values: 8, 0.1, "cls".
template <class Section> std::map<std::string, std::string> field_values(Section section) {
  std::map<std::string, std::string> out;
  visit_fields(section, [&out](const char* key, const auto& value) {
    std::ostringstream text;
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::string>) text << '"' << value << '"';
    else text << value;
    out[key] = text.str();
  });
  return out;
}
}  // namespace detail

/// An encoder's module may list the keys of its config section that it does not read, as
/// `static constexpr std::array<std::string_view, N> unread_keys` (encoders::ConvNet: heads,
/// mlp_ratio, dropout). cmm::Model calls this with its config and its preset's: a listed key
/// whose value differs from the preset's was set by the user and would do nothing, which is an
/// error naming it (`section` is "model.image" or "model.text"), never a silent no-op.
template <class EncoderHolder, class Section>
void check_unread_keys(const Section& config, const Section& preset, const std::string& section) {
  using Encoder = typename EncoderHolder::ContainedType;
  if constexpr (requires { Encoder::unread_keys; }) {
    const auto got = detail::field_values(config), kept = detail::field_values(preset);
    for (const std::string_view listed : Encoder::unread_keys) {
      const std::string key(listed);
      if (!got.count(key))
        throw Error(Location{"", 0, section + "." + key}, "the encoder's unread_keys names a key its config does not have");
      if (got.at(key) != kept.at(key))
        throw Error(Location{"", 0, section + "." + key},
                    "this recipe's encoder does not read it: only the preset's value (" + kept.at(key) +
                        ") applies, got " + got.at(key));
    }
  }
}

}  // namespace encoders
}  // namespace commercemm
