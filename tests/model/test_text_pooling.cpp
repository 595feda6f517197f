// model.text.pool: the CLS state of "bag" is the LayerNorm of the mean of the real tokens'
// input embeddings (computed here by hand from the embedding table), "cls_bag" adds the
// transformer's CLS to it, the other positions are the transformer's in every mode, padding
// changes nothing, a text without tokens stays finite, and the bag trains the embeddings.
#include <boost/test/unit_test.hpp>

#include <string>

#include <torch/nn/functional/normalization.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

#include "support.hpp"

namespace cmm = commercemm;
using cmm::encoders::TextTransformer;

namespace {

cmm::TextEncoderConfig text_config(const std::string& pool) {
  auto c = model_test::tiny().text;
  c.vocab_size = 50;
  c.pool = pool;
  return c;
}

// Same seed, so the parameters both modes have are equal (bag_norm draws nothing).
TextTransformer make(const std::string& pool) {
  torch::manual_seed(11);
  TextTransformer encoder(text_config(pool));
  encoder->eval();
  return encoder;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(text_pooling)

BOOST_AUTO_TEST_CASE(bag_is_the_normalised_mean_of_the_real_tokens_embeddings) {
  torch::NoGradGuard no_grad;
  auto cls = make("cls"), bag = make("bag"), both = make("cls_bag");
  {
    // Give the bag's LayerNorm a non-trivial affine part, so the check covers it.
    torch::manual_seed(3);
    bag->bag_norm->weight.uniform_(0.5, 1.5);
    bag->bag_norm->bias.uniform_(-0.5, 0.5);
    both->bag_norm->weight.copy_(bag->bag_norm->weight);
    both->bag_norm->bias.copy_(bag->bag_norm->bias);
  }
  const auto ids = torch::tensor({7, 3, 9, 0, 0, 12, 12, 5, 41, 2}, torch::kLong).view({2, 5});
  const auto mask = torch::tensor({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, torch::kLong).view({2, 5});
  const auto a = cls->forward(ids, mask), b = bag->forward(ids, mask), c = both->forward(ids, mask);

  const auto table = bag->embedding->weight;
  const auto by_hand = [&](std::initializer_list<std::int64_t> row) {
    auto sum = torch::zeros({table.size(1)});
    for (auto id : row) sum += table[id];
    const auto mean = sum / static_cast<double>(row.size());
    const auto centred = mean - mean.mean();
    const auto normed = centred / torch::sqrt(centred.pow(2).mean() + 1e-6);
    return normed * bag->bag_norm->weight + bag->bag_norm->bias;
  };
  const auto expected = torch::stack({by_hand({7, 3, 9}), by_hand({12, 12, 5, 41, 2})});
  BOOST_TEST(torch::allclose(b.cls(), expected, 1e-5, 1e-5));
  BOOST_TEST(torch::allclose(c.cls(), a.cls() + expected, 1e-5, 1e-5));
  // Only the CLS state differs between the modes.
  BOOST_TEST(torch::equal(b.tokens.narrow(1, 1, 5), a.tokens.narrow(1, 1, 5)));
  BOOST_TEST(torch::equal(c.tokens.narrow(1, 1, 5), a.tokens.narrow(1, 1, 5)));
  BOOST_TEST(torch::equal(b.valid, a.valid));
  BOOST_TEST(!torch::allclose(b.cls(), a.cls(), 1e-3, 1e-3));
}

BOOST_AUTO_TEST_CASE(padding_and_empty_texts_change_nothing_and_stay_finite) {
  torch::NoGradGuard no_grad;
  for (const std::string pool : {"bag", "cls_bag"}) {
    auto encoder = make(pool);
    const auto ids = torch::tensor({{4, 8, 15}}, torch::kLong), mask = torch::ones({1, 3}, torch::kLong);
    const auto padded_ids = torch::tensor({{4, 8, 15, 16, 23}}, torch::kLong);
    const auto padded_mask = torch::tensor({{1, 1, 1, 0, 0}}, torch::kLong);
    BOOST_TEST(torch::allclose(encoder->forward(ids, mask).cls(), encoder->forward(padded_ids, padded_mask).cls(),
                               1e-5, 1e-5), pool);
    const auto empty = encoder->forward(torch::tensor({{4, 8}}, torch::kLong), torch::zeros({1, 2}, torch::kLong));
    BOOST_TEST(torch::isfinite(empty.tokens).all().item<bool>(), pool);
  }
  // With nothing to average, "bag" holds the LayerNorm's bias.
  auto bag = make("bag");
  bag->bag_norm->bias.fill_(0.25);
  const auto empty = bag->forward(torch::tensor({{4, 8}}, torch::kLong), torch::zeros({1, 2}, torch::kLong));
  BOOST_TEST(torch::allclose(empty.cls(), torch::full({1, 64}, 0.25), 1e-6, 1e-6));
}

BOOST_AUTO_TEST_CASE(the_bag_trains_the_embeddings_of_the_tokens_it_holds) {
  auto encoder = make("bag");
  encoder->train();
  const auto ids = torch::tensor({{6, 10, 6}}, torch::kLong);
  const auto out = encoder->forward(ids, torch::ones({1, 3}, torch::kLong));
  (out.cls() * torch::randn({1, 64})).sum().backward();
  const auto grad = encoder->embedding->weight.grad();
  BOOST_TEST(grad[6].abs().sum().item<double>() > 0.0);
  BOOST_TEST(grad[10].abs().sum().item<double>() > 0.0);
  BOOST_TEST(grad[20].abs().sum().item<double>() == 0.0);  // not in the text
  BOOST_TEST(encoder->bag_norm->weight.grad().abs().sum().item<double>() > 0.0);
}

BOOST_AUTO_TEST_CASE(only_bag_modes_have_the_bag_norm_and_unknown_modes_are_errors) {
  BOOST_TEST(make("cls")->named_parameters().find("bag_norm.weight") == nullptr);
  BOOST_TEST(make("bag")->named_parameters().find("bag_norm.weight") != nullptr);
  auto config = model_test::tiny();
  config.text.pool = "max";
  try {
    cmm::validate(config);
    BOOST_ERROR("model.text.pool = \"max\" was accepted");
  } catch (const cmm::Error& e) {
    BOOST_TEST(std::string(e.what()).find("model.text.pool") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
