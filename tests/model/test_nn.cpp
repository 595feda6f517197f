#include <boost/test/unit_test.hpp>

#include <torch/types.h>

#include <commercemm/nn/transformer_block.hpp>

namespace cnn = commercemm::nn;

BOOST_AUTO_TEST_SUITE(nn)

BOOST_AUTO_TEST_CASE(attention_mask_combines_padding_and_segments) {
  auto valid = torch::tensor({1, 1, 0}).unsqueeze(0);
  auto segments = torch::tensor({0, 1, 1}, torch::kLong);
  auto allowed = cnn::attention_mask(valid, segments);  // [1, 1, 3, 3]
  BOOST_TEST(allowed.sizes() == torch::IntArrayRef({1, 1, 3, 3}));
  auto expected = torch::tensor({1, 0, 0, 0, 1, 0, 0, 1, 0}).view({1, 1, 3, 3}).to(torch::kBool);
  BOOST_TEST(allowed.equal(expected));
}

BOOST_AUTO_TEST_CASE(attention_matches_hand_computation) {
  // One head, width 2, identity projections: out = softmax(x x^T / sqrt(2)) x.
  torch::manual_seed(0);
  cnn::SelfAttention attn(2, 1);
  {
    torch::NoGradGuard g;
    attn->qkv->weight.copy_(torch::cat({torch::eye(2), torch::eye(2), torch::eye(2)}, 0));
    attn->qkv->bias.zero_();
    attn->proj->weight.copy_(torch::eye(2));
    attn->proj->bias.zero_();
  }
  auto x = torch::tensor({1.0, 0.0, 0.0, 2.0}).view({1, 2, 2});
  auto out = attn(x);
  // Row 0: scores [1, 0]/sqrt2 -> weights softmax; Row 1: scores [0, 4]/sqrt2.
  auto w0 = torch::softmax(torch::tensor({1.0, 0.0}) / std::sqrt(2.0), 0);
  auto w1 = torch::softmax(torch::tensor({0.0, 4.0}) / std::sqrt(2.0), 0);
  auto v = x[0];
  auto expected = torch::stack({torch::matmul(w0, v), torch::matmul(w1, v)}).unsqueeze(0);
  BOOST_TEST(torch::allclose(out, expected, 1e-6, 1e-6));
}

BOOST_AUTO_TEST_CASE(segment_mask_equals_running_each_segment_alone) {
  torch::manual_seed(1);
  cnn::TransformerBlock block(cnn::BlockOptions{16, 4, 2, 0.0});
  auto a = torch::randn({2, 3, 16}), b = torch::randn({2, 5, 16});
  auto segments = torch::cat({torch::zeros({3}, torch::kLong), torch::ones({5}, torch::kLong)});
  auto joint = block(torch::cat({a, b}, 1), cnn::attention_mask({}, segments));
  BOOST_TEST(torch::allclose(joint.narrow(1, 0, 3), block(a), 1e-5, 1e-5));
  BOOST_TEST(torch::allclose(joint.narrow(1, 3, 5), block(b), 1e-5, 1e-5));
}

BOOST_AUTO_TEST_CASE(padding_keys_are_ignored) {
  torch::manual_seed(2);
  cnn::TransformerBlock block(cnn::BlockOptions{8, 2, 2, 0.0});
  auto x = torch::randn({1, 4, 8});
  auto valid = torch::tensor({1, 1, 0, 0}).unsqueeze(0);
  auto y1 = block(x, cnn::attention_mask(valid));
  auto x2 = x.clone();
  x2.narrow(1, 2, 2).normal_();  // different padding content
  auto y2 = block(x2, cnn::attention_mask(valid));
  BOOST_TEST(torch::allclose(y1.narrow(1, 0, 2), y2.narrow(1, 0, 2), 1e-6, 1e-6));
  BOOST_TEST(!torch::isnan(y1).any().item<bool>());
}

BOOST_AUTO_TEST_SUITE_END()
