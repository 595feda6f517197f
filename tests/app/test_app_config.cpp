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
