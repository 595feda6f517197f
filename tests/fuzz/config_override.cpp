// Fuzzes --set overrides: each line of the input is one "key=value" (apply_override), then
// all lines at once (apply_overrides).
#include <commercemm/core/config_io.hpp>

#include "common.hpp"
#include "config_check.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto assignments = fuzz::lines(fuzz::as_view(data, size));
  Config config;
  for (const auto& assignment : assignments) {
    try {
      apply_override(config, assignment);
    } catch (const Error&) {
    }
  }
  fuzz::check_round_trip(config);
  Config all;
  try {
    apply_overrides(all, assignments);
    fuzz::check_round_trip(all);
  } catch (const Error&) {
  }
  return 0;
}
