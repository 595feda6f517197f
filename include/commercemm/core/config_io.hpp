#pragma once
// Reading configs from TOML (toml++) and writing them as JSON. Definitions:
// core/impl/config_io.ipp, inline here unless compiled separately (core/linkage.hpp).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <commercemm/core/config.hpp>
#include <commercemm/core/linkage.hpp>

namespace commercemm {

/// Reads a TOML config. Every key is checked: an unknown key, a value of the wrong type or
/// an invalid size throws commercemm::Error naming the file, line and key.
COMMERCEMM_DECL Config load_config(const std::string& path);

/// Applies one "key=value" override (value in TOML syntax: 128, 3e-4, "bf16", true), as the
/// command line's --set does. The result is validated again unless `check` is false.
COMMERCEMM_DECL void apply_override(Config& config, const std::string& assignment, bool check = true);

/// Applies several overrides, then validates once: keys that must change together
/// (data.tokenizer with data.vocab) can. Any error leaves `config` as it was.
COMMERCEMM_DECL void apply_overrides(Config& config, const std::vector<std::string>& assignments);

/// The whole config as JSON (for run metadata and `describe --json`).
COMMERCEMM_DECL nlohmann::json to_json(Config config);
COMMERCEMM_DECL nlohmann::json to_json(ModelConfig config);

/// The inverse of to_json(Config): how a checkpoint's config is read back.
COMMERCEMM_DECL Config config_from_json(const nlohmann::json& j);

}  // namespace commercemm

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/core/impl/config_io.ipp>
#endif
