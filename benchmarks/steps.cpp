// Time of one full training step (forward + backward + AdamW update) of cmm::train::Step on
// synthetic batches, for growing task lists, and the same 14 tasks run naively (one
// forward/backward/update per task):
//   build/benchmarks/commercemm_bench_steps --benchmark_counters_tabular=true
// One benchmark iteration is one training step, so the Time column (wall clock, UseRealTime)
// is the time per step; the CPU column is the benchmark thread's CPU time.
//   itc        TaskList<ITC<>>                                   pass A only
//   pass_a5    MLM, MIM<KL>, MIM<FeatureRegression>, ITC, ITM<Hard>  pass A only
//   all14      the five + OmniRetrieval<omni::All>                  pass A + pass B, one update
//   albef_sizes  MLM, ITC, ITM<Hard> at the sizes of the TorchMultimodal ALBEF figure in the README
//   growth     all 14 in bf16 by preset, batch size and text length, with peak memory
//   all14_naive  14 single-task Steps on ONE shared model, run one after another on the same
//              batches; each Step has its own AdamW over its own parameters (the shared model
//              + that task's head), so one naive iteration is 14 forward/backward passes and
//              14 optimizer updates of the whole model (each zero_grads, clips and steps).
// Pass A gets an image-text batch of B pairs, pass B a source batch and a target batch of B
// each (sources mix text-only, image-only and text+image rows). Schedule: RandomFusionSplit.
// Counters: samples/s = B image-text pairs per step over wall time; backward and updates =
// backward passes and optimizer updates per step; GFLOP/step = the matrix products and
// convolutions of one step (forward and backward, gemm_flops.hpp); gemm_share = their FLOP/s
// in the timed steps over a 2048² matmul's at the same precision and threads. Each case runs
// one untimed warm-up step.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include <sys/resource.h>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

#include "gemm_flops.hpp"

namespace cmm = commercemm;
namespace tk = commercemm::tasks;

namespace {
using Model = cmm::DefaultModel;
using Schedule = cmm::schedules::RandomFusionSplit;

using ItcOnly = cmm::TaskList<tk::ITC<>>;
using PassA5 = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                             tk::ITM<cmm::negatives::Hard>>;
using All14 = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;
// ALBEF's three pre-training tasks (its momentum distillation aside).
using AlbefTasks = cmm::TaskList<tk::MLM, tk::ITC<>, tk::ITM<cmm::negatives::Hard>>;

const cmm::data::SpecialTokens kSpecial{0, 1, 2};  // ids are drawn from [3, vocab)

cmm::Config make_config(const char* preset) {
  cmm::Config c;
  c.model = cmm::presets::model(preset);
  c.train.steps = 1000;  // the schedule's horizon; only a handful of steps run
  return c;
}

// B image-text pairs shaped like a real batch: every other row ends in a padding tail.
cmm::Batch image_text_batch(const cmm::ModelConfig& m, std::int64_t b, std::uint64_t seed) {
  torch::manual_seed(seed);
  const auto s = m.image.image_size, l = m.text.max_length;
  cmm::Batch batch;
  batch.images = torch::randn({b, 3, s, s});
  batch.text_ids = torch::randint(3, m.text.vocab_size, {b, l}, torch::kLong);
  batch.text_mask = torch::ones({b, l}, torch::kLong);
  const auto tail = l / 4;
  for (std::int64_t i = 1; i < b; i += 2) {
    batch.text_mask[i].narrow(0, l - tail, tail).fill_(0);
    batch.text_ids[i].narrow(0, l - tail, tail).fill_(kSpecial.pad);
  }
  batch.product_ids = torch::arange(b, torch::kLong);
  return batch;
}

// Pass B: sources mixing queries (text only), views (image only) and posts (both) -> products.
std::pair<cmm::Batch, cmm::Batch> cross_pair_batch(const cmm::ModelConfig& m, std::int64_t b, std::uint64_t seed) {
  auto source = image_text_batch(m, b, seed), target = image_text_batch(m, b, seed + 1);
  target.product_ids = source.product_ids.clone();
  source.text_present = torch::ones({b}, torch::kBool);
  source.image_present = torch::ones({b}, torch::kBool);
  for (std::int64_t i = 0; i < b; i += 3) source.image_present[i] = false;
  for (std::int64_t i = 1; i < b; i += 3) source.text_present[i] = false;
  return {source, target};
}

struct Batches {
  Batches(const cmm::ModelConfig& m, std::int64_t b) : a(image_text_batch(m, b, 1)) {
    std::tie(source, target) = cross_pair_batch(m, b, 2);
  }
  cmm::Batch a, source, target;
};

// The large-GEMM throughput at `dtype` and the current torch threads, measured once.
double peak(torch::ScalarType dtype) {
  static std::map<std::pair<torch::ScalarType, int>, double> cache;
  if (cache.empty()) cmm::bench::check_gemm_flop_counter();
  const auto key = std::make_pair(dtype, at::get_num_threads());
  if (!cache.count(key)) cache[key] = cmm::bench::gemm_peak_flops(dtype);
  return cache[key];
}

torch::optim::AdamWOptions adamw(const cmm::Config& c) {
  return torch::optim::AdamWOptions(c.train.lr).weight_decay(c.train.weight_decay);
}

void report(benchmark::State& state, std::int64_t batch, std::int64_t backward, std::int64_t updates) {
  const auto it = static_cast<double>(state.iterations());
  state.counters["samples/s"] = benchmark::Counter(it * static_cast<double>(batch), benchmark::Counter::kIsRate);
  state.counters["backward"] = static_cast<double>(backward) / it;
  state.counters["updates"] = static_cast<double>(updates) / it;
}

// One Step over the whole task list: each iteration is one training step.
template <class Tasks>
void planned(benchmark::State& state, const cmm::Config& config, std::int64_t batch) {
  // fp32: 1 torch thread (OpenBLAS already uses both cores); bf16: every core (oneDNN).
  cmm::train::apply_threads(config.train.threads, config.train.precision);  // the Step autocasts
  torch::manual_seed(0);
  cmm::train::Step<cmm::Recipe<Model, Tasks, Schedule>> step(Model(config.model), config, kSpecial);
  torch::optim::AdamW optimizer(step.parameters(), adamw(config));
  const Batches data(config.model, batch);
  std::int64_t n = 0;
  step.run(&data.a, &data.source, &data.target, optimizer, n++);  // warm-up, untimed
  const auto before = step.counters();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto r = step.run(&data.a, &data.source, &data.target, optimizer, n++);
    benchmark::DoNotOptimize(r.image_text.total + r.cross_pair.total);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
                         static_cast<double>(state.iterations());
  report(state, batch, step.counters().backward - before.backward,
         step.counters().optimizer_steps - before.optimizer_steps);
  // The GEMM work of one more step (counted untimed: the counter slows every op down), and
  // what share of this machine's large-GEMM throughput the timed steps reached.
  double flops = 0;
  {
    cmm::bench::GemmFlopCounter counter;
    step.run(&data.a, &data.source, &data.target, optimizer, n++);
    flops = counter.flops();
  }
  const auto dtype = config.train.precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  state.counters["GFLOP/step"] = flops / 1e9;
  state.counters["gemm_share"] = flops / seconds / peak(dtype);
  // COMMERCEMM_PROFILE=FILE: one more step under the autograd profiler, as a Chrome trace
  // (scripts/profile-step lists its top ops).
  if (const char* file = std::getenv("COMMERCEMM_PROFILE")) {
    torch::autograd::profiler::RecordProfile profile{std::string(file)};
    step.run(&data.a, &data.source, &data.target, optimizer, n++);
  }
}

// One single-task Step (and its own AdamW) per task, all on the same model holder.
template <class T> struct Single {
  using Step = cmm::train::Step<cmm::Recipe<Model, cmm::TaskList<T>, Schedule>>;
  Single(const Model& model, const cmm::Config& config)
      : step(std::make_unique<Step>(model, config, kSpecial)),
        optimizer(std::make_unique<torch::optim::AdamW>(step->parameters(), adamw(config))) {}
  std::unique_ptr<Step> step;
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

template <class Tuple> struct Naive;
template <class... Ts> struct Naive<std::tuple<Ts...>> {
  Naive(const Model& model, const cmm::Config& config) : singles(Single<Ts>(model, config)...) {}
  double run(const Batches& d, std::int64_t n) {
    double total = 0;
    std::apply([&](auto&... s) {
      ((total += [&] {
         const auto r = s.step->run(&d.a, &d.source, &d.target, *s.optimizer, n);
         return r.image_text.total + r.cross_pair.total;
       }()), ...);
    }, singles);
    return total;
  }
  cmm::train::StepCounters counters() const {
    cmm::train::StepCounters c;
    std::apply([&](const auto&... s) {
      ((c.backward += s.step->counters().backward, c.optimizer_steps += s.step->counters().optimizer_steps), ...);
    }, singles);
    return c;
  }
  std::tuple<Single<Ts>...> singles;
};

template <class Tasks>
void naive(benchmark::State& state, const char* preset, std::int64_t batch) {
  at::set_num_threads(1);  // OpenBLAS already uses both cores
  const auto config = make_config(preset);
  torch::manual_seed(0);
  const Model model(config.model);  // copies of the holder share the module
  Naive<typename Tasks::tuple> steps(model, config);
  const Batches data(config.model, batch);
  std::int64_t n = 0;
  steps.run(data, n++);  // warm-up, untimed
  const auto before = steps.counters();
  for (auto _ : state) benchmark::DoNotOptimize(steps.run(data, n++));
  report(state, batch, steps.counters().backward - before.backward,
         steps.counters().optimizer_steps - before.optimizer_steps);
}

// BENCHMARK_CAPTURE pastes the function name into an identifier: plain names only.
void itc(benchmark::State& s, const char* preset, std::int64_t b) { planned<ItcOnly>(s, make_config(preset), b); }
void pass_a5(benchmark::State& s, const char* preset, std::int64_t b) { planned<PassA5>(s, make_config(preset), b); }
void all14(benchmark::State& s, const char* preset, std::int64_t b) { planned<All14>(s, make_config(preset), b); }
// The same step at a precision and a number of torch threads (0 = by precision).
void all14_precision(benchmark::State& s, const char* preset, std::int64_t b, const char* precision,
                     std::int64_t threads) {
  auto config = make_config(preset);
  config.train.precision = precision;
  config.train.threads = threads;
  planned<All14>(s, config, b);
}
void all14_naive(benchmark::State& s, const char* preset, std::int64_t b) { naive<All14>(s, preset, b); }
// ITC + ITM with hard negatives + MLM at the sizes of the README's TorchMultimodal ALBEF figure
// (ViT 64 px / patch 8, width 256, 4 image + 4 text layers, 2 fusion layers, batch 64, BERT's
// 30,522-token vocabulary for the MLM head; 40 text tokens). ALBEF also runs a momentum
// model's forward for distillation, which this step does not: it does less work than ALBEF's.
void albef_sizes(benchmark::State& s, const char* precision) {
  auto config = make_config("small");
  config.model.image.layers = config.model.text.layers = 4;
  config.model.fusion.layers = 2;
  config.model.text.vocab_size = 30522;
  config.train.precision = precision;
  planned<AlbefTasks>(s, config, 64);
}
// How cost grows: all 14 tasks in bf16 (every core, what a run on this machine uses) at a
// preset, a batch size and a text length. peak_RSS_MB is the process's peak resident memory,
// so it means this case's only when the case runs alone in its process (scripts/bench-growth).
void growth(benchmark::State& s, const char* preset, std::int64_t batch, std::int64_t text_length) {
  auto config = make_config(preset);
  config.model.text.max_length = text_length;
  config.train.precision = "bf16";
  planned<All14>(s, config, batch);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  s.counters["peak_RSS_MB"] = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}
}  // namespace

#define GROWTH_BENCHMARK(name, preset, batch, text_length, iterations)                 \
  BENCHMARK_CAPTURE(growth, name, preset, batch, text_length)                          \
      ->Unit(benchmark::kMillisecond)->Iterations(iterations)->UseRealTime()
GROWTH_BENCHMARK(tiny_b16_l32, "tiny", 16, 32, 3);
GROWTH_BENCHMARK(tiny_b32_l32, "tiny", 32, 32, 3);
GROWTH_BENCHMARK(tiny_b64_l32, "tiny", 64, 32, 3);
GROWTH_BENCHMARK(small_b8_l40, "small", 8, 40, 2);
GROWTH_BENCHMARK(small_b16_l40, "small", 16, 40, 2);
GROWTH_BENCHMARK(small_b32_l40, "small", 32, 40, 2);
GROWTH_BENCHMARK(small_b16_l20, "small", 16, 20, 2);
GROWTH_BENCHMARK(small_b16_l80, "small", 16, 80, 2);
GROWTH_BENCHMARK(base_b2_l64, "base", 2, 64, 1);
GROWTH_BENCHMARK(base_b4_l64, "base", 4, 64, 1);

#define STEP_BENCHMARKS(preset, batch, iterations)                                     \
  BENCHMARK_CAPTURE(itc, preset, #preset, batch)                                       \
      ->Unit(benchmark::kMillisecond)->Iterations(iterations)->UseRealTime();          \
  BENCHMARK_CAPTURE(pass_a5, preset, #preset, batch)                                   \
      ->Unit(benchmark::kMillisecond)->Iterations(iterations)->UseRealTime();          \
  BENCHMARK_CAPTURE(all14, preset, #preset, batch)                                     \
      ->Unit(benchmark::kMillisecond)->Iterations(iterations)->UseRealTime();          \
  BENCHMARK_CAPTURE(all14_naive, preset, #preset, batch)                               \
      ->Unit(benchmark::kMillisecond)->Iterations(iterations)->UseRealTime()

STEP_BENCHMARKS(tiny, 32, 5);
STEP_BENCHMARKS(small, 16, 2);

#define PRECISION_BENCHMARK(name, precision, threads)                                  \
  BENCHMARK_CAPTURE(all14_precision, name, "small", 16, precision, threads)            \
      ->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime()
PRECISION_BENCHMARK(small_fp32_1_thread, "fp32", 1);
PRECISION_BENCHMARK(small_fp32_2_threads, "fp32", 2);
PRECISION_BENCHMARK(small_bf16_1_thread, "bf16", 1);
PRECISION_BENCHMARK(small_bf16_2_threads, "bf16", 2);

BENCHMARK_CAPTURE(albef_sizes, fp32, "fp32")->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(albef_sizes, bf16, "bf16")->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

BENCHMARK_MAIN();
