// Pretrained encoders: small checkpoints with Hugging Face's ViT and BERT names, made by
// tests/model/pretrained_reference.py (Debian's python3-torch, its own safetensors writer),
// load into encoders::ViT and encoders::TextTransformer (post-LN), whose outputs then equal
// that script's plain-PyTorch forward within 1e-5. Wrong files are errors naming the tensor.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include <commercemm/encoders/text_transformer.hpp>
#include <commercemm/encoders/vit.hpp>
#include <commercemm/train/pretrained.hpp>

#include "../data/support.hpp"

namespace cmm = commercemm;
namespace fs = std::filesystem;
using data_test::expect_error;
using data_test::TempDir;

namespace {
constexpr std::int64_t kVocab = 50, kCls = 2;

cmm::ImageEncoderConfig vit_config() { return {32, 8, 2, 64, 2, 4, 0.0, ""}; }
cmm::TextEncoderConfig bert_config() { return {kVocab, 12, 2, 64, 2, 4, 0.0, "post", ""}; }

/// The script's three files, made once per test in a fresh directory.
struct Checkpoints {
  TempDir dir;
  fs::path vit, bert;
  cmm::train::Safetensors reference;
  Checkpoints() {
    const std::string command = "/usr/bin/python3 '" + std::string(COMMERCEMM_SOURCE_DIR) +
                                "/tests/model/pretrained_reference.py' '" + dir.path.string() + "' " +
                                std::to_string(kVocab);
    BOOST_REQUIRE_MESSAGE(std::system(command.c_str()) == 0,
                          "pretrained_reference.py failed: /usr/bin/python3 needs Debian's python3-torch "
                          "(scripts/install-deps)");
    vit = dir.path / "vit.safetensors";
    bert = dir.path / "bert.safetensors";
    reference = cmm::train::read_safetensors(dir.path / "reference.safetensors");
  }
  const torch::Tensor& ref(const std::string& name) const { return reference.tensors.at(name); }
};

double max_difference(const torch::Tensor& ours, const torch::Tensor& reference) {
  return (ours.to(torch::kFloat64) - reference).abs().max().item<double>();
}

/// `file` rewritten by `edit` (which changes the tensor map) into `out`.
template <class Edit>
fs::path rewritten(const fs::path& file, const fs::path& out, Edit edit) {
  auto tensors = cmm::train::read_safetensors(file).tensors;
  edit(tensors);
  cmm::train::write_safetensors(out, tensors);
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(pretrained)

BOOST_AUTO_TEST_CASE(hugging_face_vit_matches_the_reference_forward) {
  Checkpoints files;
  cmm::encoders::ViT vit(vit_config());
  cmm::train::load_image_encoder(vit, vit_config(), files.vit);
  vit->eval();
  torch::NoGradGuard no_grad;
  const auto out = vit->forward(files.ref("images")).tokens;
  BOOST_TEST(out.sizes() == files.ref("vit").sizes());
  const double diff = max_difference(out, files.ref("vit"));
  BOOST_TEST(diff < 1e-5, "max |ours - reference| = " << diff);
  BOOST_TEST(files.ref("vit").abs().mean().item<double>() > 0.3);  // not a near-zero output
}

BOOST_AUTO_TEST_CASE(hugging_face_bert_matches_the_reference_forward_post_ln) {
  Checkpoints files;
  cmm::encoders::TextTransformer text(bert_config());
  BOOST_TEST(files.ref("cls_id").item<std::int64_t>() == kCls);
  cmm::train::load_text_encoder(text, bert_config(), kCls, files.bert);
  text->eval();
  torch::NoGradGuard no_grad;
  const auto out = text->forward(files.ref("ids"), files.ref("mask")).tokens;
  BOOST_TEST(out.sizes() == files.ref("bert").sizes());
  const double diff = max_difference(out, files.ref("bert"));
  BOOST_TEST(diff < 1e-5, "max |ours - reference| = " << diff);
  // A pre-LN encoder given the same tensors under our names computes something else: the
  // parity above rests on the layout, not on the numbers alone.
  auto pre = bert_config();
  pre.norm = "pre";
  cmm::encoders::TextTransformer pre_ln(pre);
  cmm::train::load_tensors(*pre_ln, [&] {
    cmm::train::MappedTensors m;
    for (auto& [name, t] : cmm::train::named_tensors(*text)) m[name] = {t, name};
    return m;
  }(), "in memory");
  BOOST_TEST(max_difference(pre_ln->forward(files.ref("ids"), files.ref("mask")).tokens, files.ref("bert")) > 0.1);
}

BOOST_AUTO_TEST_CASE(our_own_names_round_trip_through_a_file) {
  Checkpoints files;
  cmm::encoders::ViT vit(vit_config());
  cmm::train::load_image_encoder(vit, vit_config(), files.vit);
  std::map<std::string, torch::Tensor> named;
  for (auto& [name, t] : cmm::train::named_tensors(*vit)) named["image_encoder." + name] = t;
  const auto ours = files.dir.path / "ours.safetensors";
  cmm::train::write_safetensors(ours, named);
  BOOST_TEST((cmm::train::naming_of(cmm::train::read_safetensors(ours)) == cmm::train::WeightNaming::commercemm));
  cmm::encoders::ViT again(vit_config());
  cmm::train::load_image_encoder(again, vit_config(), ours);
  for (const auto& [name, t] : cmm::train::named_tensors(*vit))
    BOOST_TEST(torch::equal(t, cmm::train::named_tensors(*again).at(name)), name);
  // A text encoder finds no "text_encoder." tensors there.
  cmm::encoders::TextTransformer text(bert_config());
  auto e = expect_error([&] { cmm::train::load_text_encoder(text, bert_config(), kCls, ours); });
  BOOST_TEST(e.where().field == "text_encoder.*");
}

BOOST_AUTO_TEST_CASE(wrong_files_are_errors_naming_the_tensor) {
  Checkpoints files;
  const auto& d = files.dir.path;
  cmm::encoders::ViT vit(vit_config());
  const auto before = vit->blocks->ptr(0)->named_parameters()["fc1.weight"].clone();

  auto e = expect_error([&] {
    cmm::train::load_image_encoder(vit, vit_config(), rewritten(files.vit, d / "missing.safetensors", [](auto& t) {
                                     t.erase("vit.encoder.layer.1.output.dense.weight");
                                   }));
  });
  BOOST_TEST(e.where().field == "encoder.layer.1.output.dense.weight");
  BOOST_TEST(e.message() == "missing from the file");

  e = expect_error([&] {
    cmm::train::load_image_encoder(vit, vit_config(), rewritten(files.vit, d / "dtype.safetensors", [](auto& t) {
                                     auto& w = t.at("vit.encoder.layer.0.intermediate.dense.weight");
                                     w = w.to(torch::kInt64);
                                   }));
  });
  BOOST_TEST(e.where().field == "vit.encoder.layer.0.intermediate.dense.weight");
  BOOST_TEST(e.message().find("dtype Long") != std::string::npos);

  e = expect_error([&] {
    cmm::train::load_image_encoder(vit, vit_config(), rewritten(files.vit, d / "shape.safetensors", [](auto& t) {
                                     t.at("vit.encoder.layer.0.output.dense.bias") = torch::zeros({63});
                                   }));
  });
  BOOST_TEST(e.where().field == "blocks.0.fc2.bias (from encoder.layer.0.output.dense.bias)");
  BOOST_TEST(e.message().find("shape [63] in the file, the model's is [64]") != std::string::npos);

  e = expect_error([&] {
    cmm::train::load_image_encoder(vit, vit_config(), rewritten(files.vit, d / "extra.safetensors", [](auto& t) {
                                     t["vit.encoder.layer.0.adapter.weight"] = torch::zeros({2});
                                   }));
  });
  BOOST_TEST(e.where().field == "vit.encoder.layer.0.adapter.weight");

  auto deeper = vit_config();
  deeper.layers = 3;
  cmm::encoders::ViT deep(deeper);
  e = expect_error([&] { cmm::train::load_image_encoder(deep, deeper, files.vit); });
  BOOST_TEST(e.where().field == "model.image.layers");

  auto bigger = vit_config();
  bigger.image_size = 40;
  cmm::encoders::ViT big(bigger);
  e = expect_error([&] { cmm::train::load_image_encoder(big, bigger, files.vit); });
  BOOST_TEST(e.where().field == "positions (from embeddings.position_embeddings)");

  cmm::encoders::TextTransformer text(bert_config());
  e = expect_error([&] { cmm::train::load_image_encoder(vit, vit_config(), files.bert); });
  BOOST_TEST(e.where().field == "model.image.init");
  auto pre = bert_config();
  pre.norm = "pre";
  e = expect_error([&] { cmm::train::load_text_encoder(text, pre, kCls, files.bert); });
  BOOST_TEST(e.where().field == "model.text.norm");
  auto other_vocab = bert_config();
  other_vocab.vocab_size = kVocab + 1;
  e = expect_error([&] { cmm::train::load_text_encoder(text, other_vocab, kCls, files.bert); });
  BOOST_TEST(e.where().field == "embeddings.word_embeddings.weight");
  e = expect_error([&] { cmm::train::load_text_encoder(text, bert_config(), -1, files.bert); });
  BOOST_TEST(e.where().field == "[CLS]");
  auto longer = bert_config();
  longer.max_length = 16;  // 17 positions needed, the file has 16
  cmm::encoders::TextTransformer long_text(longer);
  e = expect_error([&] { cmm::train::load_text_encoder(long_text, longer, kCls, files.bert); });
  BOOST_TEST(e.where().field == "embeddings.position_embeddings.weight");

  // Nothing was copied by any failed load.
  BOOST_TEST(torch::equal(vit->blocks->ptr(0)->named_parameters()["fc1.weight"], before));
}

BOOST_AUTO_TEST_SUITE_END()
