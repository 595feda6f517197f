// Manifests, image decoding and Fashion-MNIST: real files, and the errors bad ones must give.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <commercemm/data/fashion_mnist.hpp>
#include <commercemm/data/image.hpp>
#include <commercemm/data/manifest.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
namespace data = commercemm::data;
using commercemm::Error;
using data_test::expect_error;
using data_test::TempDir;

namespace {

const fs::path emoji_png = fs::path(COMMERCEMM_PACKAGES_DIR) / "emoji-datasource-google/img/google/64/1f600.png";

}  // namespace

BOOST_AUTO_TEST_SUITE(manifest)

BOOST_AUTO_TEST_CASE(reads_items_and_pairs) {
  TempDir dir;
  fs::create_directories(dir.path / "img");
  fs::copy_file(emoji_png, dir.path / "img/a.png");
  const auto catalog_file = dir.write(
      "catalog.jsonl",
      R"({"id":"c1","product_id":"p1","image":"img/a.png","title":"grinning face","tags":["face","grin"],"category":"Smileys","subcategory":"face-smiling","language":"en"})"
      "\n\n"  // blank lines are skipped but still counted
      R"({"id":"c2","product_id":"p2","images":["img/a.png","img/a.png"],"title":"other"})"
      "\n");
  const auto sources_file = dir.write("sources.jsonl",
                                      R"({"id":"q1","title":"visage souriant","language":"fr"})"
                                      "\n"
                                      R"({"id":"v1","image":"img/a.png"})"
                                      "\n"
                                      R"({"id":"s1","image":"img/a.png","title":"so happy","tags":["joy"]})"
                                      "\r\n");
  const auto pairs_file = dir.write("pairs.jsonl",
                                    R"({"source":"q1","target":"p1","kind":"query"})"
                                    "\n"
                                    R"({"source":"v1","target":"p1","kind":"image"})"
                                    "\n"
                                    R"({"source":"s1","target":"p2","kind":"post"})"
                                    "\n");
  const auto catalog = data::read_items(catalog_file, {.product_id = true, .text = true, .image = true});
  BOOST_TEST(catalog.size() == 2u);
  const auto* c1 = catalog.find("c1");
  BOOST_TEST_REQUIRE(c1 != nullptr);
  BOOST_TEST(c1->images.front() == dir.path / "img/a.png");
  BOOST_TEST(c1->text() == "grinning face. face, grin");
  BOOST_TEST(c1->where.line == 1);
  BOOST_TEST(catalog.find("c2")->where.line == 3);
  BOOST_TEST(catalog.find("c2")->images.size() == 2u);
  BOOST_TEST(catalog.has_product("p2"));
  BOOST_TEST(!catalog.has_product("p3"));
  const auto sources = data::read_items(sources_file);
  BOOST_TEST(!sources.find("q1")->has_image());
  BOOST_TEST(!sources.find("v1")->has_text());
  const auto pairs = data::read_pairs(pairs_file, sources, catalog);
  BOOST_TEST_REQUIRE(pairs.size() == 3u);
  BOOST_TEST((pairs[2].kind == data::pair_kinds::post));
  BOOST_TEST(pairs[2].target == "p2");

  // Writing and reading again gives the same items, paths relative to the new manifest.
  const auto copy = dir.path / "copy.jsonl";
  data::write_items(copy, catalog.items());
  const auto again = data::read_items(copy);
  BOOST_TEST(again.find("c2")->images[1] == dir.path / "img/a.png");
  BOOST_TEST(again.find("c1")->tags == c1->tags);
  std::ifstream in(copy);
  std::string first;
  std::getline(in, first);
  BOOST_TEST(first.find(R"("image":"img/a.png")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(item_errors_name_file_line_and_field) {
  TempDir dir;
  struct Case {
    std::string text;
    std::int64_t line;
    std::string field;
    std::string says;
  };
  const Case cases[] = {
      {"{\"id\":\"a\",\"title\":\"x\"}\n{\"id\":\"b\",\"title\":\"x\"\n", 2, "", "malformed JSON"},
      {"{\"id\":\"a\",\"title\":\"x\"}\n\n{\"title\":\"x\"}\n", 3, "id", "missing required field"},
      {"{\"id\":7,\"title\":\"x\"}\n", 1, "id", "expected a string, got a number"},
      {"{\"id\":\"a\",\"tags\":\"x\"}\n", 1, "tags", "expected an array of strings"},
      {"{\"id\":\"a\",\"tags\":[\"x\",3]}\n", 1, "tags[1]", "expected a string"},
      {"{\"id\":\"a\",\"titel\":\"x\"}\n", 1, "titel", "unknown field"},
      {"{\"id\":\"a\",\"title\":\"x\"}\n{\"id\":\"a\",\"title\":\"y\"}\n", 2, "id", "duplicate item id 'a'"},
      {"{\"id\":\"a\",\"image\":\"nope.png\"}\n", 1, "image", "image file not found"},
      {"{\"id\":\"a\"}\n", 1, "title", "needs text"},
      {"[1,2]\n", 1, "", "expected a JSON object"},
      {"{\"id\":\"a\",\"title\":\"x\"}\n{\"id\":\"b\\nc\",\"title\":\"x\"}\n", 2, "id", "control characters"},
      {"{\"id\":\"a\\tb\",\"title\":\"x\"}\n", 1, "id", "control characters"},
  };
  for (const auto& c : cases) {
    const auto file = dir.write("items.jsonl", c.text);
    const auto e = expect_error([&] { data::read_items(file); });
    BOOST_TEST_CONTEXT(c.text) {
      BOOST_TEST(e.where().file == file.string());
      BOOST_TEST(e.where().line == c.line);
      BOOST_TEST(e.where().field == c.field);
      BOOST_TEST(e.message().find(c.says) != std::string::npos, e.what());
      BOOST_TEST(std::string(e.what()).find(file.string() + ":" + std::to_string(c.line)) == 0u);
    }
  }
  // A catalog needs product ids.
  const auto file = dir.write("catalog.jsonl", "{\"id\":\"a\",\"title\":\"x\"}\n");
  const auto e = expect_error([&] { data::read_items(file, {.product_id = true}); });
  BOOST_TEST(e.where().field == "product_id");
  const auto missing = expect_error([&] { data::read_items(dir.path / "absent.jsonl"); });
  BOOST_TEST(missing.where().file == (dir.path / "absent.jsonl").string());
}

BOOST_AUTO_TEST_CASE(pair_errors_name_file_line_and_field) {
  TempDir dir;
  const auto catalog = data::read_items(dir.write("c.jsonl", "{\"id\":\"c1\",\"product_id\":\"p1\",\"title\":\"t\"}\n"));
  const auto sources =
      data::read_items(dir.write("s.jsonl", "{\"id\":\"q1\",\"title\":\"t\"}\n{\"id\":\"q2\",\"title\":\"u\"}\n"));
  struct Case {
    std::string text;
    std::string field;
    std::string says;
  };
  const std::string ok = "{\"source\":\"q1\",\"target\":\"p1\",\"kind\":\"query\"}\n"
                         "{\"source\":\"q2\",\"target\":\"p1\",\"kind\":\"query\"}\n";
  const Case cases[] = {
      {"{\"source\":\"q1\",\"target\":\"p1\",\"kind\":\"Video\"}\n", "kind", "'Video' is not a pair kind"},
      {"{\"source\":\"q1\",\"target\":\"p1\",\"kind\":\"\"}\n", "kind", "'' is not a pair kind"},
      {"{\"source\":\"q9\",\"target\":\"p1\",\"kind\":\"query\"}\n", "source", "no item with id 'q9'"},
      {"{\"source\":\"q1\",\"target\":\"p9\",\"kind\":\"query\"}\n", "target", "no product 'p9'"},
      {"{\"source\":\"q1\",\"kind\":\"query\"}\n", "target", "missing required field"},
      {"{\"source\":\"q1\",\"target\":\"p1\",\"kind\":\"image\"}\n", "kind", "needs a source with an image"},
      {"{\"source\":\"q1\",\"target\":[],\"kind\":\"query\"}\n", "target", "expected a string, got an array"},
      {"{\"source\":\"q2\",\"target\":\"p1\",\"kind\":\"query\"}\n", "source", "duplicate pair: line 2 already pairs"},
  };
  for (const auto& c : cases) {
    const auto file = dir.write("pairs.jsonl", ok + c.text);
    const auto e = expect_error([&] { data::read_pairs(file, sources, catalog); });
    BOOST_TEST_CONTEXT(c.text) {
      BOOST_TEST(e.where().file == file.string());
      BOOST_TEST(e.where().line == 3);
      BOOST_TEST(e.where().field == c.field);
      BOOST_TEST(e.message().find(c.says) != std::string::npos, e.what());
    }
  }
}

BOOST_AUTO_TEST_CASE(pair_kinds_are_open_and_their_sources_consistent) {
  TempDir dir;
  const auto catalog = data::read_items(dir.write("c.jsonl", "{\"id\":\"c1\",\"product_id\":\"p1\",\"title\":\"t\"}\n"));
  fs::copy_file(emoji_png, dir.path / "v1.png");
  const auto sources = data::read_items(dir.write(
      "s.jsonl", "{\"id\":\"r1\",\"title\":\"great\"}\n{\"id\":\"r2\",\"title\":\"meh\"}\n{\"id\":\"v1\",\"image\":\"v1.png\"}\n"));
  const auto review = [](const char* source) {
    return std::string("{\"source\":\"") + source + "\",\"target\":\"p1\",\"kind\":\"review\"}\n";
  };
  // A dataset's own kind: read as it is, its sources' modalities fixed by the first pair.
  const auto pairs = data::read_pairs(dir.write("ok.jsonl", review("r1") + review("r2")), sources, catalog);
  BOOST_TEST(pairs.size() == 2u);
  BOOST_TEST(pairs[1].kind == "review");
  const auto e = expect_error([&] { data::read_pairs(dir.write("mixed.jsonl", review("r1") + review("v1")), sources, catalog); });
  BOOST_TEST(e.where().line == 2);
  BOOST_TEST(e.where().field == "kind");
  BOOST_TEST(e.message().find("must all hold the same modalities: item 'v1' has only an image, the first 'review' "
                              "pair's source (line 1) has only text") != std::string::npos, e.what());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(image)

BOOST_AUTO_TEST_CASE(decodes_a_real_emoji_on_white) {
  BOOST_TEST_REQUIRE(fs::exists(emoji_png), "run scripts/fetch-packages " COMMERCEMM_PACKAGES_DIR);
  const data::ImageOptions options;  // 64 px, ImageNet mean/std
  const auto raw = data::read_image(emoji_png);
  BOOST_TEST(raw.width == 64);
  BOOST_TEST(raw.height == 64);
  const auto x = data::load_image(emoji_png, options);
  BOOST_TEST((x.sizes() == torch::IntArrayRef{3, 64, 64}));
  BOOST_TEST((x.scalar_type() == torch::kFloat32));
  const auto rgb = data::denormalize(x, options);
  BOOST_TEST(rgb.min().item<float>() >= -1e-5f);
  BOOST_TEST(rgb.max().item<float>() <= 1.0f + 1e-5f);
  // The corner is transparent in the PNG: white after compositing, in every channel.
  for (int c = 0; c < 3; ++c) BOOST_TEST(std::abs(rgb[c][0][0].item<float>() - 1.0f) < 1e-5f);
  // The face is yellow: much more red than blue at the centre.
  const auto centre = rgb.index({torch::indexing::Slice(), torch::indexing::Slice(24, 40), torch::indexing::Slice(8, 20)})
                          .mean({1, 2});
  BOOST_TEST(centre[0].item<float>() > 0.8f);
  BOOST_TEST(centre[2].item<float>() < 0.5f);
  // At the native size the evaluation path is an exact copy of the decoded pixels.
  BOOST_TEST(std::abs(rgb[0][32][10].item<float>() - raw.pixels[(32 * 64 + 10) * 3]) < 1e-5f);
  // Resizing keeps the range and the white corner.
  const auto small = data::denormalize(data::load_image(emoji_png, {.size = 24}), options);
  BOOST_TEST((small.sizes() == torch::IntArrayRef{3, 24, 24}));
  BOOST_TEST(std::abs(small[1][0][0].item<float>() - 1.0f) < 1e-5f);
  BOOST_TEST(small.max().item<float>() <= 1.0f + 1e-5f);
}

BOOST_AUTO_TEST_CASE(augmentation_is_deterministic_for_a_seed) {
  const data::ImageOptions options;
  const data::Augmentation augment;
  const auto raw = data::read_image(emoji_png);
  data::ImageRng a(42), b(42);
  const auto first = data::to_tensor(raw, options, augment, a);
  const auto second = data::to_tensor(raw, options, augment, b);
  BOOST_TEST(torch::equal(first, second));
  // Later draws differ from the first ones, and from the un-augmented image.
  bool differs = false;
  for (int i = 0; i < 4; ++i) differs = differs || !torch::equal(first, data::to_tensor(raw, options, augment, a));
  BOOST_TEST(differs);
  BOOST_TEST(!torch::equal(first, data::to_tensor(raw, options)));
  // A flip alone mirrors exactly.
  data::ImageRng c(1);
  const auto flip_only = data::Augmentation{.random_resized_crop = false, .flip_probability = 1.0};
  BOOST_TEST(torch::equal(data::to_tensor(raw, options, flip_only, c), data::to_tensor(raw, options).flip({2})));
  // none() draws nothing and equals evaluation.
  data::ImageRng d(7);
  BOOST_TEST(torch::equal(data::to_tensor(raw, options, data::Augmentation::none(), d), data::to_tensor(raw, options)));
}

// Colour changes against hand-computed values on two pixels (channel-first planes), as
// torchvision's adjust_* functions compute them on float images.
BOOST_AUTO_TEST_CASE(colour_changes_match_hand_computed_values) {
  const std::vector<float> image{0.5f, 1.0f, 0.2f, 0.0f, 0.1f, 0.5f};  // r r g g b b
  const auto changed = [&](data::detail::ColourChange change) {
    auto out = image;
    data::detail::change_colour(out.data(), 2, change);
    return out;
  };
  const auto near = [](const std::vector<float>& got, const std::vector<double>& want) {
    for (std::size_t i = 0; i < want.size(); ++i)
      if (std::abs(got[i] - want[i]) > 1e-6) return false;
    return true;
  };
  // Brightness 1.5 scales and clamps at 1.
  BOOST_TEST(near(changed({.brightness = 1.5f}), {0.75, 1.0, 0.3, 0.0, 0.15, 0.75}));
  // Contrast 0.5 blends halfway to the mean luma (0.2783 + 0.356) / 2 = 0.31715.
  BOOST_TEST(near(changed({.contrast = 0.5f}), {0.408575, 0.658575, 0.258575, 0.158575, 0.208575, 0.408575}));
  // Saturation 2 pushes away from each pixel's luma (0.2783, 0.356), clamped to [0, 1].
  BOOST_TEST(near(changed({.saturation = 2.0f}), {0.7217, 1.0, 0.1217, 0.0, 0.0, 0.644}));
  // Saturation 0 and greyscale both give each pixel its luma.
  const std::vector<double> grey{0.2783, 0.356, 0.2783, 0.356, 0.2783, 0.356};
  BOOST_TEST(near(changed({.saturation = 0.0f}), grey));
  BOOST_TEST(near(changed({.grayscale = true}), grey));
  BOOST_TEST(near(changed({}), {0.5, 1.0, 0.2, 0.0, 0.1, 0.5}));
}

// Colour augmentations draw after the crop and the flip, so switching one on changes the
// colours of the same crop; their factors stay within [1 - s, 1 + s].
BOOST_AUTO_TEST_CASE(colour_augmentations_change_the_colours_of_the_same_crop) {
  const data::ImageOptions options;
  const auto raw = data::read_image(emoji_png);
  data::ImageRng a(42), b(42);
  const auto plain = data::denormalize(data::to_tensor(raw, options, data::Augmentation{}, a), options);
  const auto grey = data::denormalize(data::to_tensor(raw, options, data::Augmentation{.grayscale_probability = 1}, b), options);
  const auto luma = 0.299 * plain[0] + 0.587 * plain[1] + 0.114 * plain[2];
  BOOST_TEST(torch::allclose(grey, luma.unsqueeze(0).expand({3, -1, -1}), 1e-4, 1e-4));
  const data::Augmentation jitter{.brightness = 0.4, .contrast = 0.3, .saturation = 0.2};
  data::ImageRng c(5);
  for (int i = 0; i < 200; ++i) {
    const auto change = data::detail::draw_colour_change(jitter, c);
    BOOST_TEST((change.brightness >= 0.6f && change.brightness <= 1.4f));
    BOOST_TEST((change.contrast >= 0.7f && change.contrast <= 1.3f));
    BOOST_TEST((change.saturation >= 0.8f && change.saturation <= 1.2f));
    BOOST_TEST(!change.grayscale);
  }
  // Switched off, they draw nothing: the generator is where it was.
  data::ImageRng d(9), e(9);
  data::detail::draw_colour_change(data::Augmentation{}, d);
  BOOST_TEST(d() == e());
}

// The blur against a hand-computed kernel: sigma 1 has radius 3 and 1-D weights
// exp(-x^2 / 2) / 2.505948 (x = 0..3: 0.399050, 0.242036, 0.054005, 0.004433); an impulse
// comes out as their outer product, a constant image as itself, and a border reflects.
BOOST_AUTO_TEST_CASE(gaussian_blur_matches_a_hand_computed_kernel) {
  constexpr int size = 9;
  const std::vector<double> weight{0.399050, 0.242036, 0.054005, 0.004433};
  std::vector<float> impulse(3 * size * size, 0.0f);
  for (int c = 0; c < 3; ++c) impulse[c * size * size + 4 * size + 4] = 1.0f;  // the centre
  data::detail::gaussian_blur(impulse.data(), size, 1.0f);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const int dy = std::abs(y - 4), dx = std::abs(x - 4);
        const double want = dy <= 3 && dx <= 3 ? weight[dy] * weight[dx] : 0.0;
        BOOST_TEST(std::abs(impulse[c * size * size + y * size + x] - want) < 1e-6);
      }
  std::vector<float> constant(3 * size * size, 0.25f);
  data::detail::gaussian_blur(constant.data(), size, 1.7f);
  for (float v : constant) BOOST_TEST(std::abs(v - 0.25f) < 1e-6);
  // A corner impulse: a border reads the mirrored pixels (-1 reads 1), so each axis gathers
  // w0 at 0, w1 at 1, ... and the image keeps (w0 + w1 + w2 + w3)^2 of the mass.
  std::vector<float> corner(3 * size * size, 0.0f);
  corner[0] = 1.0f;
  data::detail::gaussian_blur(corner.data(), size, 1.0f);
  BOOST_TEST(std::abs(corner[0] - weight[0] * weight[0]) < 1e-6);
  BOOST_TEST(std::abs(corner[1] - weight[1] * weight[0]) < 1e-6);
  BOOST_TEST(std::abs(corner[3 * size + 2] - weight[3] * weight[2]) < 1e-6);
  double total = 0;
  for (int i = 0; i < size * size; ++i) total += corner[i];
  const double kept = weight[0] + weight[1] + weight[2] + weight[3];
  BOOST_TEST(std::abs(total - kept * kept) < 1e-5);
  // A kernel wider than the image reflects more than once: on 3 pixels, offsets -3..5 read
  // pixels 1 2 1 | 0 1 2 | 1 0 1. Columns [1, 0, 0] in every row come out as w0, w1 + w3 and
  // 2 w2 (rows are equal, so the vertical pass keeps them).
  std::vector<float> narrow(3 * 3 * 3, 0.0f);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y) narrow[c * 9 + y * 3] = 1.0f;
  data::detail::gaussian_blur(narrow.data(), 3, 1.0f);
  const std::vector<double> column{weight[0], weight[1] + weight[3], 2 * weight[2]};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) BOOST_TEST(std::abs(narrow[c * 9 + y * 3 + x] - column[x]) < 3e-6);  // 6-digit weights
}

// The blur draws last, only when on: the crop, flip and colours stay those of the same seed,
// sigma stays in its range, and a probability of 1 blurs every image.
BOOST_AUTO_TEST_CASE(blur_draws_last_and_within_its_range) {
  const data::ImageOptions options;
  const auto raw = data::read_image(emoji_png);
  const data::Augmentation jitter{.brightness = 0.4};
  auto blurred = jitter;
  blurred.blur_probability = 1, blurred.blur_sigma_min = 0.5, blurred.blur_sigma_max = 1.5;
  data::ImageRng a(42), b(42);
  const auto plain = data::denormalize(data::to_tensor(raw, options, jitter, a), options);
  const auto soft = data::denormalize(data::to_tensor(raw, options, blurred, b), options);
  BOOST_TEST(!torch::allclose(plain, soft));
  // Blurring the unblurred view by the drawn sigma gives the blurred view (the blur is linear
  // and its weights sum to 1, so it commutes with the normalisation). Its draws come after
  // the colours': whether to blur, then sigma.
  data::ImageRng c(42);
  (void)data::to_tensor(raw, options, jitter, c);
  (void)data::detail::uniform01(c);
  const auto drawn = static_cast<float>(data::detail::uniform(c, 0.5, 1.5));
  auto expected = plain.contiguous().clone();
  data::detail::gaussian_blur(expected.data_ptr<float>(), static_cast<int>(options.size), drawn);
  BOOST_TEST(torch::allclose(soft, expected, 1e-5, 1e-5));
  data::ImageRng e(3);
  for (int i = 0; i < 200; ++i) {
    const auto change = data::detail::draw_colour_change(blurred, e);
    BOOST_TEST((change.blur_sigma >= 0.5f && change.blur_sigma <= 1.5f));
  }
}

BOOST_AUTO_TEST_CASE(corrupt_and_missing_files_name_the_path) {
  TempDir dir;
  std::ifstream in(emoji_png, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto truncated = dir.write("truncated.png", bytes.substr(0, bytes.size() / 2));
  const auto e = expect_error([&] { data::load_image(truncated, {}); });
  BOOST_TEST(e.where().file == truncated.string());
  BOOST_TEST(std::string(e.what()).find("truncated.png") != std::string::npos);
  const auto junk = dir.write("junk.jpg", "this is not an image");
  BOOST_TEST(expect_error([&] { data::read_image(junk); }).where().file == junk.string());
  const auto empty = dir.write("empty.png", "");
  BOOST_TEST(expect_error([&] { data::read_image(empty); }).where().file == empty.string());
  const auto missing = dir.path / "missing.png";
  const auto m = expect_error([&] { data::read_image(missing); });
  BOOST_TEST(m.where().file == missing.string());
  BOOST_TEST(m.message().find("cannot open") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fashion_mnist)

BOOST_AUTO_TEST_CASE(reads_the_debian_dataset) {
  const auto dir = data::default_fashion_mnist_dir();
  BOOST_TEST_REQUIRE(fs::exists(dir / "train-images-idx3-ubyte.gz"), "apt-get install dataset-fashion-mnist");
  const auto train = data::read_fashion_mnist(data::FashionMnistSplit::train, dir);
  const auto test = data::read_fashion_mnist(data::FashionMnistSplit::test, dir);
  BOOST_TEST((train.images.sizes() == torch::IntArrayRef{60000, 1, 28, 28}));
  BOOST_TEST((test.images.sizes() == torch::IntArrayRef{10000, 1, 28, 28}));
  BOOST_TEST(train.labels.size(0) == 60000);
  BOOST_TEST(test.labels.size(0) == 10000);
  BOOST_TEST(train.labels.min().item<std::int64_t>() == 0);
  BOOST_TEST(train.labels.max().item<std::int64_t>() == 9);
  // Balanced: 6000 per class in train, 1000 in test.
  BOOST_TEST(torch::equal(torch::bincount(train.labels), torch::full({10}, 6000, torch::kInt64)));
  BOOST_TEST(torch::equal(torch::bincount(test.labels), torch::full({10}, 1000, torch::kInt64)));
  // The published statistic: mean pixel 0.2860, std 0.3530 on the training set.
  const auto pixels = train.images.to(torch::kFloat64) / 255.0;
  BOOST_TEST(std::abs(pixels.mean().item<double>() - 0.2860) < 5e-4);
  BOOST_TEST(std::abs(pixels.std().item<double>() - 0.3530) < 5e-4);
  BOOST_TEST(data::fashion_mnist_classes[9] == "Ankle boot");

  const data::ImageOptions options;
  const auto model = data::fashion_mnist_to_model(test.images.slice(0, 0, 8), options);
  BOOST_TEST((model.sizes() == torch::IntArrayRef{8, 3, 64, 64}));
  const auto rgb = data::denormalize(model, options);
  // Inverted: the black background becomes white, like the catalog images.
  BOOST_TEST(std::abs(rgb[0][0][0][0].item<float>() - 1.0f) < 1e-5f);
  BOOST_TEST(torch::allclose(rgb.select(1, 0), rgb.select(1, 2), 1e-5, 1e-5));
}

BOOST_AUTO_TEST_CASE(bad_files_name_the_file) {
  TempDir dir;
  auto write_gz = [&](const std::string& name, const std::string& bytes) {
    const auto path = dir.path / name;
    gzFile out = gzopen(path.string().c_str(), "wb");
    gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(out);
    return path;
  };
  const std::string labels_ok("\x00\x00\x08\x01\x00\x00\x00\x02\x03\x04", 10);
  const auto labels = write_gz("labels.gz", labels_ok);
  const auto bad_magic = write_gz("magic.gz", std::string("\x00\x00\x09\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x05", 17));
  auto e = expect_error([&] { data::read_fashion_mnist_files(bad_magic, labels); });
  BOOST_TEST(e.where().file == bad_magic.string());
  BOOST_TEST(e.where().field == "magic");
  // Header promises 2 images of 2x2, data holds 5 bytes.
  const auto truncated = write_gz("short.gz", std::string("\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x02\x01\x02\x03\x04\x05", 21));
  e = expect_error([&] { data::read_fashion_mnist_files(truncated, labels); });
  BOOST_TEST(e.where().file == truncated.string());
  BOOST_TEST(e.message().find("truncated") != std::string::npos, e.what());
  // A gzip stream cut in the middle.
  std::ifstream in(data::default_fashion_mnist_dir() / "t10k-labels-idx1-ubyte.gz", std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto cut = dir.write("cut.gz", gz.substr(0, gz.size() / 2));
  e = expect_error([&] { data::read_fashion_mnist_files(cut, cut); });
  BOOST_TEST(e.where().file == cut.string());
  // Good images, labels that do not match in count.
  const auto images = write_gz("images.gz", std::string("\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x07", 17));
  e = expect_error([&] { data::read_fashion_mnist_files(images, labels); });
  BOOST_TEST(e.where().file == labels.string());
  BOOST_TEST(expect_error([&] { data::read_fashion_mnist(data::FashionMnistSplit::train, dir.path); }).where().file ==
             (dir.path / "train-images-idx3-ubyte.gz").string());
}

BOOST_AUTO_TEST_SUITE_END()
