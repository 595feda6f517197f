// model.image.init and model.text.init: a pre-training run starts its encoders from a
// safetensors file (here a whole model's, written as `commercemm export` writes it), and only
// the encoders: the fusion and heads keep their seeded initialisation. A run about to resume
// does not read the file.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include <commercemm/components.hpp>
#include <commercemm/train/trainer.hpp>

namespace cmm = commercemm;
namespace fs = std::filesystem;

namespace {
using Recipe = cmm::Recipe<cmm::DefaultModel, cmm::TaskList<cmm::tasks::ITC<>>, cmm::schedules::FixedFusionSplit<0>>;

bool same(torch::nn::Module& a, torch::nn::Module& b) {
  const auto theirs = cmm::train::named_tensors(b);
  for (const auto& [name, t] : cmm::train::named_tensors(a))
    if (!torch::equal(t, theirs.at(name))) return false;
  return true;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(app_pretrained_init)

BOOST_AUTO_TEST_CASE(a_run_starts_its_encoders_from_the_init_files) {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/tiny.toml");
  c.data.dir = std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce";
  c.data.pair_kinds.clear();  // ITC alone has no pass B
  c.model.image.layers = 1, c.model.text.layers = 1, c.model.fusion.layers = 1;
  const auto split = cmm::data::read_split(c.data.dir, "train");
  const auto tokenizer = cmm::train::learn_tokenizer(split, c.model.text.vocab_size);
  c.model.text.vocab_size = tokenizer->vocab_size();

  torch::manual_seed(77);  // another seed than the run's: different weights
  cmm::DefaultModel source(c.model);
  const fs::path file = fs::temp_directory_path() / ("commercemm-init-" + std::to_string(::getpid()) + ".safetensors");
  cmm::train::write_safetensors(file, cmm::train::named_tensors(*source));

  auto with_init = c;
  with_init.model.image.init = with_init.model.text.init = file.string();
  cmm::train::Trainer<Recipe> started(with_init, tokenizer, split);
  BOOST_TEST(same(*started.model()->image_encoder(), *source->image_encoder()));
  BOOST_TEST(same(*started.model()->text_encoder(), *source->text_encoder()));
  BOOST_TEST(!same(*started.model()->fusion(), *source->fusion()));

  // The same run without the files (or one about to resume) has the seed's weights.
  cmm::train::Trainer<Recipe> plain(c, tokenizer, split);
  cmm::train::Trainer<Recipe> resuming(with_init, tokenizer, split, {}, /*pretrained=*/false);
  BOOST_TEST(!same(*plain.model()->image_encoder(), *source->image_encoder()));
  BOOST_TEST(same(*resuming.model()->image_encoder(), *plain.model()->image_encoder()));
  BOOST_TEST(same(*started.model()->fusion(), *plain.model()->fusion()));

  // A file that is not there is an error naming it.
  auto missing = c;
  missing.model.image.init = (fs::temp_directory_path() / "no-such-commercemm-weights.safetensors").string();
  BOOST_CHECK_EXCEPTION((cmm::train::Trainer<Recipe>(missing, tokenizer, split)), cmm::Error,
                        [&](const cmm::Error& e) { return e.where().file == missing.model.image.init; });
  fs::remove(file);
}

BOOST_AUTO_TEST_SUITE_END()
