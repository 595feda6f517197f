#pragma once
// Definitions of eval/side_store.hpp (compiled once in commercemm::compiled, or inline).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include <commercemm/core/atomic_file.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/core/random.hpp>
#include <commercemm/eval/npy.hpp>
#include <commercemm/eval/side_store.hpp>

namespace commercemm::eval {

namespace side_store_detail {

inline const char* name(Modality m) { return m == Modality::image ? "image" : "text"; }

inline std::uint64_t bytes_key(const torch::Tensor& t, std::uint64_t hash) {
  const auto data = t.to(torch::kCPU).contiguous();
  return random::fnv1a(std::string_view(static_cast<const char*>(data.data_ptr()), data.nbytes()), hash);
}

}  // namespace side_store_detail

COMMERCEMM_DECL std::uint64_t content_key(const torch::Tensor& tensor) {
  return side_store_detail::bytes_key(tensor, 0xcbf29ce484222325ull);
}

COMMERCEMM_DECL std::string model_fingerprint(const torch::nn::Module& module) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto add = [&h](const std::string& name, const torch::Tensor& t) {
    h = random::fnv1a(name + ' ' + c10::toString(t.scalar_type()) + ' ' + c10::str(t.sizes()), h);
    h = side_store_detail::bytes_key(t, h);
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

COMMERCEMM_DECL void SideStore::save(const std::filesystem::path& dir) const {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  // The arrays may replace an earlier store's (`--update DIR --out DIR`): without sides.json
  // until the last write, a save cut short is refused by load() instead of mixing two stores.
  fs::remove(dir / "sides.json");
  nlohmann::json counts, dtypes;
  for (const auto m : {Modality::image, Modality::text}) {
    const auto& table = sides(m);
    const std::string prefix = side_store_detail::name(m);
    const auto n = static_cast<std::int64_t>(table.size());
    counts[prefix] = n;
    std::int64_t dim = 0, width = 0, longest = 0;
    dtypes[prefix] = "Float";
    for (const auto& [key, side] : table) {
      dim = side.embedding.size(0), width = side.tokens.size(1);
      dtypes[prefix] = c10::toString(side.tokens.scalar_type());
      longest = std::max(longest, side.tokens.size(0));
    }
    auto keys = torch::empty({n}, torch::kLong);
    auto embeddings = torch::empty({n, dim});
    auto tokens = torch::zeros({n, longest, width});
    auto lengths = torch::empty({n}, torch::kLong);
    auto key_at = keys.accessor<std::int64_t, 1>();
    auto length_at = lengths.accessor<std::int64_t, 1>();
    std::int64_t row = 0;
    for (const auto& [key, side] : table) {
      key_at[row] = static_cast<std::int64_t>(key);  // the bits of the unsigned key
      length_at[row] = side.tokens.size(0);
      embeddings[row].copy_(side.embedding);
      tokens[row].narrow(0, 0, side.tokens.size(0)).copy_(side.tokens);
      ++row;
    }
    write_npy(dir / (prefix + "_keys.npy"), keys);
    write_npy(dir / (prefix + "_embeddings.npy"), embeddings);
    write_npy(dir / (prefix + "_tokens.npy"), tokens);
    write_npy(dir / (prefix + "_lengths.npy"), lengths);
  }
  const nlohmann::json j = {{"format", 1},
                            {"model_fingerprint", header_.model_fingerprint},
                            {"fusion_split", header_.fusion_split},
                            {"precision", header_.precision},
                            {"side_dtype", dtypes},
                            {"rows", counts}};
  const auto file = dir / "sides.json";
  write_atomically(file, [&](const fs::path& temporary) {
    std::ofstream out(temporary);
    out << j.dump(2) << '\n';
    if (!out) throw Error(Location{file.string(), 0, ""}, "cannot write");
  });
}

COMMERCEMM_DECL SideStore SideStore::load(const std::filesystem::path& dir, const SideStoreHeader& expected) {
  const auto file = dir / "sides.json";
  std::ifstream in(file);
  if (!in)
    throw Error(Location{file.string(), 0, ""},
                "no stored sides here: run `embed --keep-sides` first (or embed without --update)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(Location{file.string(), 0, ""}, std::string("not valid JSON: ") + e.what());
  }
  const auto field = [&](const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key)) throw Error(Location{file.string(), 0, key}, "missing");
    return j.at(key);
  };
  if (!field("rows").is_object() || !field("side_dtype").is_object())
    throw Error(Location{file.string(), 0, "rows"}, "rows and side_dtype must be objects");
  if (field("format") != 1) throw Error(Location{file.string(), 0, "format"}, "unknown format " + field("format").dump());
  SideStoreHeader header;
  try {
    header.model_fingerprint = field("model_fingerprint").get<std::string>();
    header.fusion_split = field("fusion_split").get<std::int64_t>();
    header.precision = field("precision").get<std::string>();
  } catch (const nlohmann::json::type_error& e) {
    throw Error(Location{file.string(), 0, ""}, std::string("wrong type: ") + e.what());
  }
  const auto differs = [&](const char* key, const std::string& stored, const std::string& now) {
    throw Error(Location{file.string(), 0, key}, "the stored sides were computed with " + std::string(key) + " " +
                                                     stored + ", this run has " + now +
                                                     ": embed without --update to start afresh");
  };
  if (header.model_fingerprint != expected.model_fingerprint)
    differs("model_fingerprint", header.model_fingerprint + " (another checkpoint)", expected.model_fingerprint);
  if (header.fusion_split != expected.fusion_split)
    differs("fusion_split", std::to_string(header.fusion_split), std::to_string(expected.fusion_split));
  if (header.precision != expected.precision) differs("precision", header.precision, expected.precision);

  SideStore store(header);
  for (const auto m : {Modality::image, Modality::text}) {
    const std::string prefix = side_store_detail::name(m);
    const auto keys = read_npy(dir / (prefix + "_keys.npy"));
    const auto embeddings = read_npy(dir / (prefix + "_embeddings.npy"));
    const auto tokens = read_npy(dir / (prefix + "_tokens.npy"));
    const auto lengths = read_npy(dir / (prefix + "_lengths.npy"));
    const auto& count = field("rows").value(prefix, nlohmann::json());
    const auto& dtype_entry = field("side_dtype").value(prefix, nlohmann::json());
    if (!count.is_number_integer() || !dtype_entry.is_string())
      throw Error(Location{file.string(), 0, "rows." + prefix},
                  "rows." + prefix + " must be an integer and side_dtype." + prefix + " a string");
    const auto rows = count.get<std::int64_t>();
    const auto dtype_name = dtype_entry.get<std::string>();
    const auto dtype = dtype_name == "BFloat16" ? torch::kBFloat16 : torch::kFloat;
    if (dtype_name != "BFloat16" && dtype_name != "Float")
      throw Error(Location{file.string(), 0, "side_dtype." + prefix}, "must be Float or BFloat16, got '" + dtype_name + "'");
    const bool consistent = keys.dim() == 1 && keys.size(0) == rows && embeddings.dim() == 2 &&
                            embeddings.size(0) == rows && tokens.dim() == 3 && tokens.size(0) == rows &&
                            lengths.dim() == 1 && lengths.size(0) == rows && keys.scalar_type() == torch::kLong &&
                            lengths.scalar_type() == torch::kLong && embeddings.scalar_type() == torch::kFloat &&
                            tokens.scalar_type() == torch::kFloat;
    if (!consistent)
      throw Error(Location{(dir / (prefix + "_tokens.npy")).string(), 0, "rows." + prefix},
                  "the " + prefix + " arrays disagree with sides.json's " + std::to_string(rows) +
                      " rows (an interrupted save?): embed without --update to start afresh");
    const auto key = keys.accessor<std::int64_t, 1>();
    const auto length = lengths.accessor<std::int64_t, 1>();
    for (std::int64_t r = 0; r < rows; ++r) {
      if (length[r] < 1 || length[r] > tokens.size(1))
        throw Error(Location{(dir / (prefix + "_lengths.npy")).string(), r + 1, ""},
                    "length " + std::to_string(length[r]) + " outside [1, " + std::to_string(tokens.size(1)) + "]");
      store.put(m, static_cast<std::uint64_t>(key[r]), {embeddings[r].clone(), tokens[r].narrow(0, 0, length[r]).to(dtype).clone()});
    }
  }
  return store;
}

}  // namespace commercemm::eval
