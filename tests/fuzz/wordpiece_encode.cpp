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
  const auto ids = fuzz::encode_checked(tok, text, tok.vocab_size());
  (void)tok.decode(ids);
  (void)tok.tokenize(text);
  return 0;
}
