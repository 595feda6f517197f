#pragma once
// Checkpoints: one self-contained file per save (a LibTorch archive) holding the config, the
// tokenizer, the model, the weights' moving average (train.ema_decay), the task heads, the MIM
// teacher, the optimizer, the loader positions and the RNG state, so that `evaluate
// --checkpoint FILE` needs nothing else and `--resume` continues exactly where the run stopped.
//
// Every file is written atomically (write_atomically, core/atomic_file.hpp), so a run killed
// mid-save leaves the previous checkpoint intact.
#include <algorithm>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <commercemm/core/atomic_file.hpp>
#include <commercemm/core/config_io.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/train/archive_check.hpp>
#include <commercemm/train/tokenizer_setup.hpp>

namespace commercemm::train {

namespace fs = std::filesystem;

/// Where each loader stands: the next batch of which epoch.
struct LoaderPosition {
  std::int64_t epoch = 0;
  std::int64_t batch = 0;
};

/// The run's progress, stored as JSON in the checkpoint.
struct TrainState {
  std::string kind = "pretrain";  ///< "pretrain" or "finetune"
  std::int64_t step = 0;          ///< steps completed
  LoaderPosition image_text, cross_pair;
  nlohmann::json extra = nlohmann::json::object();  ///< e.g. the fine-tuned task and its labels
};

inline nlohmann::json to_json(const TrainState& s) {
  auto position = [](const LoaderPosition& p) { return nlohmann::json{{"epoch", p.epoch}, {"batch", p.batch}}; };
  return {{"kind", s.kind}, {"step", s.step}, {"image_text", position(s.image_text)},
          {"cross_pair", position(s.cross_pair)}, {"extra", s.extra}};
}
inline TrainState train_state_from_json(const nlohmann::json& j) {
  auto position = [](const nlohmann::json& p) {
    return LoaderPosition{p.at("epoch").get<std::int64_t>(), p.at("batch").get<std::int64_t>()};
  };
  return {j.at("kind").get<std::string>(), j.at("step").get<std::int64_t>(), position(j.at("image_text")),
          position(j.at("cross_pair")), j.value("extra", nlohmann::json::object())};
}

/// Everything a checkpoint holds, by reference for saving. Null modules are skipped.
struct CheckpointParts {
  const Config* config = nullptr;
  const data::Tokenizer* tokenizer = nullptr;
  TrainState state;
  torch::nn::Module* model = nullptr;
  torch::nn::Module* average = nullptr;   ///< the model's weight average (train.ema_decay)
  torch::nn::Module* heads = nullptr;     ///< pre-training task heads
  torch::nn::Module* teacher = nullptr;   ///< an EMA teacher's encoder
  torch::nn::Module* finetune = nullptr;  ///< a downstream head
  torch::optim::Optimizer* optimizer = nullptr;
};

inline constexpr const char* checkpoint_format = "commercemm-checkpoint-1";

namespace detail {
/// Writes `archive` to `file` through our own writes. LibTorch's file writer cannot be told a
/// write failed: its destructor writes the zip's end and throws again while the first error
/// unwinds (std::terminate on a full disk). So every write is "accepted", the first failure
/// remembered, and reported once LibTorch is done, naming `name`.
inline void write_archive(torch::serialize::OutputArchive& archive, const fs::path& file, const fs::path& name) {
  std::FILE* out = std::fopen(file.c_str(), "wb");
  if (out == nullptr)
    throw Error(Location{name.string(), 0, ""}, std::string("cannot create the checkpoint: ") + std::strerror(errno));
  int failure = 0;
  archive.save_to([&](const void* data, std::size_t bytes) -> std::size_t {
    if (failure == 0 && bytes > 0 && std::fwrite(data, 1, bytes, out) != bytes) failure = errno != 0 ? errno : EIO;
    return bytes;
  });
  if (std::fflush(out) != 0 && failure == 0) failure = errno != 0 ? errno : EIO;
  if (std::fclose(out) != 0 && failure == 0) failure = errno != 0 ? errno : EIO;
  if (failure != 0)
    throw Error(Location{name.string(), 0, ""}, std::string("cannot write the checkpoint (disk full or not writable?): ") +
                                                    std::strerror(failure) + "; the previous checkpoint is intact");
}
}  // namespace detail

/// Writes one checkpoint file atomically, with the default CPU generator's state.
inline void save_checkpoint(const fs::path& path, const CheckpointParts& parts) {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(checkpoint_format)));
  archive.write("config", c10::IValue(to_json(*parts.config).dump()));
  archive.write("tokenizer", c10::IValue(tokenizer_to_json(*parts.tokenizer).dump()));
  archive.write("state", c10::IValue(to_json(parts.state).dump()));
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng", generator.get_state());
  }
  auto nested = [&](const char* key, auto* object) {
    if (!object) return;
    torch::serialize::OutputArchive part;
    object->save(part);
    archive.write(key, part);
  };
  nested("model", parts.model);
  nested("average", parts.average);
  nested("heads", parts.heads);
  nested("teacher", parts.teacher);
  nested("finetune", parts.finetune);
  nested("optimizer", parts.optimizer);
  write_atomically(path, [&](const fs::path& temporary) { detail::write_archive(archive, temporary, path); });
}

/// A checkpoint opened for reading: metadata first (to build the model), weights on demand.
class Checkpoint {
 public:
  explicit Checkpoint(const fs::path& path) : path_(path) {
    if (!fs::exists(path)) throw Error(Location{path.string(), 0, ""}, "checkpoint file not found");
    verify_archive(path);  // LibTorch checks no CRC and crashes on some damaged records
    try {
      archive_.load_from(path.string());
    } catch (const c10::Error& e) {
      throw Error(Location{path.string(), 0, ""}, "not a readable checkpoint: " + std::string(e.what_without_backtrace()));
    } catch (const std::exception& e) {  // torch::jit::ErrorReport: damaged TorchScript inside the archive
      throw Error(Location{path.string(), 0, ""}, "not a readable checkpoint: " + std::string(e.what()));
    }
    if (read_string("format") != checkpoint_format)
      throw Error(Location{path.string(), 0, "format"}, "unknown checkpoint format '" + read_string("format") + "'");
    try {
      config_ = config_from_json(nlohmann::json::parse(read_string("config")));
      tokenizer_ = tokenizer_from_json(nlohmann::json::parse(read_string("tokenizer")));
      state_ = train_state_from_json(nlohmann::json::parse(read_string("state")));
    } catch (const nlohmann::json::exception& e) {
      throw Error(Location{path.string(), 0, ""}, std::string("damaged metadata: ") + e.what());
    } catch (const Error& e) {
      throw Error(Location{path.string(), 0, e.where().field}, e.message());
    }
  }

  const fs::path& path() const { return path_; }
  const Config& config() const { return config_; }
  std::shared_ptr<const data::Tokenizer> tokenizer() const { return tokenizer_; }
  const TrainState& state() const { return state_; }
  /// The weights a trained model serves: the moving average when the run kept one.
  std::string served_weights() const { return has("average") ? "average" : "model"; }
  bool has(const std::string& key) const {
    torch::serialize::InputArchive part;
    return guarded(key, [&] { return archive_.try_read(key, part); });
  }

  /// Loads the part `key` ("model", "average", "heads", "teacher", "finetune", "optimizer")
  /// into `object`.
  template <class T> void load(const std::string& key, T& object) const {
    torch::serialize::InputArchive part;
    if (!guarded(key, [&] { return archive_.try_read(key, part); }))
      throw Error(Location{path_.string(), 0, key}, "the checkpoint has no " + key);
    try {
      object.load(part);
    } catch (const c10::Error& e) {
      throw Error(Location{path_.string(), 0, key},
                  "does not match this program's " + key + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw Error(Location{path_.string(), 0, key}, std::string("damaged: ") + e.what());
    }
  }
  /// Restores the default CPU generator (dropout, sampling) to its state at the save.
  void restore_rng() const {
    c10::IValue value;
    if (!guarded("rng", [&] { return archive_.try_read("rng", value); })) return;
    guarded("rng", [&] {
      if (!value.isTensor()) throw Error(Location{path_.string(), 0, "rng"}, "not a generator state");
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(value.toTensor());
      return true;
    });
  }

 private:
  // LibTorch reports a damaged archive with c10::Error or std::runtime_error: both become an
  // Error naming the file and the part.
  template <class F> bool guarded(const std::string& key, F&& read) const {
    try {
      return read();
    } catch (const Error&) {
      throw;
    } catch (const c10::Error& e) {
      throw Error(Location{path_.string(), 0, key}, "damaged: " + std::string(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      throw Error(Location{path_.string(), 0, key}, std::string("damaged: ") + e.what());
    }
  }

  std::string read_string(const std::string& key) const {
    c10::IValue value;
    if (!guarded(key, [&] { return archive_.try_read(key, value); }) || !value.isString())
      throw Error(Location{path_.string(), 0, key}, "missing from the checkpoint");
    return value.toStringRef();
  }

  fs::path path_;
  mutable torch::serialize::InputArchive archive_;
  Config config_;
  std::shared_ptr<const data::Tokenizer> tokenizer_;
  TrainState state_;
};

/// A run's checkpoints directory: step-NNNNNNN.pt files, the newest also as last.pt (a hard
/// link, replaced atomically), the oldest removed beyond `keep`.
class CheckpointDirectory {
 public:
  CheckpointDirectory(fs::path dir, std::int64_t keep) : dir_(std::move(dir)), keep_(keep) {}

  const fs::path& dir() const { return dir_; }
  fs::path last() const { return dir_ / "last.pt"; }

  fs::path save(const CheckpointParts& parts) {
    fs::create_directories(dir_);
    char name[32];
    std::snprintf(name, sizeof name, "step-%07lld.pt", static_cast<long long>(parts.state.step));
    const fs::path file = dir_ / name;
    save_checkpoint(file, parts);
    write_atomically(last(), [&](const fs::path& temporary) { fs::create_hard_link(file, temporary); });
    prune();
    return file;
  }

  /// The step-N.pt files, oldest first.
  std::vector<fs::path> list() const {
    std::vector<fs::path> out;
    if (!fs::exists(dir_)) return out;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (is_step_file(entry.path().filename().string())) out.push_back(entry.path());
    std::sort(out.begin(), out.end());
    return out;
  }

  /// Removes temporary files a killed save left behind.
  void remove_stray_temporaries() const {
    if (!fs::exists(dir_)) return;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().extension() == ".tmp") fs::remove(entry.path());
  }

 private:
  // step-<digits>.pt (a character check: <regex> would cost every binary seconds to compile).
  static bool is_step_file(const std::string& name) {
    constexpr std::string_view head = "step-", tail = ".pt";
    if (name.size() <= head.size() + tail.size() || !name.starts_with(head) || !name.ends_with(tail)) return false;
    const auto digits = std::string_view(name).substr(head.size(), name.size() - head.size() - tail.size());
    return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  void prune() const {
    auto files = list();
    const auto keep = static_cast<std::size_t>(keep_);
    for (std::size_t i = 0; i + keep < files.size(); ++i) fs::remove(files[i]);
  }

  fs::path dir_;
  std::int64_t keep_;
};

}  // namespace commercemm::train
