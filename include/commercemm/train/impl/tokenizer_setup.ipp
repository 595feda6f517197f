#pragma once
// Definitions of train/tokenizer_setup.hpp (see core/linkage.hpp).
#include <memory>
#include <string>
#include <vector>

#include <commercemm/core/error.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/data/tokenizers/hashed_ngrams.hpp>
#include <commercemm/data/tokenizers/wordpiece.hpp>
#include <commercemm/train/tokenizer_setup.hpp>

namespace commercemm::train {

COMMERCEMM_DECL std::shared_ptr<const data::ByteLevelBpe> learn_tokenizer(const data::DatasetSplit& split,
                                                                         std::int64_t vocab_size) {
  return std::make_shared<const data::ByteLevelBpe>(data::train_byte_level_bpe(split.texts(), {vocab_size, 2}));
}

COMMERCEMM_DECL std::shared_ptr<const data::Tokenizer> make_tokenizer(const Config& config, const data::DatasetSplit& split) {
  const auto& d = config.data;
  if (d.tokenizer == "wordpiece")
    return std::make_shared<const data::WordPieceTokenizer>(data::WordPieceTokenizer::from_file(d.vocab));
  if (d.tokenizer == "gpt2_bpe")
    return std::make_shared<const data::ByteLevelBpe>(data::ByteLevelBpe::from_files(d.vocab, d.merges));
  if (d.tokenizer == "hashed_ngrams")
    return std::make_shared<const data::HashedNgramTokenizer>(config.model.text.vocab_size, d.ngram);
  return learn_tokenizer(split, config.model.text.vocab_size);
}

COMMERCEMM_DECL nlohmann::json tokenizer_to_json(const data::Tokenizer& tokenizer) {
  if (const auto* bpe = dynamic_cast<const data::ByteLevelBpe*>(&tokenizer)) {
    nlohmann::json merges = nlohmann::json::array();
    for (const auto& [a, b] : bpe->merges()) merges.push_back({a, b});
    return {{"kind", "byte_level_bpe"}, {"tokens", bpe->tokens()}, {"merges", merges}};
  }
  if (const auto* wordpiece = dynamic_cast<const data::WordPieceTokenizer*>(&tokenizer))
    return {{"kind", "wordpiece"}, {"tokens", wordpiece->tokens()}};
  if (const auto* hashed = dynamic_cast<const data::HashedNgramTokenizer*>(&tokenizer))
    return {{"kind", "hashed_ngrams"}, {"vocab_size", hashed->vocab_size()}, {"n", hashed->n()}};
  throw Error(Location{"<checkpoint>", 0, "tokenizer"}, "this tokenizer type cannot be saved in a checkpoint");
}
COMMERCEMM_DECL std::shared_ptr<const data::Tokenizer> tokenizer_from_json(const nlohmann::json& j) {
  const auto kind = j.value("kind", "");
  if (kind == "wordpiece")
    return std::make_shared<const data::WordPieceTokenizer>(
        data::WordPieceTokenizer::from_tokens(j.at("tokens").get<std::vector<std::string>>(), "<checkpoint>"));
  if (kind == "hashed_ngrams")
    return std::make_shared<const data::HashedNgramTokenizer>(j.at("vocab_size").get<std::int64_t>(),
                                                              j.at("n").get<std::int64_t>());
  if (kind != "byte_level_bpe")
    throw Error(Location{"<checkpoint>", 0, "tokenizer.kind"}, "unsupported tokenizer kind '" + kind + "'");
  std::vector<data::ByteLevelBpe::Merge> merges;
  for (const auto& m : j.at("merges")) merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
  return std::make_shared<const data::ByteLevelBpe>(
      data::ByteLevelBpe::from_vocab(j.at("tokens").get<std::vector<std::string>>(), merges));
}

COMMERCEMM_DECL std::int64_t cls_id_of(const data::Tokenizer& tokenizer) {
  const auto* wordpiece = dynamic_cast<const data::WordPieceTokenizer*>(&tokenizer);
  return wordpiece ? wordpiece->token_to_id("[CLS]") : -1;
}

}  // namespace commercemm::train
