// encoders::ConvNet, the convolutional drop-in for the ViT: its stages, a sample's output
// independent of its batch (GroupNorm), masking that changes only what the masked pixels
// reach, bf16 autocast, the "cls_grid" CLS state. Its shapes through a model, for every preset: test_model.cpp.
#include <boost/test/unit_test.hpp>

#include <torch/torch.h>

#include <commercemm/components.hpp>
#include <commercemm/encoders/conv_net.hpp>
#include <commercemm/train/autocast.hpp>

namespace cmm = commercemm;

BOOST_AUTO_TEST_SUITE(conv_net)

BOOST_AUTO_TEST_CASE(one_stage_per_halving_and_fewer_weights_than_the_vit) {
  // The small preset's three stages: 32, 64, 128 then 256 channels; 2 blocks per stage.
  const cmm::encoders::ConvNet small(cmm::presets::model("small").image);
  BOOST_TEST(small->stages->size() == 3u);
  BOOST_TEST(cmm::parameter_count(*small) < cmm::parameter_count(*cmm::encoders::ViT(cmm::presets::model("small").image)));
}

BOOST_AUTO_TEST_CASE(a_sample_is_encoded_the_same_in_any_batch) {
  const auto c = cmm::presets::model("tiny").image;
  torch::manual_seed(1);
  cmm::encoders::ConvNet net(c);
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({4, 3, c.image_size, c.image_size});
  const auto together = net->forward(images).tokens;
  const auto alone = net->forward(images.narrow(0, 2, 1)).tokens;
  BOOST_TEST(torch::allclose(together.narrow(0, 2, 1), alone, 1e-5, 1e-5));
}

BOOST_AUTO_TEST_CASE(masking_replaces_the_patch_pixels_and_gradients_reach_every_weight) {
  const auto c = cmm::presets::model("tiny").image;
  torch::manual_seed(2);
  cmm::encoders::ConvNet net(c);
  const auto images = torch::randn({2, 3, c.image_size, c.image_size});
  auto mask = torch::zeros({2, c.num_patches()}, torch::kBool);
  mask[0][0] = true;
  const auto masked = net->forward(images, mask).tokens;
  const auto clean = net->forward(images).tokens;
  BOOST_TEST(torch::equal(masked[1], clean[1]));       // the unmasked sample is untouched
  BOOST_TEST(!torch::allclose(masked[0], clean[0]));  // the masked one sees the mask colour
  // Changing the masked patch's pixels changes nothing: the net never sees them.
  auto other = images.clone();
  other.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(0, c.patch_size),
                    torch::indexing::Slice(0, c.patch_size)}, 5.0);
  BOOST_TEST(torch::allclose(net->forward(other, mask).tokens, masked));
  masked.sum().backward();
  for (const auto& p : net->named_parameters())
    BOOST_TEST((p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0), p.key());
}

BOOST_AUTO_TEST_CASE(trains_under_bf16_autocast) {
  const auto c = cmm::presets::model("tiny").image;
  torch::manual_seed(3);
  cmm::encoders::ConvNet net(c);
  const auto images = torch::randn({2, 3, c.image_size, c.image_size});
  torch::Tensor out;
  {
    cmm::train::AutocastGuard autocast("bf16");
    out = net->forward(images).tokens;
  }
  const auto reference = net->forward(images).tokens;
  BOOST_TEST(std::isfinite(out.to(torch::kFloat32).abs().sum().item<double>()));
  BOOST_TEST(torch::allclose(out.to(torch::kFloat32), reference, 0.1, 0.1));  // bf16 keeps ~3 digits
  out.to(torch::kFloat32).sum().backward();
  BOOST_TEST(net->stem->weight.grad().defined());
}

BOOST_AUTO_TEST_CASE(cls_grid_adds_a_linear_map_of_the_whole_grid_to_the_cells_average) {
  auto c = cmm::presets::model("tiny").image;
  c.pool = "cls_grid";
  torch::manual_seed(4);
  cmm::encoders::ConvNet net(c);
  BOOST_TEST(net->grid_pool->weight.sizes() == (torch::IntArrayRef{c.width, c.num_patches() * c.width}));
  BOOST_TEST(cmm::encoders::ConvNet(cmm::presets::model("tiny").image)->named_parameters().find("grid_pool.weight") ==
             nullptr);
  const auto images = torch::randn({3, 3, c.image_size, c.image_size});
  const auto tokens = net->forward(images).tokens;
  // The CLS state, computed directly from the last stage's cells [B, W, side, side].
  torch::NoGradGuard no_grad;
  auto x = torch::relu(net->stem_norm(net->stem(images)));
  for (auto& stage : *net->stages) x = stage->as<torch::nn::Sequential>()->forward(x);
  const auto cells = x.flatten(2).transpose(1, 2);  // [B, N, W]
  auto cls = torch::zeros({3, c.width});
  for (std::int64_t b = 0; b < 3; ++b) {
    cls[b] = cells[b].mean(0) + net->grid_pool->bias;
    for (std::int64_t n = 0; n < c.num_patches(); ++n)  // the weight's column block of cell n
      cls[b] += torch::mv(net->grid_pool->weight.narrow(1, n * c.width, c.width), cells[b][n]);
  }
  const auto expected = net->norm(cls + net->positions[0][0]);
  BOOST_TEST(torch::allclose(tokens.select(1, 0), expected, 1e-4, 1e-5));
  // The cells themselves are as with "cls": the grid changes only the CLS state.
  BOOST_TEST(torch::allclose(tokens.narrow(1, 1, c.num_patches()), net->norm(cells + net->positions.narrow(1, 1, c.num_patches())),
                             1e-4, 1e-5));
  // Where a cell's content sits now matters: swapping two cells' features moves the CLS state
  // (an average would not see it).
  auto swapped = cells.clone();
  swapped.select(1, 0).copy_(cells.select(1, 5));
  swapped.select(1, 5).copy_(cells.select(1, 0));
  BOOST_TEST(torch::allclose(swapped.mean(1), cells.mean(1), 1e-5, 1e-6));
  BOOST_TEST(!torch::allclose(net->grid_pool(swapped.flatten(1)), net->grid_pool(cells.flatten(1)), 1e-3, 1e-3));
}

BOOST_AUTO_TEST_CASE(cls_grid_is_an_error_for_the_vit_and_other_modes_for_both) {
  auto config = cmm::presets::model("tiny");
  config.image.pool = "cls_grid";
  cmm::validate(config);  // valid for a ConvNet model
  BOOST_CHECK_EXCEPTION(cmm::encoders::ViT{config.image}, cmm::Error, [](const cmm::Error& e) {
    return e.where().field == "model.image.pool" && e.message().find("ConvNet") != std::string::npos;
  });
  config.image.pool = "max";
  BOOST_CHECK_EXCEPTION(cmm::validate(config), cmm::Error, [](const cmm::Error& e) {
    return e.where().field == "model.image.pool" && e.message().find("\"max\"") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(thumbnail_adds_a_linear_map_of_the_centred_normalised_thumbnail_to_the_cls_state) {
  auto c = cmm::presets::model("tiny").image;
  c.thumbnail = 4;
  torch::manual_seed(5);
  cmm::encoders::ConvNet net(c);
  BOOST_TEST(net->thumbnail_pool->weight.sizes() == (torch::IntArrayRef{c.width, 3 * 4 * 4}));
  BOOST_TEST(cmm::encoders::ConvNet(cmm::presets::model("tiny").image)->named_parameters().find(
                 "thumbnail_pool.weight") == nullptr);
  const auto images = torch::rand({2, 3, c.image_size, c.image_size});
  const auto tokens = net->forward(images).tokens;
  torch::NoGradGuard no_grad;
  // The thumbnail by hand: each channel's 8 x 8 blocks averaged (32 px -> 4 x 4), the row's
  // mean subtracted, the row scaled to unit length.
  const auto block = c.image_size / 4;
  auto thumb = torch::zeros({2, 3 * 4 * 4});
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t ch = 0; ch < 3; ++ch)
      for (std::int64_t i = 0; i < 4; ++i)
        for (std::int64_t j = 0; j < 4; ++j)
          thumb[b][ch * 16 + i * 4 + j] =
              images[b][ch].narrow(0, i * block, block).narrow(1, j * block, block).mean();
  thumb = thumb - thumb.mean(1, true);
  thumb = thumb / thumb.norm(2, {1}, true);
  auto x = torch::relu(net->stem_norm(net->stem(images)));
  for (auto& stage : *net->stages) x = stage->as<torch::nn::Sequential>()->forward(x);
  const auto cells = x.flatten(2).transpose(1, 2);  // [B, N, W]
  const auto cls = cells.mean(1) + torch::matmul(thumb, net->thumbnail_pool->weight.t()) + net->thumbnail_pool->bias;
  BOOST_TEST(torch::allclose(tokens.select(1, 0), net->norm(cls + net->positions[0][0]), 1e-4, 1e-5));
  // Blind to brightness and contrast, as the raw-pixel reference is: a * image + b has the same
  // CLS state (the convolutions see the change, so only the thumbnail's term is compared).
  const auto thumbnail_term = [&](const torch::Tensor& in) {
    return net->thumbnail_pool(cmm::nn::thumbnail(in, 4));
  };
  BOOST_TEST(torch::allclose(thumbnail_term(images * 0.5 + 0.2), thumbnail_term(images), 1e-4, 1e-5));
  // A masked patch reaches the thumbnail as the mask colour, so masked image modelling cannot
  // read the hidden pixels through it: two images that differ only under the mask agree.
  auto mask = torch::zeros({2, c.num_patches()}, torch::kBool);
  mask.select(1, 0).fill_(true);
  auto changed = images.clone();
  changed.narrow(2, 0, c.patch_size).narrow(3, 0, c.patch_size).uniform_();
  BOOST_TEST(torch::allclose(net->forward(changed, mask).tokens, net->forward(images, mask).tokens, 1e-5, 1e-6));
  BOOST_TEST(!torch::allclose(net->forward(changed).tokens, net->forward(images).tokens, 1e-3, 1e-3));
}

BOOST_AUTO_TEST_CASE(thumbnail_is_an_error_for_the_vit_and_outside_one_to_the_image_size) {
  auto config = cmm::presets::model("tiny");
  config.image.thumbnail = 16;
  cmm::validate(config);  // valid for a ConvNet model
  BOOST_CHECK_EXCEPTION(cmm::encoders::ViT{config.image}, cmm::Error, [](const cmm::Error& e) {
    return e.where().field == "model.image.thumbnail" && e.message().find("ConvNet") != std::string::npos;
  });
  for (const std::int64_t bad : {std::int64_t{-1}, config.image.image_size + 1}) {
    config.image.thumbnail = bad;
    BOOST_CHECK_EXCEPTION(cmm::validate(config), cmm::Error, [&](const cmm::Error& e) {
      return e.where().field == "model.image.thumbnail" && e.message().find(std::to_string(bad)) != std::string::npos;
    });
  }
}

BOOST_AUTO_TEST_CASE(keys_the_conv_net_does_not_read_are_an_error_off_the_preset) {
  // heads, mlp_ratio and dropout do nothing in a ConvNet: set away from the preset they are an
  // error naming the key and both values; at the preset's values (base has dropout 0.1) they
  // are not, and the ViT model reads them all.
  using ConvModel = cmm::Model<cmm::encoders::ConvNet, cmm::encoders::TextTransformer, cmm::fusion::MergedAttention>;
  using VitModel = cmm::Model<cmm::encoders::ViT, cmm::encoders::TextTransformer, cmm::fusion::MergedAttention>;
  const auto tiny = cmm::presets::model("tiny");
  BOOST_CHECK_NO_THROW(ConvModel{tiny});
  BOOST_CHECK_NO_THROW(ConvModel{cmm::presets::model("base")});
  const auto expect_error = [](cmm::ModelConfig config, const std::string& key, const std::string& values) {
    BOOST_CHECK_EXCEPTION(ConvModel{config}, cmm::Error, [&](const cmm::Error& e) {
      BOOST_TEST_INFO(e.what());
      return e.where().field == key && e.message().find(values) != std::string::npos;
    });
  };
  auto heads = tiny;
  heads.image.heads = 4;
  expect_error(heads, "model.image.heads", "preset's value (2) applies, got 4");
  BOOST_CHECK_NO_THROW(VitModel{heads});
  auto mlp = tiny;
  mlp.image.mlp_ratio = 2;
  expect_error(mlp, "model.image.mlp_ratio", "(4) applies, got 2");
  auto dropout = tiny;
  dropout.image.dropout = 0.3;
  expect_error(dropout, "model.image.dropout", "(0) applies, got 0.3");
  BOOST_CHECK_NO_THROW(VitModel{dropout});
  dropout.text.dropout = 0.3;  // the text transformer reads its dropout
  dropout.image.dropout = 0.0;
  BOOST_CHECK_NO_THROW(ConvModel{dropout});
}

BOOST_AUTO_TEST_CASE(a_patch_size_that_is_not_a_power_of_two_is_an_error) {
  auto c = cmm::presets::model("tiny").image;
  c.patch_size = 6;
  c.image_size = 36;
  BOOST_CHECK_EXCEPTION(cmm::encoders::ConvNet{c}, cmm::Error,
                        [](const cmm::Error& e) { return e.where().field == "model.image.patch_size"; });
}

BOOST_AUTO_TEST_SUITE_END()
