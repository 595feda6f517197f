#pragma once
// safetensors files read into and written from LibTorch tensors. The layout and its checks
// are train/safetensors_layout.hpp; what is here copies the checked byte ranges.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <commercemm/core/atomic_file.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/train/safetensors_layout.hpp>

namespace commercemm::train {

/// Tensors by name (sorted, as the format's writers store them) and the header's metadata.
struct Safetensors {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

namespace detail {
struct SafetensorsDtype {
  const char* name;
  torch::ScalarType type;
};
inline constexpr SafetensorsDtype safetensors_dtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};
inline const char* safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : safetensors_dtypes)
    if (d.type == type) return d.name;
  throw Error(std::string("safetensors cannot store dtype ") + c10::toString(type));
}
inline torch::ScalarType safetensors_scalar_type(const std::string& name) {
  for (const auto& d : safetensors_dtypes)
    if (name == d.name) return d.type;
  throw Error("safetensors dtype " + name + " has no LibTorch type");  // read_safetensors_layout refused it
}
}  // namespace detail

/// Reads every tensor of `file` into CPU memory (contiguous, the file's dtype), after
/// read_safetensors_layout has checked the header against the file's size.
inline Safetensors read_safetensors(const std::filesystem::path& file) {
  const std::string path = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(Location{path, 0, ""}, "cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  const auto layout = read_safetensors_layout(in, size, path);
  Safetensors out;
  out.metadata = layout.metadata;
  // The layout left the stream at the data section, and its entries are in file order, back to
  // back: one sequential read.
  for (const auto& e : layout.entries) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(detail::safetensors_scalar_type(e.dtype)));
    if (e.end > e.begin) in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) throw Error(Location{path, 0, e.name}, "cannot read its bytes");
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

/// Writes `tensors` (any device, any layout; stored contiguous and in name order) and
/// `metadata` to `file`, atomically (a crash leaves the previous file). The header is padded
/// with spaces to a multiple of 8 bytes, as the format's own writer does.
inline void write_safetensors(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  std::uint64_t at = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw Error(Location{file.string(), 0, name}, "is reserved for the metadata");
    if (!tensor.defined()) throw Error(Location{file.string(), 0, name}, "is an undefined tensor");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const auto bytes = static_cast<std::uint64_t>(t.nbytes());
    header[name] = {{"dtype", detail::safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {at, at + bytes}}};
    at += bytes;
    data.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  write_atomically(file, [&](const std::filesystem::path& temporary) {
    std::ofstream out(temporary, std::ios::binary);
    const std::uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : data) out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    out.flush();
    if (!out) throw Error(Location{file.string(), 0, ""}, "cannot write (disk full or read-only?)");
  });
}

}  // namespace commercemm::train
