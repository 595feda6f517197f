// Bounds before work: what a user's broken or hostile files get. Each is a clear error naming
// the file (and line, and field), or a reported skip; never a crash, never the memory it asks for.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include <commercemm/core/config_io.hpp>
#include <commercemm/data/image.hpp>
#include <commercemm/data/loader.hpp>
#include <commercemm/data/manifest.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/data/tokenizers/wordpiece.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
namespace data = commercemm::data;
using commercemm::Error;
using data_test::expect_error;
using data_test::TempDir;

namespace {

const fs::path emoji_png = fs::path(COMMERCEMM_SOURCE_DIR) / "data/emoji-commerce/images/google/1f600.png";

bool has(const Error& e, const std::string& text) { return std::string(e.what()).find(text) != std::string::npos; }

// A PNG signature and an IHDR chunk declaring width x height, and nothing else: the header is all
// a decoder reads before it allocates the pixels.
std::string png_header(std::uint32_t width, std::uint32_t height) {
  std::string s = "\x89PNG\r\n\x1a\n";
  auto be32 = [&s](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  be32(13);
  s += "IHDR";
  be32(width), be32(height);
  s += std::string("\x08\x06\x00\x00\x00", 5);  // 8-bit RGBA
  be32(0);                                        // CRC (not checked by the header read)
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bounds)

BOOST_AUTO_TEST_CASE(an_image_larger_than_max_image_pixels_is_refused_from_its_header) {
  TempDir dir;
  const auto huge = dir.write("huge.png", png_header(6000, 5000));  // 0.4 GB of floats if decoded
  const auto e = expect_error([&] { data::read_image(huge); });
  BOOST_TEST(e.where().file == huge.string());
  BOOST_TEST(has(e, "image of 6000 x 5000 pixels, more than data.max_image_pixels = 25000000"));
  // Past stb's own bound (2^24 pixels a side, 2^31 bytes) it refuses the header itself.
  const auto huger = dir.write("huger.png", png_header(30000, 30000));
  BOOST_TEST(has(expect_error([&] { data::read_image(huger); }), "too large"));
  // The limit is a knob: a real 64 x 64 emoji passes at 4096 pixels and fails at 4095.
  BOOST_TEST(data::read_image(emoji_png, 64 * 64).width == 64);
  BOOST_TEST(has(expect_error([&] { data::read_image(emoji_png, 64 * 64 - 1); }), "more than data.max_image_pixels"));
  // A file far larger than any image of the allowed size is not even read.
  const auto bloated = dir.write("bloated.png", std::string(2 << 20, 'x'));
  BOOST_TEST(has(expect_error([&] { data::read_image(bloated, 100); }), "more than 1048576"));
}

// As a new user's broken images meet the loader: each reported with its path and its record
// dropped from the batch, the good ones kept.
BOOST_AUTO_TEST_CASE(a_jpeg_huffman_table_of_more_than_256_codes_is_refused_before_stb_reads_it) {
  // SOI, a DHT segment whose one table declares 255 + 2 codes, EOI: stb_image would write the
  // 257th code length past its table (found by fuzzing; tests/fuzz/regressions/image/).
  std::string jpeg = "\xFF\xD8\xFF\xC4";
  jpeg += std::string("\x00\x13\x00", 3);  // length 19 (2 + 17), table class 0 id 0
  jpeg += std::string("\xFF\x02", 2) + std::string(14, '\0') + "\xFF\xD9";
  const auto* bytes = reinterpret_cast<const unsigned char*>(jpeg.data());
  BOOST_TEST(!data::detail::jpeg_huffman_tables_fit({bytes, jpeg.size()}));
  const auto e = expect_error([&] { data::decode_image({bytes, jpeg.size()}, "crafted.jpg"); });
  BOOST_TEST(has(e, "crafted.jpg"));
  BOOST_TEST(has(e, "more than 256 codes"));
  // 256 codes fit; a file that is not a JPEG is not the check's business.
  jpeg[7] = '\xFE';
  BOOST_TEST(data::detail::jpeg_huffman_tables_fit({bytes, jpeg.size()}));
  const std::string png = "\x89PNG\r\n\x1a\n";
  BOOST_TEST(data::detail::jpeg_huffman_tables_fit({reinterpret_cast<const unsigned char*>(png.data()), png.size()}));
}

BOOST_AUTO_TEST_CASE(the_loader_reports_and_skips_empty_truncated_and_oversized_images) {
  TempDir dir;
  std::ifstream in(emoji_png, std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto huge = dir.write("huge.png", png_header(20000, 20000));
  const auto empty = dir.write("empty.png", "");
  const auto truncated = dir.write("truncated.png", png.substr(0, png.size() / 3));
  commercemm::Config config;
  config.data.max_image_pixels = 10000;  // the oversized one by the config's limit
  config.model = commercemm::presets::model("tiny");
  auto options = data::loader_options(config, 5, false);
  BOOST_TEST(options.image.max_pixels == 10000);
  options.workers = 0;
  std::vector<data::Record> records;
  records.push_back({{"good", emoji_png, "grinning face", 0, ""}, {}});
  records.push_back({{"huge", huge, "a poster", 1, ""}, {}});
  records.push_back({{"empty", empty, "nothing", 2, ""}, {}});
  records.push_back({{"truncated", truncated, "half", 3, ""}, {}});
  records.push_back({{"good2", emoji_png, "smile", 4, ""}, {}});
  auto tokenizer = std::make_shared<const data::WordPieceTokenizer>(
      data::WordPieceTokenizer::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "smile"}, "<test>"));
  data::Loader loader(records, tokenizer, options);
  const auto batch = loader.next();
  BOOST_REQUIRE(batch);
  BOOST_TEST(batch->source.size() == 2);
  BOOST_TEST((batch->source.item_ids == std::vector<std::string>{"good", "good2"}));
  BOOST_TEST(loader.stats().skipped == 3);
  BOOST_TEST((loader.stats().skipped_files == std::vector<std::string>{huge.string(), empty.string(), truncated.string()}));
}

BOOST_AUTO_TEST_CASE(a_100_mb_manifest_line_is_an_error_at_its_line_before_it_is_held) {
  TempDir dir;
  const auto file = dir.path / "catalog.jsonl";
  {
    std::ofstream out(file, std::ios::binary);
    out << R"({"id":"a","title":"fine"})" << '\n';
    out << R"({"id":"b","title":")" << std::string(100 << 20, 'x') << "\"}\n";
  }
  const auto e = expect_error([&] { data::read_items(file, {.check_files = false}); });
  BOOST_TEST(e.where().file == file.string());
  BOOST_TEST(e.where().line == 2);
  BOOST_TEST(has(e, "line longer than 16 MiB"));
}

BOOST_AUTO_TEST_CASE(malformed_json_names_the_file_and_line) {
  TempDir dir;
  const auto file = dir.write("sources.jsonl", "{\"id\":\"a\",\"title\":\"x\"}\n\n{\"id\":\"b\",\"title\":\"y\"\n");
  const auto e = expect_error([&] { data::read_items(file); });
  BOOST_TEST(e.where().line == 3);
  BOOST_TEST(has(e, "malformed JSON"));
  const auto not_utf8 = dir.write("latin1.jsonl", "{\"id\":\"a\",\"title\":\"caf\xe9\"}\n");
  const auto u = expect_error([&] { data::read_items(not_utf8); });
  BOOST_TEST(u.where().line == 1);
  BOOST_TEST(has(u, "malformed JSON"));
}

BOOST_AUTO_TEST_CASE(a_million_rows_pairing_one_product_stop_at_the_first_repeat) {
  TempDir dir;
  const auto catalog = data::read_items(dir.write("c.jsonl", "{\"id\":\"c1\",\"product_id\":\"p1\",\"title\":\"t\"}\n"));
  const auto sources = data::read_items(dir.write("s.jsonl", "{\"id\":\"q1\",\"title\":\"a query\"}\n"));
  const auto file = dir.path / "pairs.jsonl";
  {
    std::ofstream out(file, std::ios::binary);
    const std::string row = R"({"source":"q1","target":"p1","kind":"query"})" "\n";
    for (int i = 0; i < 1'000'000; ++i) out << row;
  }
  const auto e = expect_error([&] { data::read_pairs(file, sources, catalog); });
  BOOST_TEST(e.where().line == 2);
  BOOST_TEST(e.where().field == "source");
  BOOST_TEST(has(e, "duplicate pair: line 1 already pairs 'q1' with 'p1' as query"));
}

BOOST_AUTO_TEST_CASE(a_config_that_is_not_utf8_or_not_a_config_is_an_error_naming_the_file) {
  TempDir dir;
  const auto latin1 = dir.write("latin1.toml", "[train]\nsteps = 3\n[data]\ndir = \"caf\xe9\"\n");
  const auto e = expect_error([&] { commercemm::load_config(latin1.string()); });
  BOOST_TEST(e.where().file == latin1.string());
  BOOST_TEST(e.where().line == 4);
  const auto binary = dir.write("model.toml", std::string(2 << 20, '\0'));
  BOOST_TEST(has(expect_error([&] { commercemm::load_config(binary.string()); }), "more than 1 MiB: not a config"));
  commercemm::Config config;
  BOOST_TEST(has(expect_error([&] { commercemm::apply_override(config, "data.dir=\"caf\xe9\""); }), "--set data.dir"));
  // Non-ASCII is fine in strings and comments of every kind, and refused elsewhere (toml++ 3.3
  // would reach undefined behaviour on U+0308 after a bare key), as is a NUL anywhere.
  const auto fine = dir.write("fine.toml", "# caf\u00e9 \u2603\n[data]\ndir = \"d\u00e9j\u00e0\" # \u00fc\n"
                                           "tokenizer = 'learned_bpe'\n[tasks.itc]\nweight = 2.0\n");
  BOOST_TEST(commercemm::load_config(fine.string()).data.dir == "d\u00e9j\u00e0");
  const auto combining = dir.write("combining.toml", "[train]\nsteps\u0308 = 3\n");
  const auto c = expect_error([&] { commercemm::load_config(combining.string()); });
  BOOST_TEST(c.where().line == 2);
  BOOST_TEST(has(c, "a non-ASCII character outside a string or comment"));
  const auto control = dir.write("control.toml", "[model]\npreset = \"tiny\"\n[train]\nsteps\x01 = 3\n");
  const auto k = expect_error([&] { commercemm::load_config(control.string()); });
  BOOST_TEST(k.where().line == 4);
  BOOST_TEST(has(k, "a control character outside a string or comment"));
  const auto header = dir.write("header.toml", "[model]\n  [# a comment, not a key]\n");
  BOOST_TEST(expect_error([&] { commercemm::load_config(header.string()); }).where().line == 2);
  const auto nul = dir.write("nul.toml", std::string("[train]\nste\0ps = 3\n", 19));
  const auto n = expect_error([&] { commercemm::load_config(nul.string()); });
  BOOST_TEST(n.where().line == 2);
  BOOST_TEST(has(n, "NUL"));
}

BOOST_AUTO_TEST_CASE(a_vocabulary_that_is_not_utf8_or_too_large_is_an_error_naming_the_file) {
  TempDir dir;
  const auto vocab = dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncaf\xe9\n");
  const auto e = expect_error([&] { data::WordPieceTokenizer::from_file(vocab.string()); });
  BOOST_TEST(e.where().file == vocab.string());
  BOOST_TEST(e.where().line == 6);
  BOOST_TEST(has(e, "not valid UTF-8"));
  const auto encoder = dir.write("encoder.json", "{\"caf\xe9\": 0}");
  const auto merges = dir.write("vocab.bpe", "#version: 0.2\n");
  const auto b = expect_error([&] { data::ByteLevelBpe::from_files(encoder.string(), merges.string()); });
  BOOST_TEST(b.where().file == encoder.string());
  {
    std::ofstream out(dir.path / "huge.txt", std::ios::binary);
    out.seekp((std::streamoff{257} << 20) - 1);
    out.put('\n');  // sparse: no disk, but 257 MiB long
  }
  const auto big = expect_error([&] { data::WordPieceTokenizer::from_file((dir.path / "huge.txt").string()); });
  BOOST_TEST(has(big, "not a vocabulary file"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(containment)

// "..", an absolute path and a symlink, each leading out of the dataset directory.
BOOST_AUTO_TEST_CASE(paths_that_resolve_outside_the_dataset_are_errors_unless_allowed) {
  TempDir outside, dataset;
  const auto secret = outside.write("secret.png", "not read");
  fs::create_directories(dataset.path / "images");
  fs::copy_file(emoji_png, dataset.path / "images/ok.png");
  fs::create_symlink(secret, dataset.path / "images/link.png");
  fs::create_directory_symlink(outside.path, dataset.path / "elsewhere");
  const std::string up = fs::relative(secret, dataset.path).generic_string();  // ../commercemm-bounds-test-N/secret.png
  BOOST_REQUIRE(up.rfind("..", 0) == 0u);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {up, "dot-dot"},
      {secret.string(), "absolute"},
      {"images/link.png", "symlinked file"},
      {"elsewhere/secret.png", "symlinked directory"},
      {"images/../../" + up.substr(3), "dot-dot inside"},
  };
  for (const auto& [path, what] : cases) {
    const auto file = dataset.write("items.jsonl", "{\"id\":\"ok\",\"image\":\"images/ok.png\"}\n{\"id\":\"bad\",\"image\":" +
                                                      nlohmann::json(path).dump() + "}\n");
    const auto e = expect_error([&] { data::read_items(file); });
    BOOST_TEST(e.where().file == file.string(), what);
    BOOST_TEST(e.where().line == 2, what);
    BOOST_TEST(e.where().field == "image", what);
    BOOST_TEST(has(e, "resolves outside the dataset directory"), what);
    BOOST_TEST(has(e, "data.allow_outside_paths"), what);
    const auto allowed = data::read_items(file, {.allow_outside_paths = true});
    BOOST_TEST(allowed.size() == 2u, what);
  }
  // Inside stays fine, however it is spelled: absolute, with "..", through a link that stays in.
  fs::create_symlink(dataset.path / "images/ok.png", dataset.path / "images/inner-link.png");
  const auto fine = dataset.write(
      "fine.jsonl", "{\"id\":\"a\",\"image\":" + nlohmann::json((dataset.path / "images/ok.png").string()).dump() +
                        "}\n{\"id\":\"b\",\"image\":\"images/../images/ok.png\"}\n{\"id\":\"c\",\"image\":\"images/inner-link.png\"}\n");
  BOOST_TEST(data::read_items(fine).size() == 3u);
}

BOOST_AUTO_TEST_CASE(read_split_applies_the_rule_to_catalog_and_sources) {
  TempDir outside, dataset;
  outside.write("x.png", "");
  fs::copy_file(emoji_png, outside.path / "x.png", fs::copy_options::overwrite_existing);
  const auto up = fs::relative(outside.path / "x.png", dataset.path).generic_string();
  dataset.write("catalog-train.jsonl", "{\"id\":\"c1\",\"product_id\":\"p1\",\"title\":\"t\",\"image\":\"" + up + "\"}\n");
  const auto e = expect_error([&] { data::read_split(dataset.path, "train"); });
  BOOST_TEST(e.where().line == 1);
  BOOST_TEST(data::read_split(dataset.path, "train", true, true).catalog.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
