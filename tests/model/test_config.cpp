#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>

#include <commercemm/core/config_io.hpp>

namespace cmm = commercemm;
namespace fs = std::filesystem;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = fs::temp_directory_path() / ("commercemm_test_" + name);
  std::ofstream(path) << text;
  return path.string();
}

// Loads `text` and returns the error, failing the test if there is none.
cmm::Error load_error(const std::string& name, const std::string& text) {
  const auto path = write_temp(name, text);
  try {
    cmm::load_config(path);
  } catch (const cmm::Error& e) {
    BOOST_TEST(e.where().file == path);
    return e;
  }
  BOOST_FAIL("expected an error for " + name);
  return cmm::Error("unreachable");
}
}  // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(preset_then_overrides) {
  const auto path = write_temp("ok.toml", R"([model]
preset = "tiny"
embed_dim = 32
[model.image]
layers = 3
[train]
lr = 1e-3
precision = "bf16"
[tasks.itc]
weight = 0.5
)");
  const auto c = cmm::load_config(path);
  BOOST_TEST(c.model.preset == "tiny");
  BOOST_TEST(c.model.embed_dim == 32);
  BOOST_TEST(c.model.image.layers == 3);
  BOOST_TEST(c.model.image.width == cmm::presets::model("tiny").image.width);  // from the preset
  BOOST_TEST(c.train.lr == 1e-3);
  BOOST_TEST(c.train.precision == "bf16");
  BOOST_TEST(c.tasks.at("itc").weight == 0.5);
}

BOOST_AUTO_TEST_CASE(unknown_key_names_line_and_suggests) {
  const auto e = load_error("typo.toml", "[model]\npreset = \"tiny\"\n[model.image]\nwidht = 64\n");
  BOOST_TEST(e.where().line == 4);
  BOOST_TEST(e.where().field == "model.image.widht");
  BOOST_TEST(std::string(e.what()).find("did you mean 'width'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(wrong_type_names_key) {
  const auto e = load_error("type.toml", "[train]\nsteps = \"many\"\n");
  BOOST_TEST(e.where().line == 2);
  BOOST_TEST(e.where().field == "train.steps");
  BOOST_TEST(e.message().find("integer") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(inf_and_nan_are_errors_with_their_line) {
  // TOML can spell them; no key means them, and a typed key, a task option and a pair-kind
  // weight are read by different paths.
  for (const auto& [text, key, line] :
       {std::tuple{"[train]\nlr = inf\n", "train.lr", 2}, std::tuple{"[train]\nsteps = 3\nweight_decay = -inf\n", "train.weight_decay", 3},
        std::tuple{"[tasks.itc]\ntemperature = nan\n", "tasks.itc.temperature", 2},
        std::tuple{"[data.pair_kinds]\nquery = inf\n", "data.pair_kinds.query", 2}}) {
    const auto e = load_error("finite.toml", text);
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(e.where().line == line);
    BOOST_TEST(e.where().field == key);
    BOOST_TEST(e.message().find("must be a finite number") != std::string::npos);
  }
  cmm::Config c;
  BOOST_CHECK_THROW(cmm::apply_override(c, "train.lr=nan"), cmm::Error);
  BOOST_TEST(c.train.lr == cmm::Config{}.train.lr);  // a refused override leaves the config as it was
}

BOOST_AUTO_TEST_CASE(a_byte_order_mark_is_read_past) {
  const auto c = cmm::load_config(write_temp("bom.toml", "\xEF\xBB\xBF[train]\r\nsteps = 7\r\n"));
  BOOST_TEST(c.train.steps == 7);
}

BOOST_AUTO_TEST_CASE(a_value_out_of_range_names_its_line) {
  auto e = load_error("range.toml", "[train]\nlr = 0.1\nsteps = -3\n");
  BOOST_TEST(e.where().line == 3);
  BOOST_TEST(e.where().field == "train.steps");
  e = load_error("range2.toml", "[model]\npreset = \"tiny\"\n[model.image]\n\nthumbnail = 99\n");
  BOOST_TEST(e.where().line == 5);
  BOOST_TEST(e.where().field == "model.image.thumbnail");
  // A rule between two keys names one the file did not set: the file, no line.
  e = load_error("pair.toml", "[model.text]\nheads = 3\n");
  BOOST_TEST(e.where().field == "model.text.width");
  BOOST_TEST(e.where().line == 0);
}

BOOST_AUTO_TEST_CASE(invalid_sizes_name_the_key) {
  BOOST_TEST(load_error("heads.toml", "[model.text]\nwidth = 100\nheads = 3\n").where().field == "model.text.width");
  BOOST_TEST(load_error("patch.toml", "[model.image]\nimage_size = 60\npatch_size = 8\n").where().field ==
             "model.image.image_size");
  BOOST_TEST(load_error("layers.toml", "[model.fusion]\nlayers = 0\n").where().field == "model.fusion.layers");
  BOOST_TEST(load_error("preset.toml", "[model]\npreset = \"huge\"\n").where().field == "model.preset");
  BOOST_TEST(load_error("syntax.toml", "[model\n").where().line == 1);
}

BOOST_AUTO_TEST_CASE(overrides_and_json) {
  auto c = cmm::Config{};
  cmm::apply_override(c, "model.image.layers=2");
  cmm::apply_override(c, "train.precision=bf16");
  BOOST_TEST(c.model.image.layers == 2);
  BOOST_TEST(c.train.precision == "bf16");
  BOOST_CHECK_THROW(cmm::apply_override(c, "train.stpes=3"), cmm::Error);
  BOOST_CHECK_THROW(cmm::apply_override(c, "model.image.heads=0"), cmm::Error);
  const auto j = cmm::to_json(c);
  BOOST_TEST(j["model"]["image"]["layers"].get<int>() == 2);
  BOOST_TEST(j["train"]["precision"].get<std::string>() == "bf16");
}

BOOST_AUTO_TEST_CASE(shipped_configs_load) {
  for (const auto& [name, preset] : {std::pair{"tiny", "tiny"}, std::pair{"small", "small"}, std::pair{"base", "base"},
                                      std::pair{"demo", "tiny"}, std::pair{"long", "tiny"}}) {
    const auto file = std::filesystem::path(COMMERCEMM_SOURCE_DIR) / "examples" / "configs" / (std::string(name) + ".toml");
    const auto c = cmm::load_config(file.string());
    BOOST_TEST(c.model.preset == preset);
  }
}

BOOST_AUTO_TEST_SUITE_END()
