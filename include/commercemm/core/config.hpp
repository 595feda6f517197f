#pragma once
// The run configuration: one struct per TOML table, field for field, read by load_config().
// Unknown keys, wrong types and invalid sizes are errors naming the file, line and key.
#include <cstdint>
#include <map>
#include <string>

#include <commercemm/core/model_config.hpp>

namespace commercemm {

struct DataConfig {
  std::string dir = "data/emoji-commerce";  ///< a benchmark directory written by `data emoji`
  std::int64_t workers = 1;                 ///< background decode threads of the loader
};

struct TrainConfig {
  std::int64_t steps = 2000;
  std::int64_t batch_size = 64;
  double lr = 3e-4;
  std::int64_t warmup_steps = 100;
  double weight_decay = 0.05;
  double grad_clip = 1.0;
  std::int64_t seed = 0;
  std::string precision = "fp32";  ///< "fp32" or "bf16" (autocast on CPUs with AVX-512 bf16)
  std::int64_t threads = 1;        ///< torch intra-op threads; OpenBLAS already uses every core
  /// Divide each pass's weighted loss sum by the sum of its weights, so adding tasks to a
  /// pass does not scale its gradient (ITC starves next to three retrieval losses otherwise).
  bool normalize_pass_weights = false;
};

/// One [tasks.<name>] table; weight 0 switches a compiled-in task off at run time.
struct TaskConfig {
  double weight = 1.0;
};

struct Config {
  ModelConfig model = presets::model("small");
  DataConfig data;
  TrainConfig train;
  std::map<std::string, TaskConfig> tasks;  ///< keyed by snake_case task name ("itc", ...)
};

template <class F> void visit_fields(DataConfig& c, F&& f) {
  f("dir", c.dir); f("workers", c.workers);
}
template <class F> void visit_fields(TrainConfig& c, F&& f) {
  f("steps", c.steps); f("batch_size", c.batch_size); f("lr", c.lr);
  f("warmup_steps", c.warmup_steps); f("weight_decay", c.weight_decay);
  f("grad_clip", c.grad_clip); f("seed", c.seed); f("precision", c.precision);
  f("threads", c.threads); f("normalize_pass_weights", c.normalize_pass_weights);
}
template <class F> void visit_fields(TaskConfig& c, F&& f) { f("weight", c.weight); }

inline void validate(const Config& c, const std::string& file = "") {
  validate(c.model, file);
  const Location at{file, 0, ""};
  const auto& t = c.train;
  detail::require(t.steps >= 0, at, "train.steps", "must not be negative");
  detail::require(t.batch_size > 0, at, "train.batch_size", "must be at least 1");
  detail::require(t.lr > 0, at, "train.lr", "must be positive");
  detail::require(t.warmup_steps >= 0, at, "train.warmup_steps", "must not be negative");
  detail::require(t.weight_decay >= 0, at, "train.weight_decay", "must not be negative");
  detail::require(t.grad_clip >= 0, at, "train.grad_clip", "must not be negative (0 = off)");
  detail::require(t.precision == "fp32" || t.precision == "bf16", at, "train.precision",
                  "must be \"fp32\" or \"bf16\", got \"" + t.precision + "\"");
  detail::require(t.threads > 0, at, "train.threads", "must be at least 1");
  detail::require(c.data.workers >= 0, at, "data.workers", "must not be negative");
  for (const auto& [name, task] : c.tasks)
    detail::require(task.weight >= 0, at, "tasks." + name + ".weight", "must not be negative");
}

}  // namespace commercemm
