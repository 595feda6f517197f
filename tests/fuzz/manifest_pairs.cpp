// Fuzzes the JSONL pairs reader (data::read_pairs) against a small fixed sources table and
// catalog: the kinds query/image/post and a custom kind all have sources to refer to.
#include <commercemm/data/manifest.hpp>

#include "common.hpp"

using namespace commercemm;

namespace {

data::Item item(std::string id, std::string product, std::string title, bool image) {
  data::Item it;
  it.id = std::move(id);
  it.product_id = std::move(product);
  it.title = std::move(title);
  if (image) it.images.push_back("images/" + it.id + ".png");
  it.where = {"fixed", 1, ""};
  return it;
}

const data::ItemTable& sources() {
  static const data::ItemTable table({item("q1", "", "red apple", false), item("q2", "", "green", false),
                                      item("v1", "", "", true), item("p1", "", "my post", true)});
  return table;
}
const data::ItemTable& catalog() {
  static const data::ItemTable table({item("c1", "1f34e", "red apple", true), item("c2", "1f34f", "green apple", true),
                                      item("c3", "1f34f", "green apple too", true)});
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = fuzz::write_file("pairs.jsonl", fuzz::as_view(data, size));
  try {
    const auto pairs = data::read_pairs(file, sources(), catalog());
    for (const auto& p : pairs)
      if (sources().find(p.source) == nullptr || !catalog().has_product(p.target)) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
