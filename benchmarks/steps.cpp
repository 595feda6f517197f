// Time of one full training step (forward + backward + AdamW update) of cmm::train::Step on
// synthetic batches, for growing task lists, and the same 14 tasks run naively (one
// forward/backward/update per task):
//   build/benchmarks/commercemm_bench_steps --benchmark_counters_tabular=true
// One benchmark iteration is one training step, so the Time column (wall clock, UseRealTime)
// is the time per step; the CPU column is the benchmark thread's CPU time.
//   itc        TaskList<ITC<>>                                   pass A only
//   pass_a5    MLM, MIM<KL>, MIM<FeatureRegression>, ITC, ITM<Hard>  pass A only
//   all14      the five + OmniRetrieval<omni::All>                  pass A + pass B, one update
//   all14_naive  14 single-task Steps on ONE shared model, run one after another on the same
//              batches; each Step has its own AdamW over its own parameters (the shared model
//              + that task's head), so one naive iteration is 14 forward/backward passes and
//              14 optimizer updates of the whole model (each zero_grads, clips and steps).
// Pass A gets an image-text batch of B pairs, pass B a source batch and a target batch of B
// each (sources mix text-only, image-only and text+image rows). Schedule: RandomFusionSplit.
// Counters: samples/s = B image-text pairs per step over wall time; backward and updates =
// backward passes and optimizer updates per step. Each case runs one untimed warm-up step.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <tuple>
#include <utility>

#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/components.hpp>

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
  for (auto _ : state) {
    const auto r = step.run(&data.a, &data.source, &data.target, optimizer, n++);
    benchmark::DoNotOptimize(r.image_text.total + r.cross_pair.total);
  }
  report(state, batch, step.counters().backward - before.backward,
         step.counters().optimizer_steps - before.optimizer_steps);
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
}  // namespace

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

BENCHMARK_MAIN();
