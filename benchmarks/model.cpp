// Forward and forward+backward throughput of each part of the model, batch 32; and what an
// item's embeddings cost at each fusion split with the per-modality sides reused.
//   build/benchmarks/commercemm_bench_model --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

namespace cmm = commercemm;

namespace {
constexpr std::int64_t kBatch = 32;
enum class Part { Image, Text, Fusion, Model };

void run(benchmark::State& state, const char* preset, Part part, bool backward) {
  at::set_num_threads(1);  // OpenBLAS already uses both cores
  const auto config = cmm::presets::model(preset);
  torch::manual_seed(0);
  cmm::DefaultModel model(config);
  cmm::Batch batch;
  batch.images = torch::randn({kBatch, 3, config.image.image_size, config.image.image_size});
  batch.text_ids = torch::randint(1, config.text.vocab_size, {kBatch, config.text.max_length}, torch::kLong);
  batch.text_mask = torch::ones_like(batch.text_ids);
  cmm::TokenSequence text, image;
  {
    torch::NoGradGuard g;  // fusion inputs, computed once
    text = model->encode_text(batch.text_ids, batch.text_mask);
    image = model->encode_image(batch.images);
  }
  for (auto _ : state) {
    torch::AutoGradMode grad(backward);
    torch::Tensor out;
    switch (part) {
      case Part::Image: out = model->encode_image(batch.images).tokens; break;
      case Part::Text: out = model->encode_text(batch.text_ids, batch.text_mask).tokens; break;
      case Part::Fusion: out = model->fuse(text, image).pooled; break;
      case Part::Model: {
        const auto e = model->embed(batch);
        out = e.image + e.text + e.multimodal;
        break;
      }
    }
    if (backward) {
      out.sum().backward();
      model->zero_grad();
    }
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                                   benchmark::Counter::kIsRate);
}

// Inference at fusion split state.range(0) (eval mode, no gradients), with the reuse
// Model::cache_image / cache_text / embed_multimodal allow:
//  - all_three: an item's three embeddings from scratch (embed);
//  - new_title: all three again after a new title, the photo's side kept (text side + join);
//  - from_sides: the multimodal embedding from both kept sides (the joint layers alone).
enum class Reuse { AllThree, NewTitle, FromSides };

void reuse(benchmark::State& state, const char* preset, Reuse what) {
  at::set_num_threads(1);
  const auto config = cmm::presets::model(preset);
  const cmm::FusionSplit split{state.range(0)};
  torch::manual_seed(0);
  cmm::DefaultModel model(config);
  model->eval();
  torch::NoGradGuard no_grad;
  cmm::Batch batch;
  batch.images = torch::randn({kBatch, 3, config.image.image_size, config.image.image_size});
  batch.text_ids = torch::randint(1, config.text.vocab_size, {kBatch, config.text.max_length}, torch::kLong);
  batch.text_mask = torch::ones_like(batch.text_ids);
  const auto photo = model->cache_image(batch.images, split);
  const auto title = model->cache_text(batch.text_ids, batch.text_mask, split);
  model->embed(batch, split);  // first-call set-up is no case's cost
  for (auto _ : state) {
    torch::Tensor out;
    switch (what) {
      case Reuse::AllThree: out = model->embed(batch, split).multimodal; break;
      case Reuse::NewTitle: out = model->embed_multimodal(model->cache_text(batch.text_ids, batch.text_mask, split), photo); break;
      case Reuse::FromSides: out = model->embed_multimodal(title, photo); break;
    }
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.counters["items/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                                 benchmark::Counter::kIsRate);
}
}  // namespace

#define PART_BENCHMARKS(preset)                                                                   \
  BENCHMARK_CAPTURE(run, preset##_image_forward, #preset, Part::Image, false)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(run, preset##_image_train, #preset, Part::Image, true)->Unit(benchmark::kMillisecond);   \
  BENCHMARK_CAPTURE(run, preset##_text_forward, #preset, Part::Text, false)->Unit(benchmark::kMillisecond);  \
  BENCHMARK_CAPTURE(run, preset##_text_train, #preset, Part::Text, true)->Unit(benchmark::kMillisecond);     \
  BENCHMARK_CAPTURE(run, preset##_fusion_forward, #preset, Part::Fusion, false)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(run, preset##_fusion_train, #preset, Part::Fusion, true)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(run, preset##_model_forward, #preset, Part::Model, false)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(run, preset##_model_train, #preset, Part::Model, true)->Unit(benchmark::kMillisecond)

PART_BENCHMARKS(tiny);
PART_BENCHMARKS(small);

#define REUSE_BENCHMARKS(preset, layers)                                                                \
  BENCHMARK_CAPTURE(reuse, preset##_all_three, #preset, Reuse::AllThree)->DenseRange(0, layers)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(reuse, preset##_new_title, #preset, Reuse::NewTitle)->DenseRange(0, layers)->Unit(benchmark::kMillisecond); \
  BENCHMARK_CAPTURE(reuse, preset##_from_sides, #preset, Reuse::FromSides)->DenseRange(0, layers)->Unit(benchmark::kMillisecond)

REUSE_BENCHMARKS(small, 4);  // the small preset has 4 fusion layers

BENCHMARK_MAIN();
