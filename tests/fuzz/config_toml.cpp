// Fuzzes the TOML config reader (load_config: toml++ parse, key/type checks, validation).
#include <commercemm/core/config_io.hpp>

#include "common.hpp"
#include "config_check.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = fuzz::write_file("config.toml", fuzz::as_view(data, size));
  try {
    const Config config = load_config(file.string());
    fuzz::check_round_trip(config);
  } catch (const Error&) {
  }
  return 0;
}
