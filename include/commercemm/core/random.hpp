#pragma once
// Counter-based randomness: every draw is a pure function of (seed, step, stream, index, sub).
//
// Training draws nothing from stateful generators. A per-step draw (the fusion split) hashes
// (seed, step); a per-sample draw (MLM and MIM masks, ITM negatives, modality dropout) also
// hashes the sample's index in the *global* batch. So a run on N processes, each holding a
// shard of the batch, draws exactly what one process holding the whole batch draws, and a
// resumed run draws what the uninterrupted one did.
#include <cstdint>
#include <string_view>

namespace commercemm::random {

/// Independent streams, so that different draws of one sample never correlate.
enum class Stream : std::uint64_t {
  fusion_split = 1,
  split_ramp = 2,
  modality_dropout = 3,
  mlm_choose = 4,     ///< which tokens MLM masks
  mlm_replace = 5,    ///< [MASK], a random id or kept
  mlm_random_id = 6,  ///< the random id
  mim_patches = 7,    ///< which patches MIM masks
  itm_text = 8,       ///< the negative text of an image
  itm_image = 9,      ///< the negative image of a text
};

/// splitmix64's finalizer: cheap, well mixed and platform independent (std:: distributions
/// differ between standard libraries, which would break reproducibility across builds).
constexpr std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// FNV-1a over bytes: a stable 64-bit hash of a string (names, fingerprints).
constexpr std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 0xcbf29ce484222325ull) {
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

/// 64 random bits determined by (seed, step, stream, index, sub) alone.
constexpr std::uint64_t bits(std::uint64_t seed, std::int64_t step, Stream stream, std::uint64_t index = 0,
                             std::uint64_t sub = 0) {
  std::uint64_t h = mix(seed);
  h = mix(h ^ static_cast<std::uint64_t>(step));
  h = mix(h ^ static_cast<std::uint64_t>(stream));
  h = mix(h ^ index);
  if (sub != 0) h = mix(h ^ sub);  // sub = 0 keeps the draws of the one-index form
  return h;
}

/// A uniform double in [0, 1) determined by (seed, step, stream, index, sub) alone.
constexpr double uniform(std::uint64_t seed, std::int64_t step, Stream stream, std::uint64_t index = 0,
                         std::uint64_t sub = 0) {
  return static_cast<double>(bits(seed, step, stream, index, sub) >> 11) * 0x1.0p-53;
}

}  // namespace commercemm::random
