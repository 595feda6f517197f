// encoders::ConvNet, the convolutional drop-in for the ViT: its stages, a sample's output
// independent of its batch (GroupNorm), masking that changes only what the masked pixels
// reach, bf16 autocast. Its shapes through a model, for every preset: test_model.cpp.
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

BOOST_AUTO_TEST_CASE(a_patch_size_that_is_not_a_power_of_two_is_an_error) {
  auto c = cmm::presets::model("tiny").image;
  c.patch_size = 6;
  c.image_size = 36;
  BOOST_CHECK_EXCEPTION(cmm::encoders::ConvNet{c}, cmm::Error,
                        [](const cmm::Error& e) { return e.where().field == "model.image.patch_size"; });
}

BOOST_AUTO_TEST_SUITE_END()
