#pragma once
// A checkpoint's model, ready for inference: what `evaluate`, `embed` and `export` read.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/modules/linear.h>

#include <commercemm/core/config.hpp>
#include <commercemm/eval/scoring.hpp>
#include <commercemm/train/checkpoint.hpp>

namespace commercemm::cli {

/// The model (in eval mode; the weight average when the run kept one) and, for a fine-tuning
/// checkpoint, its classification head.
template <class Model> struct LoadedModel {
  Model model{nullptr};
  std::optional<eval::FinetunedHead> head;
};

/// `evaluate`, `embed`, `export` and `finetune` run on the CPU: train.device is where
/// pre-training runs. Said once when the config names another device, never silently.
inline void note_cpu_only(const Config& config, const char* command) {
  if (config.train.device != "cpu")
    std::fprintf(stderr, "note: %s runs on the CPU; train.device = \"%s\" is where pretrain runs\n", command,
                 config.train.device.c_str());
}

template <class Model> LoadedModel<Model> load_model(const train::Checkpoint& checkpoint, const Config& config) {
  LoadedModel<Model> out;
  out.model = Model(config.model);
  checkpoint.load(checkpoint.served_weights(), *out.model);
  out.model->eval();
  const auto& extra = checkpoint.state().extra;
  if (checkpoint.state().kind == "finetune" && extra.contains("labels")) {
    out.head.emplace();
    out.head->task = extra.at("task").get<std::string>();
    out.head->labels = eval::LabelSet(extra.at("labels").get<std::vector<std::string>>());
    out.head->linear = torch::nn::Linear(config.model.embed_dim, out.head->labels.size());
    checkpoint.load("finetune", *out.head->linear);
  }
  return out;
}

}  // namespace commercemm::cli
