// Fuzzes the safetensors header reader (train::read_safetensors_layout, the part of the reader
// that checks every number against the file; copying the checked ranges is all that is left).
// Besides "only commercemm::Error comes out", every layout it accepts must be sound: ranges in
// data order, back to back from 0 to the file's end, each as long as its shape and dtype say.
#include <sstream>
#include <string>

#include <commercemm/train/safetensors_layout.hpp>

#include "common.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(fuzz::as_view(data, size)));
  try {
    const auto layout = train::read_safetensors_layout(in, size, "fuzz.safetensors");
    std::uint64_t at = 0;
    for (const auto& e : layout.entries) {
      std::uint64_t bytes = train::safetensors_element_size(e.dtype);
      for (const auto d : e.shape) bytes *= static_cast<std::uint64_t>(d);
      if (bytes == 0 && train::safetensors_element_size(e.dtype) == 0) std::abort();
      if (e.begin != at || e.end - e.begin != bytes) std::abort();
      at = e.end;
    }
    if (layout.data_start + at != size) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
