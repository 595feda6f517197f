#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>
#include <tuple>

#include <torch/serialize.h>
#include <torch/types.h>

#include <commercemm/components.hpp>
#include <commercemm/encoders/conv_net.hpp>

#include "support.hpp"

namespace cmm = commercemm;
using Model = cmm::DefaultModel;
// Every image encoder the library ships, in the same model.
using ModelsOfEveryImageEncoder =
    std::tuple<Model, cmm::Model<cmm::encoders::ConvNet, cmm::encoders::TextTransformer, cmm::fusion::MergedAttention>>;

using model_test::make_batch;
using model_test::tiny;

BOOST_AUTO_TEST_SUITE(model)

BOOST_AUTO_TEST_CASE_TEMPLATE(shapes_for_every_preset, AnyModel, ModelsOfEveryImageEncoder) {
  for (const char* name : {"tiny", "small", "base"}) {
    BOOST_TEST_CONTEXT("preset " << name) {
      const auto c = cmm::presets::model(name);
      torch::manual_seed(0);
      AnyModel model(c);
      model->eval();
      torch::NoGradGuard no_grad;
      const std::int64_t b = 2, l = 7;
      const auto batch = make_batch(c, b, l, 1);
      const auto image = model->encode_image(batch.images);
      BOOST_TEST(image.tokens.sizes() == torch::IntArrayRef({b, 1 + c.image.num_patches(), c.image.width}));
      const auto text = model->encode_text(batch.text_ids, batch.text_mask);
      BOOST_TEST(text.tokens.sizes() == torch::IntArrayRef({b, 1 + l, c.text.width}));
      const auto fused = model->fuse(text, image);
      BOOST_TEST(fused.text.tokens.sizes() == torch::IntArrayRef({b, 1 + l, c.fusion.width}));
      BOOST_TEST(fused.image.tokens.sizes() == torch::IntArrayRef({b, 1 + c.image.num_patches(), c.fusion.width}));
      const auto e = model->embed(batch);
      for (const auto& t : {e.image, e.text, e.multimodal}) {
        BOOST_TEST(t.sizes() == torch::IntArrayRef({b, c.embed_dim}));
        BOOST_TEST(torch::allclose(t.norm(2, -1), torch::ones({b}), 1e-5, 1e-5));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(absent_modality_is_undefined_not_zero) {
  Model model(tiny());
  model->eval();
  auto batch = make_batch(tiny(), 3, 5, 2);
  auto text_only = batch;
  text_only.images = torch::Tensor();
  auto e = model->embed(text_only);
  BOOST_TEST(!e.image.defined());
  BOOST_TEST(e.text.defined());
  BOOST_TEST(e.multimodal.sizes() == torch::IntArrayRef({3, 64}));
  auto image_only = batch;
  image_only.text_ids = torch::Tensor();
  image_only.text_mask = torch::Tensor();
  e = model->embed(image_only);
  BOOST_TEST(!e.text.defined());
  BOOST_TEST(e.image.defined());
  BOOST_TEST(e.multimodal.defined());
}

BOOST_AUTO_TEST_CASE(padding_invariance) {
  Model model(tiny());
  model->eval();
  torch::NoGradGuard no_grad;
  auto batch = make_batch(tiny(), 2, 6, 3);
  auto padded = batch;
  padded.text_ids = torch::cat({batch.text_ids, torch::randint(1, 100, {2, 5}, torch::kLong)}, 1);
  padded.text_mask = torch::cat({batch.text_mask, torch::zeros({2, 5}, torch::kLong)}, 1);
  for (std::int64_t s : {0, 1, 2}) {
    const auto a = model->embed(batch, cmm::FusionSplit{s});
    const auto b = model->embed(padded, cmm::FusionSplit{s});
    BOOST_TEST(torch::allclose(a.text, b.text, 1e-5, 1e-5));
    BOOST_TEST(torch::allclose(a.multimodal, b.multimodal, 1e-5, 1e-5));
  }
}

BOOST_AUTO_TEST_CASE(split_at_depth_keeps_towers_apart) {
  const auto c = tiny();
  Model model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  auto batch = make_batch(c, 2, 6, 4);
  auto other = batch;
  other.images = torch::randn_like(batch.images);
  auto text_side = [&](const cmm::Batch& b, std::int64_t s) {
    const auto text = model->encode_text(b.text_ids, b.text_mask);
    const auto image = model->encode_image(b.images);
    return model->fuse(text, image, cmm::FusionSplit{s}).text.tokens;
  };
  const auto depth = c.fusion.layers;
  BOOST_TEST(text_side(batch, depth).equal(text_side(other, depth)));
  BOOST_TEST(!torch::allclose(text_side(batch, 0), text_side(other, 0), 1e-3, 1e-3));
  // Splits below depth but above 0 fuse too (only the top layers are joint).
  BOOST_TEST(!torch::allclose(text_side(batch, depth - 1), text_side(other, depth - 1), 1e-3, 1e-3));
  BOOST_CHECK_THROW(model->embed(batch, cmm::FusionSplit{depth + 1}), cmm::Error);
}

BOOST_AUTO_TEST_CASE(every_parameter_gets_a_gradient) {
  const auto c = tiny();
  Model model(c);
  auto batch = make_batch(c, 4, 6, 5);
  batch.text_mask.select(1, 5).fill_(0);
  auto patch_mask = torch::rand({4, c.image.num_patches()}) < 0.4;
  const auto image = model->encode_image(batch.images, patch_mask);
  const auto text = model->encode_text(batch.text_ids, batch.text_mask);
  const auto fused = model->fuse(text, image);
  auto loss = model->embed_image(image).sum() + model->embed_text(text).pow(3).sum() +
              model->embed_multimodal(fused).pow(3).sum() + fused.text.tokens.pow(2).mean() +
              fused.image.tokens.pow(2).mean();
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    BOOST_TEST_CONTEXT(p.key()) {
      BOOST_TEST(p.value().grad().defined());
      if (p.value().grad().defined()) BOOST_TEST(p.value().grad().abs().sum().item<double>() > 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(fixed_seed_gives_identical_outputs) {
  auto run = [] {
    torch::manual_seed(42);
    Model model(tiny());
    model->eval();
    return model->embed(make_batch(tiny(), 2, 4, 7)).multimodal;
  };
  BOOST_TEST(run().equal(run()));
}

BOOST_AUTO_TEST_CASE(clone_is_deep_and_save_load_is_exact) {
  Model model(tiny());
  model->eval();
  const auto batch = make_batch(tiny(), 2, 4, 8);
  const auto before = model->embed(batch).multimodal;

  auto copy = std::dynamic_pointer_cast<Model::Impl>(model->clone());
  BOOST_REQUIRE(copy);
  BOOST_TEST(copy->embed(batch).multimodal.equal(before));
  {
    torch::NoGradGuard g;
    for (auto& p : copy->parameters()) p.add_(1.0);
  }
  BOOST_TEST(model->embed(batch).multimodal.equal(before));  // the original is untouched

  const auto path = (std::filesystem::temp_directory_path() / "commercemm_model_roundtrip.pt").string();
  torch::save(model, path);
  torch::manual_seed(123);
  Model loaded(tiny());
  torch::load(loaded, path);
  loaded->eval();
  BOOST_TEST(loaded->embed(batch).multimodal.equal(before));
}

BOOST_AUTO_TEST_CASE(call_counts) {
  Model model(tiny());
  auto batch = make_batch(tiny(), 2, 4, 9);
  model->embed(batch);
  BOOST_TEST(model->calls().image_encoder == 1);
  BOOST_TEST(model->calls().text_encoder == 1);
  BOOST_TEST(model->calls().fusion == 1);
  model->reset_calls();
  BOOST_TEST(model->calls().fusion == 0);
}

BOOST_AUTO_TEST_CASE(bad_inputs_are_clear_errors) {
  Model model(tiny());
  auto batch = make_batch(tiny(), 2, 4, 10);
  auto wrong_size = batch;
  wrong_size.images = torch::randn({2, 3, 48, 48});
  BOOST_CHECK_EXCEPTION(model->embed(wrong_size), cmm::Error,
                        [](const cmm::Error& e) { return e.where().field == "images"; });
  auto bad_id = batch;
  bad_id.text_ids[0][0] = tiny().text.vocab_size;
  BOOST_CHECK_EXCEPTION(model->embed(bad_id), cmm::Error,
                        [](const cmm::Error& e) { return e.where().field == "text_ids"; });
  auto broken = tiny();
  broken.embed_dim = 0;
  BOOST_CHECK_THROW(Model{broken}, cmm::Error);
}

BOOST_AUTO_TEST_CASE(base_matches_paper_sizes) {
  const auto c = cmm::presets::model("base");
  Model model(c);
  const double vit = cmm::parameter_count(*model->image_encoder());
  const double bert = cmm::parameter_count(*model->text_encoder());
  // ViT-B/16 without its classifier: 85.8M (about 86M); BERT-base uncased: 109.5M.
  BOOST_TEST(std::abs(vit / 86.0e6 - 1.0) < 0.02, "ViT parameters " << vit);
  BOOST_TEST(std::abs(bert / 109.5e6 - 1.0) < 0.02, "text encoder parameters " << bert);
}

BOOST_AUTO_TEST_SUITE_END()
