// Fuzzes hashed character n-gram encode() of arbitrary bytes (normalisation through utf8proc,
// invalid UTF-8, every script): ids must be buckets, never the special ids; a separator added
// at the end must change nothing; decode() of arbitrary ids may only throw commercemm::Error.
#include <commercemm/data/tokenizers/hashed_ngrams.hpp>

#include "tokenizers.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const data::HashedNgramTokenizer trigrams(1 << 12, 3), unigrams(97, 1);
  const auto text = fuzz::as_view(data, size);
  for (const auto* tok : {&trigrams, &unigrams}) {
    const auto ids = fuzz::encode_checked(*tok, text, tok->vocab_size());
    for (auto id : ids)
      if (id < data::HashedNgramTokenizer::special_count) std::abort();
    if (tok->encode(std::string(text) + " ") != ids) std::abort();
    (void)tok->decode(ids);
  }
  return 0;
}
