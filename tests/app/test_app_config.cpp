// The app's config tables ([finetune], [eval], the new [train] keys): unknown keys suggest the
// nearest valid one, wrong types and out-of-range values name the file and the key, and a
// checkpoint's JSON copy reads back to the same config.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <commercemm/cli/report.hpp>
#include <commercemm/core/config_io.hpp>
#include <commercemm/data/loader_options.hpp>

namespace cmm = commercemm;

namespace {
// `toml` loaded from a file (removed afterwards, whatever happens).
cmm::Config config_of(const std::string& toml) {
  const auto file = std::filesystem::temp_directory_path() / ("commercemm-app-config-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file) << toml;
  struct Remove {
    std::filesystem::path file;
    ~Remove() { std::filesystem::remove(file); }
  } remove{file};
  return cmm::load_config(file.string());
}
std::string error_of(const std::string& toml) {
  try {
    config_of(toml);
  } catch (const cmm::Error& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(app_config)

BOOST_AUTO_TEST_CASE(unknown_keys_suggest_the_nearest_valid_key) {
  const auto e = error_of("[eval]\nserach = \"exact\"\n");
  BOOST_CHECK_MESSAGE(contains(e, "commercemm-app-config-") && contains(e, ":2") && contains(e, "eval.serach"), e);
  BOOST_CHECK_MESSAGE(contains(e, "search"), e);
  const auto t = error_of("[finetun]\nsteps = 3\n");
  BOOST_CHECK_MESSAGE(contains(t, "finetune"), t);
  const auto k = error_of("[train]\ncheckpoint_evry = 3\n");
  BOOST_CHECK_MESSAGE(contains(k, "checkpoint_every"), k);
}

BOOST_AUTO_TEST_CASE(wrong_types_and_ranges_name_the_key) {
  const auto type = error_of("[finetune]\nsteps = \"many\"\n");
  BOOST_CHECK_MESSAGE(contains(type, "finetune.steps") && contains(type, ":2"), type);
  const auto split = error_of("[model]\npreset = \"tiny\"\n[eval]\nfusion_split = 9\n");
  BOOST_CHECK_MESSAGE(contains(split, "eval.fusion_split") && contains(split, "model.fusion.layers = 2"), split);
  const auto search = error_of("[eval]\nsearch = \"ivf\"\n");
  BOOST_CHECK_MESSAGE(contains(search, "eval.search") && contains(search, "ivf"), search);
  const auto every = error_of("[train]\nlog_every = 0\n");
  BOOST_CHECK_MESSAGE(contains(every, "train.log_every"), every);
  const auto hybrid = error_of("[eval]\nhybrid_weight = -0.5\n");
  BOOST_CHECK_MESSAGE(contains(hybrid, "eval.hybrid_weight") && contains(hybrid, "at least 0"), hybrid);
  BOOST_TEST(config_of("[eval]\nhybrid_weight = 2.5\n").eval.hybrid_weight == 2.5);
  cmm::Config c;
  BOOST_CHECK_THROW(cmm::apply_override(c, "finetune.batch_size=1"), cmm::Error);
  BOOST_CHECK_NO_THROW(cmm::apply_override(c, "eval.search=hnsw"));
  BOOST_CHECK_EQUAL(c.eval.search, "hnsw");
  // Paths need no quotes either; the new model keys are checked like the others.
  cmm::apply_override(c, "model.image.init=/data/vit.safetensors");
  cmm::apply_override(c, "model.text.init=./bert.safetensors");
  cmm::apply_override(c, "model.text.norm=post");
  BOOST_CHECK_EQUAL(c.model.image.init, "/data/vit.safetensors");
  BOOST_CHECK_EQUAL(c.model.text.init, "./bert.safetensors");
  BOOST_CHECK_EQUAL(c.model.text.norm, "post");
  const auto norm = error_of("[model.text]\nnorm = \"middle\"\n");
  BOOST_CHECK_MESSAGE(contains(norm, "model.text.norm") && contains(norm, "middle"), norm);
}

// The search's knobs: read by the kind that uses them, an error with any other kind.
BOOST_AUTO_TEST_CASE(search_knobs_reach_the_index_and_belong_to_their_kind) {
  const auto knobs = config_of("[eval]\nsearch = \"ivf_pq\"\nnprobe = 8\npq_bytes = 32\nivf_lists = 50\n");
  const auto options = cmm::cli::search_options(knobs);
  BOOST_TEST((options.kind == cmm::eval::SearchOptions::Kind::ivf_pq));
  BOOST_TEST(options.nprobe == 8);
  BOOST_TEST(options.pq_bytes == 32);
  BOOST_TEST(options.ivf_lists == 50);
  BOOST_TEST(options.hnsw_m == cmm::eval::SearchOptions{}.hnsw_m);  // 0 keeps the default
  const auto hnsw = cmm::cli::search_options(config_of("[eval]\nsearch = \"hnsw\"\nef_search = 300\n"));
  BOOST_TEST(hnsw.ef_search == 300);
  const auto unread = error_of("[eval]\nnprobe = 8\n");
  BOOST_CHECK_MESSAGE(contains(unread, "eval.nprobe") && contains(unread, "only eval.search = \"ivf_pq\" reads it"), unread);
  const auto wrong_kind = error_of("[eval]\nsearch = \"ivf_pq\"\nef_search = 64\n");
  BOOST_CHECK_MESSAGE(contains(wrong_kind, "eval.ef_search") && contains(wrong_kind, "\"hnsw\""), wrong_kind);
  const auto divide = error_of("[eval]\nsearch = \"ivf_pq\"\npq_bytes = 24\n");
  BOOST_CHECK_MESSAGE(contains(divide, "eval.pq_bytes") && contains(divide, "model.embed_dim = 256"), divide);
  cmm::Config c;
  BOOST_CHECK_THROW(cmm::apply_override(c, "eval.nprobe=4"), cmm::Error);  // eval.search is "exact"
}

// [data.augment] reaches the training loader (evaluation never augments); ranges are checked and
// a knob of a switched-off augmentation is an error, since it would do nothing.
BOOST_AUTO_TEST_CASE(augmentations_reach_the_training_loader_and_are_checked) {
  const auto c = config_of("[data.augment]\nbrightness = 0.4\ncontrast = 0.3\nsaturation = 0.2\n"
                           "grayscale_probability = 0.25\nmin_area = 0.5\nhorizontal_flip = false\n"
                           "blur_probability = 0.5\nblur_sigma_max = 1.0\n");
  const auto training = cmm::data::loader_options(c, 8, true);
  BOOST_REQUIRE(training.augment.has_value());
  BOOST_TEST(training.augment->brightness == 0.4);
  BOOST_TEST(training.augment->contrast == 0.3);
  BOOST_TEST(training.augment->saturation == 0.2);
  BOOST_TEST(training.augment->grayscale_probability == 0.25);
  BOOST_TEST(training.augment->min_area == 0.5);
  BOOST_TEST(!training.augment->horizontal_flip);
  BOOST_TEST(training.augment->blur_probability == 0.5);
  BOOST_TEST(training.augment->blur_sigma_min == 0.1);
  BOOST_TEST(training.augment->blur_sigma_max == 1.0);
  BOOST_TEST(!cmm::data::loader_options(c, 8, false).augment.has_value());
  const auto range = error_of("[data.augment]\nbrightness = 1.5\n");
  BOOST_CHECK_MESSAGE(contains(range, "data.augment.brightness") && contains(range, "[0, 1]"), range);
  const auto area = error_of("[data.augment]\nmin_area = 0.9\nmax_area = 0.8\n");
  BOOST_CHECK_MESSAGE(contains(area, "data.augment.min_area"), area);
  const auto idle = error_of("[data.augment]\nrandom_resized_crop = false\nmin_area = 0.3\n");
  BOOST_CHECK_MESSAGE(contains(idle, "data.augment.random_resized_crop") && contains(idle, "do nothing"), idle);
  const auto flip = error_of("[data.augment]\nhorizontal_flip = false\nflip_probability = 0.9\n");
  BOOST_CHECK_MESSAGE(contains(flip, "data.augment.flip_probability"), flip);
  const auto sigma = error_of("[data.augment]\nblur_probability = 0.5\nblur_sigma_min = 3.0\n");
  BOOST_CHECK_MESSAGE(contains(sigma, "data.augment.blur_sigma_min") && contains(sigma, "blur_sigma_max"), sigma);
  const auto unblurred = error_of("[data.augment]\nblur_sigma_max = 3.0\n");
  BOOST_CHECK_MESSAGE(contains(unblurred, "data.augment.blur_probability") && contains(unblurred, "do nothing"), unblurred);
  const auto typo = error_of("[data.augment]\ngreyscale_probability = 0.3\n");
  BOOST_CHECK_MESSAGE(contains(typo, ":2") && contains(typo, "grayscale_probability"), typo);
  auto o = cmm::Config{};
  cmm::apply_override(o, "data.augment.grayscale_probability=0.3");
  BOOST_TEST(o.data.augment.grayscale_probability == 0.3);
  BOOST_TEST(cmm::config_from_json(cmm::to_json(o)).data.augment.grayscale_probability == 0.3);
}

BOOST_AUTO_TEST_CASE(the_json_copy_in_a_checkpoint_reads_back_to_the_same_config) {
  auto c = cmm::load_config(std::string(COMMERCEMM_SOURCE_DIR) + "/examples/configs/small.toml");
  c.tasks["itc"].weight = 8;
  c.finetune.head_lr = 0.02;
  c.eval.fusion_split = 1;
  c.train.precision = "bf16";
  const auto back = cmm::config_from_json(cmm::to_json(c));
  BOOST_CHECK_EQUAL(cmm::to_json(back).dump(), cmm::to_json(c).dump());
  auto bad = cmm::to_json(c);
  bad["train"]["steps"] = "ten";
  try {
    cmm::config_from_json(bad);
    BOOST_FAIL("expected an error");
  } catch (const cmm::Error& e) {
    BOOST_CHECK_MESSAGE(contains(e.what(), "train.steps"), e.what());
  }
}

BOOST_AUTO_TEST_SUITE_END()
