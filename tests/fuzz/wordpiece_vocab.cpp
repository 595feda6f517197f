// Fuzzes WordPiece vocabulary loading (vocab.txt, WordPieceTokenizer::from_file); a vocabulary
// that loads must encode and decode the probe texts.
#include "tokenizers.hpp"

using namespace commercemm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = fuzz::write_file("vocab.txt", fuzz::as_view(data, size));
  try {
    const auto tok = data::WordPieceTokenizer::from_file(file.string());
    for (const auto& text : fuzz::probe_texts()) {
      const auto ids = tok.encode(text);
      for (auto id : ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();
      (void)tok.decode(ids);
      (void)tok.tokenize(text);
    }
  } catch (const Error&) {
  }
  return 0;
}
