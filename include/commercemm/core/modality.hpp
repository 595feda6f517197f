#pragma once
// The three kinds of embedding an item has, as tag types for templates
// (tasks::Retrieval<cmm::Text, cmm::Multimodal> is query-to-product).
#include <cstdint>

namespace commercemm {

enum class Modality : std::uint8_t { text = 1, image = 2, multimodal = 4 };

struct Text {
  static constexpr Modality value = Modality::text;
  static constexpr const char* name = "text";
};
struct Image {
  static constexpr Modality value = Modality::image;
  static constexpr const char* name = "image";
};
struct Multimodal {
  static constexpr Modality value = Modality::multimodal;
  static constexpr const char* name = "multimodal";
};

template <class M>
concept ModalityTag = requires {
  { M::value } -> std::convertible_to<Modality>;
  { M::name } -> std::convertible_to<const char*>;
};

/// A set of modalities, e.g. which embeddings of a pass-B source must be computed.
struct Modalities {
  std::uint8_t bits = 0;
  constexpr Modalities() = default;
  constexpr Modalities(Modality m) : bits(static_cast<std::uint8_t>(m)) {}  // NOLINT: a set of one
  constexpr bool has(Modality m) const { return bits & static_cast<std::uint8_t>(m); }
  constexpr bool empty() const { return bits == 0; }
  constexpr Modalities operator|(Modalities o) const {
    Modalities r;
    r.bits = static_cast<std::uint8_t>(bits | o.bits);
    return r;
  }
};

}  // namespace commercemm
