#pragma once
// The interface every tokenizer implements, so loaders and apps take any of them.
// Implementations: data/tokenizers/wordpiece.hpp, data/tokenizers/bpe.hpp.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <commercemm/core/error.hpp>

namespace commercemm::data {

/// Ids of the special tokens a model needs. Every tokenizer defines all of them: one whose
/// vocabulary file lacks some appends them after its regular tokens (see its header).
struct SpecialTokens {
  std::int64_t pad = 0;   ///< fills positions past the end of a text (text_mask 0 there)
  std::int64_t unk = 0;   ///< a piece the vocabulary cannot spell
  std::int64_t mask = 0;  ///< what MLM writes over a masked token
};

/// Text to ids and back. Implementations are immutable after construction and safe to call
/// from several loader threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// The ids of `text`, without special tokens (the text encoder adds its own CLS).
  virtual std::vector<std::int64_t> encode(std::string_view text) const = 0;
  /// The text of `ids`; special tokens are skipped.
  virtual std::string decode(const std::vector<std::int64_t>& ids) const = 0;
  /// Size of the id space including the special tokens: the model's text.vocab_size.
  virtual std::int64_t vocab_size() const = 0;
  virtual SpecialTokens special_tokens() const = 0;
};

/// Throws commercemm::Error (field "ids") unless 0 <= id < vocab_size: decode() takes ids
/// from outside, and a wrong one must not read past a table.
inline void check_id(std::int64_t id, std::int64_t vocab_size) {
  if (id < 0 || id >= vocab_size)
    throw Error(Location{"", 0, "ids"},
                "id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab_size));
}

}  // namespace commercemm::data
