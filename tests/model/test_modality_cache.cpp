// Embedding with reuse: an item's per-modality states cached below the fusion split give the
// same embeddings as the full forward, and a changed title reruns only the text side.
#include <boost/test/unit_test.hpp>

#include <string>

#include <torch/types.h>

#include <commercemm/components.hpp>

#include "support.hpp"

namespace cmm = commercemm;
using Model = cmm::DefaultModel;

namespace {
using model_test::tiny;

// Random images and titles with a padded tail on every other row.
cmm::Batch make_batch(const cmm::ModelConfig& c, std::int64_t b, std::int64_t l, std::uint64_t seed) {
  return model_test::make_batch(c, b, l, seed, /*padded=*/true);
}

// The multimodal embedding through the training path: fuse() over whole sequences.
torch::Tensor fused_embedding(Model& model, const cmm::Batch& b, std::int64_t split) {
  const auto text = model->encode_text(b.text_ids, b.text_mask);
  const auto image = model->encode_image(b.images);
  return model->embed_multimodal(model->fuse(text, image, cmm::FusionSplit{split}));
}

// The tiny model from a seed, in eval mode, without gradients.
struct TinyModel {
  explicit TinyModel(std::uint64_t seed) : model(at_seed(seed)) { model->eval(); }
  static cmm::ModelConfig at_seed(std::uint64_t seed) {
    torch::manual_seed(seed);
    return tiny();
  }
  const cmm::ModelConfig c = tiny();
  Model model;
  torch::NoGradGuard no_grad;
};
}  // namespace

BOOST_AUTO_TEST_SUITE(modality_cache)

BOOST_AUTO_TEST_CASE(cached_sides_equal_the_full_forward_at_every_split) {
  TinyModel m(3);
  const auto& c = m.c;
  auto& model = m.model;
  const auto batch = make_batch(c, 4, 8, 1);
  for (std::int64_t s = 0; s <= c.fusion.layers; ++s) {
    BOOST_TEST_CONTEXT("split " << s) {
      const cmm::FusionSplit split{s};
      const auto image = model->cache_image(batch.images, split);
      const auto text = model->cache_text(batch.text_ids, batch.text_mask, split);
      const auto expected = fused_embedding(model, batch, s);
      BOOST_TEST(torch::allclose(model->embed_multimodal(text, image), expected, 1e-5, 1e-6));
      const auto e = model->embed(batch, split);
      BOOST_TEST(torch::allclose(e.multimodal, expected, 1e-5, 1e-6));
      BOOST_TEST(e.image.equal(image.embedding));
      BOOST_TEST(e.text.equal(text.embedding));
      // Below a joint layer the whole side is kept; at the two-tower split only the CLS.
      const auto kept = s == c.fusion.layers ? 1 : 1 + c.image.num_patches();
      BOOST_TEST(image.side.state.tokens.size(1) == kept);
      BOOST_TEST(image.side.state.tokens.size(2) == c.fusion.width);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_new_title_reruns_only_the_text_side) {
  TinyModel m(4);
  const auto& c = m.c;
  auto& model = m.model;
  const auto before = make_batch(c, 3, 7, 2);
  auto after = make_batch(c, 3, 7, 5);
  after.images = before.images;  // same photos, new titles
  for (std::int64_t s : {std::int64_t{0}, c.fusion.layers / 2, c.fusion.layers}) {
    BOOST_TEST_CONTEXT("split " << s) {
      const cmm::FusionSplit split{s};
      const auto photo = model->cache_image(before.images, split);
      model->reset_calls();
      const auto title = model->cache_text(after.text_ids, after.text_mask, split);
      const auto updated = model->embed_multimodal(title, photo);
      BOOST_TEST(model->calls().image_encoder == 0);
      BOOST_TEST(model->calls().text_encoder == 1);
      BOOST_TEST(model->calls().fusion == 1);
      BOOST_TEST(torch::allclose(updated, fused_embedding(model, after, s), 1e-5, 1e-6));
      BOOST_TEST(!torch::allclose(updated, fused_embedding(model, before, s), 1e-3, 1e-3));
    }
  }
}

BOOST_AUTO_TEST_CASE(one_modality_alone) {
  TinyModel m(5);
  const auto& c = m.c;
  auto& model = m.model;
  const auto batch = make_batch(c, 2, 6, 3);
  const cmm::FusionSplit split{1};
  auto text_only = batch;
  text_only.images = torch::Tensor();
  const auto text = model->cache_text(batch.text_ids, batch.text_mask, split);
  BOOST_TEST(torch::allclose(model->embed_multimodal(text, {}), model->embed(text_only, split).multimodal, 1e-5, 1e-6));
  auto image_only = batch;
  image_only.text_ids = image_only.text_mask = torch::Tensor();
  const auto image = model->cache_image(batch.images, split);
  BOOST_TEST(torch::allclose(model->embed_multimodal({}, image), model->embed(image_only, split).multimodal, 1e-5, 1e-6));
}

BOOST_AUTO_TEST_CASE(sides_of_two_splits_do_not_join) {
  const auto c = tiny();
  Model model(c);
  torch::NoGradGuard no_grad;
  const auto batch = make_batch(c, 2, 5, 6);
  const auto text = model->cache_text(batch.text_ids, batch.text_mask, cmm::FusionSplit{0});
  const auto image = model->cache_image(batch.images, cmm::FusionSplit{1});
  BOOST_CHECK_EXCEPTION(model->embed_multimodal(text, image), cmm::Error, [](const cmm::Error& e) {
    return std::string(e.what()).find("text side was computed at split 0 and the image side at split 1") !=
           std::string::npos;
  });
  BOOST_CHECK_THROW(model->embed_multimodal({}, {}), cmm::Error);
  BOOST_CHECK_THROW(model->cache_text(batch.text_ids, batch.text_mask, cmm::FusionSplit{c.fusion.layers + 1}), cmm::Error);
}

BOOST_AUTO_TEST_SUITE_END()
