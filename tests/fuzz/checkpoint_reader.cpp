// The LibTorch half of the checkpoint target, compiled by g++ (see CMakeLists.txt: clang 14
// cannot compile LibTorch 1.13's headers in C++20 mode). Without libFuzzer's coverage
// instrumentation, so the fuzzer is guided only by the harness; LibTorch itself is never
// instrumented anyway (Debian's build).
#include <cstdlib>

#include <torch/torch.h>

#include <commercemm/data/tokenizers/bpe_trainer.hpp>
#include <commercemm/train/checkpoint.hpp>

using namespace commercemm;

namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() : fc(register_module("fc", torch::nn::Linear(4, 3))) { register_buffer("scale", torch::ones({3})); }
  torch::nn::Linear fc;
};
TORCH_MODULE(Tiny);

}  // namespace

/// Writes a small real checkpoint (tiny config, a learned BPE, a Linear as model and heads,
/// an SGD optimizer, the RNG state).
void commercemm_fuzz_write_checkpoint_seed(const char* path) {
  torch::set_num_threads(1);
  Config config;
  config.model = presets::model("tiny");
  const auto tokenizer =
      data::train_byte_level_bpe({"grinning face", "red apple", "green apple"}, {.vocab_size = 270, .min_frequency = 1});
  Tiny model, heads;
  torch::optim::SGD optimizer(model->parameters(), 0.1);
  train::CheckpointParts parts{.config = &config, .tokenizer = &tokenizer, .model = model.get(),
                               .heads = heads.get(), .optimizer = &optimizer};
  parts.state.step = 7;
  train::save_checkpoint(path, parts);
}

/// Opens the checkpoint and reads everything a resume reads. Returns false when it is
/// rejected with commercemm::Error; any other exception propagates (a bug).
bool commercemm_fuzz_read_checkpoint(const char* path) {
  torch::set_num_threads(1);
  try {
    const train::Checkpoint checkpoint(path);
    (void)to_json(checkpoint.config());
    const auto tokenizer = checkpoint.tokenizer();
    (void)tokenizer->decode(tokenizer->encode("grinning face"));
    Tiny model;
    if (checkpoint.has("model")) checkpoint.load("model", *model);
    if (checkpoint.has("heads")) checkpoint.load("heads", *model);
    checkpoint.restore_rng();
    return true;
  } catch (const Error&) {
    return false;
  }
}
