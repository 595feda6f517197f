// Fuzzes the JSONL items reader (data::read_items), then checks that what write_items writes
// of the items reads back the same.
#include <cstdio>
#include <cstdlib>

#include <commercemm/data/manifest.hpp>

#include "common.hpp"

using namespace commercemm;

namespace {

void round_trip(const data::ItemTable& table) {
  const auto file = fuzz::scratch_dir() / "written.jsonl";
  data::write_items(file, table.items());
  data::ItemTable again;
  try {
    again = data::read_items(file, {.check_files = false});
  } catch (const Error& e) {
    std::fprintf(stderr, "write_items wrote a manifest read_items rejects: %s\n", e.what());
    std::abort();
  }
  if (again.size() != table.size()) std::abort();
  for (std::size_t i = 0; i < table.size(); ++i)
    if (again[i].id != table[i].id || again[i].text() != table[i].text() ||
        again[i].images.size() != table[i].images.size())
      std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = fuzz::write_file("items.jsonl", fuzz::as_view(data, size));
  try {
    round_trip(data::read_items(file, {.check_files = false}));
  } catch (const Error&) {
  }
  try {  // as a catalog
    data::read_items(file, {.product_id = true, .text = true, .image = true, .check_files = false});
  } catch (const Error&) {
  }
  return 0;
}
