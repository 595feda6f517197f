// Fuzzes byte-level BPE vocabulary loading (ByteLevelBpe::from_files). The input is
// encoder.json, a NUL byte, then vocab.bpe (no NUL: vocab.bpe is empty). A vocabulary that
// loads must encode losslessly and survive save() + from_files().
#include "tokenizers.hpp"

using namespace commercemm;

namespace {
void check(const data::ByteLevelBpe& tok) {
  for (const auto& text : fuzz::probe_texts()) {
    const auto ids = tok.encode(text);
    for (auto id : ids)
      if (id < 0 || id >= tok.regular_size()) std::abort();
    if (tok.decode(ids) != text) std::abort();  // byte-level BPE is lossless
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = fuzz::as_view(data, size);
  const auto nul = input.find('\0');
  const auto encoder = fuzz::write_file("encoder.json", input.substr(0, nul));
  const auto merges = fuzz::write_file("vocab.bpe", nul == input.npos ? std::string_view() : input.substr(nul + 1));
  std::optional<data::ByteLevelBpe> tok;
  try {
    tok.emplace(data::ByteLevelBpe::from_files(encoder.string(), merges.string()));
  } catch (const Error&) {
    return 0;
  }
  check(*tok);
  const auto dir = fuzz::scratch_dir() / "saved";
  std::filesystem::create_directories(dir);
  tok->save_to_directory(dir.string());
  try {
    const auto again = data::ByteLevelBpe::from_directory(dir.string());
    if (again.tokens() != tok->tokens() || again.merges() != tok->merges()) std::abort();
    check(again);
  } catch (const Error& e) {
    std::fprintf(stderr, "save() wrote files from_files() rejects: %s\n", e.what());
    std::abort();
  }
  return 0;
}
