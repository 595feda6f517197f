// eval::embed_items and eval::SideStore (`embed`, `embed --update`): on real image files, an
// update that reuses an earlier run's sides gives exactly the embeddings of embedding the new
// items afresh, runs the encoders only for new photos and titles, and each item's multimodal
// embedding is the model's own embed() of that item alone.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <commercemm/components.hpp>
#include <commercemm/data/tokenizers/hashed_ngrams.hpp>
#include <commercemm/eval/item_embeddings.hpp>

#include "support.hpp"

namespace cmm = commercemm;
namespace fs = std::filesystem;
using Model = cmm::DefaultModel;

namespace {

struct Entry {
  std::string id;
  int photo;  // index into photos(), -1 = no image
  std::string title;
};

// Six real catalog images of the embedded data.
std::vector<fs::path> photos() {
  std::vector<fs::path> all;
  for (const auto& f : fs::directory_iterator(std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce/images/google"))
    all.push_back(f.path());
  std::sort(all.begin(), all.end());
  all.resize(6);
  return all;
}

struct Fixture {
  Fixture() {
    torch::manual_seed(11);
    config.model = cmm::presets::model("tiny");
    config.model.text.vocab_size = 512;
    config.train.precision = "fp32";
    model = Model(config.model);
    model->eval();
  }

  cmm::data::Loader loader(const std::vector<Entry>& entries, std::int64_t batch = 4) const {
    cmm::data::ProductIndex products;
    std::vector<cmm::data::Record> records;
    const auto files = photos();
    for (const auto& e : entries) {
      cmm::data::Item item;
      item.id = e.id;
      item.title = e.title;
      if (e.photo >= 0) item.images = {files[static_cast<std::size_t>(e.photo)]};
      records.push_back({cmm::data::to_example(item, products, e.id), {}});
    }
    return cmm::data::Loader(std::move(records), tokenizer, cmm::data::loader_options(config, batch, false));
  }

  cmm::eval::SideStoreHeader header(std::int64_t split) const {
    return {cmm::eval::model_fingerprint(*model), split, config.train.precision};
  }

  cmm::eval::ItemEmbeddings embed(const std::vector<Entry>& entries, cmm::eval::SideStore& store,
                                  const cmm::eval::SideStore* previous = nullptr, std::int64_t split = 1) {
    auto l = loader(entries);
    return cmm::eval::embed_items(model, l, cmm::FusionSplit{split}, "fp32", store, previous);
  }

  cmm::Config config;
  std::shared_ptr<const cmm::data::Tokenizer> tokenizer = std::make_shared<cmm::data::HashedNgramTokenizer>(512, 3);
  Model model{nullptr};
};

// NaN where absent, equal within float32 rounding elsewhere.
bool same(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && torch::isnan(a).equal(torch::isnan(b)) &&
         torch::allclose(torch::nan_to_num(a), torch::nan_to_num(b), 1e-5, 1e-6);
}

// Item a..e, then the same catalog a day later: a's title changed, b's photo changed, c is gone,
// f is new with a new photo and a's old title.
const std::vector<Entry> kBefore = {
    {"a", 0, "red apple"}, {"b", 1, "blue car"}, {"c", 2, ""}, {"d", -1, "green tree"}, {"e", 0, "shiny apple"}};
const std::vector<Entry> kAfter = {{"a", 0, "red apple, fresh"}, {"b", 3, "blue car"}, {"d", -1, "green tree"},
                                   {"e", 0, "shiny apple"},      {"f", 4, "red apple"}};

}  // namespace

BOOST_AUTO_TEST_SUITE(item_embeddings)

BOOST_AUTO_TEST_CASE(each_item_embeds_as_the_model_embeds_it_alone) {
  Fixture f;
  cmm::eval::SideStore store(f.header(1));
  const auto e = f.embed(kBefore, store);
  BOOST_TEST(e.ids == (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  // Distinct photos 0, 1, 2 and titles "red apple", "blue car", "green tree", "shiny apple".
  BOOST_TEST(e.image_sides.encoded == 3);
  BOOST_TEST(e.text_sides.encoded == 4);
  BOOST_TEST(e.image_sides.reused == 0);
  BOOST_TEST(store.size(cmm::Modality::image) == 3u);
  BOOST_TEST(store.size(cmm::Modality::text) == 4u);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < kBefore.size(); ++i) {
    BOOST_TEST_CONTEXT("item " << kBefore[i].id) {
      auto one = f.loader({kBefore[i]}, 1);
      const auto batch = one.next()->source;
      const auto expected = f.model->embed(batch, cmm::FusionSplit{1});
      const auto row = static_cast<std::int64_t>(i);
      BOOST_TEST(torch::allclose(e.multimodal[row], expected.multimodal[0], 1e-5, 1e-6));
      BOOST_TEST(batch.has_images() == !torch::isnan(e.image[row]).any().item<bool>());
      BOOST_TEST(batch.has_text() == !torch::isnan(e.text[row]).any().item<bool>());
      if (batch.has_images()) BOOST_TEST(torch::allclose(e.image[row], expected.image[0], 1e-5, 1e-6));
      if (batch.has_text()) BOOST_TEST(torch::allclose(e.text[row], expected.text[0], 1e-5, 1e-6));
    }
  }
}

BOOST_AUTO_TEST_CASE(an_update_reruns_only_new_photos_and_titles_and_equals_a_fresh_embedding) {
  Fixture f;
  for (const std::int64_t split : {0, 1, 2}) {  // the tiny fusion has 2 layers: 2 is two towers
    BOOST_TEST_CONTEXT("split " << split) {
      cmm::eval::SideStore before(f.header(split));
      f.embed(kBefore, before, nullptr, split);
      TempDir dir;
      before.save(dir.path / "sides");
      const auto loaded = cmm::eval::SideStore::load(dir.path / "sides", f.header(split));
      BOOST_TEST(loaded.size(cmm::Modality::image) == 3u);
      BOOST_TEST(loaded.size(cmm::Modality::text) == 4u);

      cmm::eval::SideStore updated(f.header(split)), fresh(f.header(split));
      const auto u = f.embed(kAfter, updated, &loaded, split);
      const auto r = f.embed(kAfter, fresh, nullptr, split);
      BOOST_TEST(u.ids == r.ids);
      BOOST_TEST(same(u.image, r.image));
      BOOST_TEST(same(u.text, r.text));
      BOOST_TEST(same(u.multimodal, r.multimodal));
      // Photos 3 and 4 are new, photo 0 is kept; of five titles only "red apple, fresh" is new.
      BOOST_TEST(u.image_sides.encoded == 2);
      BOOST_TEST(u.image_sides.reused == 1);
      BOOST_TEST(u.text_sides.encoded == 1);
      BOOST_TEST(u.text_sides.reused == 4);
      // The new store holds what the new items use: c's photo 2 and a's old pairing are gone.
      BOOST_TEST(updated.size(cmm::Modality::image) == 3u);
      BOOST_TEST(updated.size(cmm::Modality::text) == 5u);
      // Saved over the store it was updated from (`--update DIR --out DIR`): the new one reads back.
      updated.save(dir.path / "sides");
      const auto again = cmm::eval::SideStore::load(dir.path / "sides", f.header(split));
      BOOST_TEST(again.size(cmm::Modality::image) == 3u);
      BOOST_TEST(again.size(cmm::Modality::text) == 5u);
    }
  }
}

BOOST_AUTO_TEST_CASE(bf16_sides_round_trip_exactly) {
  TempDir dir;
  cmm::eval::SideStore store({"00ff", 2, "bf16"});
  const auto tokens = torch::randn({3, 8}).to(torch::kBFloat16);
  store.put(cmm::Modality::text, 42, {torch::randn({4}), tokens});
  store.put(cmm::Modality::text, ~0ull, {torch::randn({4}), tokens.narrow(0, 0, 1)});
  store.save(dir.path);
  const auto back = cmm::eval::SideStore::load(dir.path, {"00ff", 2, "bf16"});
  BOOST_TEST(back.size(cmm::Modality::image) == 0u);
  BOOST_REQUIRE(back.find(cmm::Modality::text, 42));
  BOOST_TEST(back.find(cmm::Modality::text, 42)->tokens.scalar_type() == torch::kBFloat16);
  BOOST_TEST(back.find(cmm::Modality::text, 42)->tokens.equal(tokens));
  BOOST_REQUIRE(back.find(cmm::Modality::text, ~0ull));  // the key's top bit survives int64 storage
  BOOST_TEST(back.find(cmm::Modality::text, ~0ull)->tokens.sizes() == (std::vector<std::int64_t>{1, 8}));
  BOOST_TEST(back.find(cmm::Modality::text, 42)->embedding.equal(store.find(cmm::Modality::text, 42)->embedding));
}

BOOST_AUTO_TEST_CASE(sides_of_another_model_split_or_precision_are_refused) {
  Fixture f;
  cmm::eval::SideStore store(f.header(1));
  f.embed(kBefore, store);
  TempDir dir;
  const auto sides = dir.path / "sides";
  BOOST_TEST(error_of([&] { cmm::eval::SideStore::load(sides, f.header(1)); }).find("--keep-sides") != std::string::npos);
  store.save(sides);
  const auto fingerprint = f.header(1).model_fingerprint;
  BOOST_TEST(fingerprint.size() == 16u);
  BOOST_TEST(error_of([&] { cmm::eval::SideStore::load(sides, f.header(0)); }).find("fusion_split") != std::string::npos);
  BOOST_TEST(error_of([&] { cmm::eval::SideStore::load(sides, {fingerprint, 1, "bf16"}); }).find("precision") !=
             std::string::npos);
  {
    torch::NoGradGuard no_grad;
    f.model->named_parameters()["text_head.bias"].add_(1e-3f);  // a fine-tuned model
  }
  BOOST_TEST(f.header(1).model_fingerprint != fingerprint);
  const auto other = error_of([&] { cmm::eval::SideStore::load(sides, f.header(1)); });
  BOOST_TEST(other.find("model_fingerprint") != std::string::npos);
  BOOST_TEST(other.find("sides.json") != std::string::npos);
  // An interrupted save: sides.json and the arrays disagree.
  std::ifstream in(sides / "sides.json");
  auto j = nlohmann::json::parse(in);
  j["rows"]["image"] = 7;
  std::ofstream(sides / "sides.json") << j.dump();
  const auto torn = error_of([&] { cmm::eval::SideStore::load(sides, {fingerprint, 1, "fp32"}); });
  BOOST_TEST(torn.find("rows.image") != std::string::npos);
  BOOST_TEST(torn.find("image_tokens.npy") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
