// Fuzzes WordPiece encode() of arbitrary bytes with BERT's uncased vocabulary, and decode() of
// the ids it gives (must not throw) and of arbitrary ids (may only throw commercemm::Error).
#include "tokenizers.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::bert();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& tok = fuzz::bert();
  const auto text = fuzz::as_view(data, size);
  const auto ids = tok.encode(text);
  for (auto id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  (void)tok.decode(ids);
  (void)tok.tokenize(text);
  try {
    (void)tok.decode(fuzz::ids_from_bytes(text, 16));
  } catch (const Error&) {
  }
  return 0;
}
