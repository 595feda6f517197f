#pragma once
// A config that passed validation must survive what a checkpoint does with it: to_json, dump,
// parse, config_from_json. Set COMMERCEMM_FUZZ_NO_ROUNDTRIP=1 to skip (to fuzz past a known bug).
#include <cstdio>
#include <cstdlib>

#include <commercemm/core/config_io.hpp>

namespace commercemm::fuzz {

inline void check_round_trip(const Config& config) {
  static const bool skip = std::getenv("COMMERCEMM_FUZZ_NO_ROUNDTRIP") != nullptr;
  if (skip) return;
  const std::string text = to_json(config).dump();
  try {
    const Config again = config_from_json(nlohmann::json::parse(text));
    if (to_json(again).dump() != text) {
      std::fprintf(stderr, "config changed in the checkpoint round trip:\n%s\n%s\n", text.c_str(),
                   to_json(again).dump().c_str());
      std::abort();
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "a valid config does not survive a checkpoint round trip: %s\njson: %s\n", e.what(),
                 text.c_str());
    std::abort();
  }
}

}  // namespace commercemm::fuzz
