// Fuzzes byte-level BPE encode() of arbitrary bytes with GPT-2's vocabulary: the ids must be
// regular tokens and decode back to exactly the input; decode() of arbitrary ids may only
// throw commercemm::Error.
#include "tokenizers.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::gpt2();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& tok = fuzz::gpt2();
  const auto text = fuzz::as_view(data, size);
  const auto ids = fuzz::encode_checked(tok, text, tok.regular_size());
  if (tok.decode(ids) != text) std::abort();
  return 0;
}
