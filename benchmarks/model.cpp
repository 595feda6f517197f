// Forward and forward+backward throughput of each part of the model, batch 32.
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

BENCHMARK_MAIN();
