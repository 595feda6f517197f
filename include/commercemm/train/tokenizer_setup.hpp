#pragma once
// The tokenizer of a run: made from the config, saved in a checkpoint and read back, and what
// pretrained BERT weights need of it. Definitions: train/impl/tokenizer_setup.ipp (see
// core/linkage.hpp); a TU that only uses these needs none of the tokenizers' own code.
#include <cstdint>
#include <memory>

#include <nlohmann/json.hpp>

#include <commercemm/core/config.hpp>
#include <commercemm/core/linkage.hpp>
#include <commercemm/data/manifest.hpp>
#include <commercemm/data/tokenizer.hpp>

namespace commercemm::data {
class ByteLevelBpe;
}

namespace commercemm::train {

/// A byte-level BPE learned from a split's catalog and source texts, at most `vocab_size`
/// ids (a small catalog runs out of pairs worth merging before that).
COMMERCEMM_DECL std::shared_ptr<const data::ByteLevelBpe> learn_tokenizer(const data::DatasetSplit& split,
                                                                         std::int64_t vocab_size);

/// The tokenizer data.tokenizer names: learned from `split`, or read from data.vocab (and
/// data.merges).
COMMERCEMM_DECL std::shared_ptr<const data::Tokenizer> make_tokenizer(const Config& config, const data::DatasetSplit& split);

/// The tokenizer as JSON: it travels inside the checkpoint, whichever it is (a learned or
/// GPT-2's byte-level BPE, BERT's WordPiece), so a checkpoint needs no vocabulary file.
COMMERCEMM_DECL nlohmann::json tokenizer_to_json(const data::Tokenizer& tokenizer);
/// The inverse of tokenizer_to_json.
COMMERCEMM_DECL std::shared_ptr<const data::Tokenizer> tokenizer_from_json(const nlohmann::json& j);

/// The tokenizer's [CLS] id (a WordPiece vocabulary's), or -1: what BERT's CLS embedding is.
COMMERCEMM_DECL std::int64_t cls_id_of(const data::Tokenizer& tokenizer);

}  // namespace commercemm::train

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/train/impl/tokenizer_setup.ipp>
#endif
