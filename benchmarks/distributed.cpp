// Data-parallel training cost: one training step of all 14 tasks on a fixed global batch, on
// one process or on every rank of a job, and the all-gather's cost against batch size.
//   scripts/bench-dist            runs it alone, then as 2 ranks (loopback), and prints both
// Under WORLD_SIZE > 1 every rank runs the same fixed iterations (collectives must pair up);
// rank 0 reports. Counters:
//   comm_share  share of the wall time spent inside collectives (gathers, counts, logged
//               losses) or waiting for gradient buckets the backward did not hide
//   rows        the global batch of each pass
// fp32 with train.threads = 0: one process uses both cores (OpenBLAS), each of 2 ranks one.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <commercemm/components.hpp>
#include <commercemm/dist/world.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;
namespace dist = commercemm::dist;

namespace {

using All14 = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                            tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<tk::omni::All>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, All14, cmm::schedules::RandomFusionSplit>;
const cmm::data::SpecialTokens kSpecial{0, 1, 2};

// Adds the time spent in every collective (or waiting for an asynchronous one) to `seconds`.
class Timed final : public dist::Communicator {
 public:
  Timed(dist::Communicator& inner, double& seconds) : inner_(inner), seconds_(seconds) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void all_reduce_sum(torch::Tensor& t) override { time([&] { inner_.all_reduce_sum(t); }); }
  void all_reduce_max(torch::Tensor& t) override { time([&] { inner_.all_reduce_max(t); }); }
  std::unique_ptr<dist::Pending> all_reduce_sum_async(torch::Tensor& t) override {
    struct Wait final : dist::Pending {
      std::unique_ptr<dist::Pending> inner;
      Timed* owner;
      void wait() override { owner->time([&] { inner->wait(); }); }
    };
    auto w = std::make_unique<Wait>();
    w->inner = inner_.all_reduce_sum_async(t);
    w->owner = this;
    return w;
  }
  std::vector<torch::Tensor> all_gather(const torch::Tensor& t) override {
    std::vector<torch::Tensor> out;
    time([&] { out = inner_.all_gather(t); });
    return out;
  }
  void broadcast(torch::Tensor& t, int root) override { time([&] { inner_.broadcast(t, root); }); }
  void barrier() override { time([&] { inner_.barrier(); }); }

  template <class F> void time(F&& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

 private:
  dist::Communicator& inner_;
  double& seconds_;
};

double g_comm_seconds = 0;

// Global batch of `rows` (pass A and pass B each), this rank's shard of it.
struct Shard {
  Shard(const cmm::ModelConfig& m, std::int64_t rows) {
    const int r = dist::rank(), n = dist::world_size();
    const auto b = rows / n, first = r * b;
    torch::manual_seed(1);
    const auto s = m.image.image_size, l = m.text.max_length;
    auto make = [&] {
      cmm::Batch x;
      x.images = torch::randn({rows, 3, s, s}).narrow(0, first, b).clone();
      x.text_ids = torch::randint(3, m.text.vocab_size, {rows, l}, torch::kLong).narrow(0, first, b).clone();
      x.text_mask = torch::ones({b, l}, torch::kLong);
      x.product_ids = torch::arange(first, first + b, torch::kLong);
      x.sample_index = torch::arange(first, first + b, torch::kLong);
      return x;
    };
    a = make(), source = make(), target = make();
  }
  cmm::Batch a, source, target;
};

void step(benchmark::State& state, const char* preset, std::int64_t rows) {
  cmm::Config config;
  config.model = cmm::presets::model(preset);
  config.train.steps = 1000;
  cmm::train::apply_threads(0, "fp32", dist::environment().local_world_size);
  torch::manual_seed(0);
  cmm::train::Step<Recipe> s(cmm::DefaultModel(config.model), config, kSpecial);
  torch::optim::AdamW optimizer(s.parameters(), torch::optim::AdamWOptions(1e-4));
  const Shard data(config.model, rows);
  std::int64_t n = 0;
  s.run(&data.a, &data.source, &data.target, optimizer, n++);  // warm-up, untimed
  g_comm_seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) s.run(&data.a, &data.source, &data.target, optimizer, n++);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.counters["comm_share"] = g_comm_seconds / wall;
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["ranks"] = dist::world_size();
}

// All-gather of [rows / ranks, 256] embeddings with gradient, and its backward.
void gather(benchmark::State& state) {
  const auto rows = state.range(0);
  auto x = torch::randn({rows / dist::world_size(), 256}).requires_grad_();
  for (auto _ : state) {
    auto all = dist::gather_rows(x).all;
    all.sum().backward();
  }
  state.counters["rows"] = static_cast<double>(rows);
}

}  // namespace

BENCHMARK_CAPTURE(step, tiny_all14, "tiny", 64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);
BENCHMARK_CAPTURE(step, small_all14, "small", 32)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(gather)->Arg(64)->Arg(512)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(20);

int main(int argc, char** argv) {
  cmm::DistConfig config;
  const auto world = dist::World::join(config, torch::Device(torch::kCPU));
  std::unique_ptr<Timed> collectives, gradients;
  if (world) {
    collectives = std::make_unique<Timed>(world->collectives(), g_comm_seconds);
    gradients = std::make_unique<Timed>(world->gradients(), g_comm_seconds);
    dist::active().collectives = collectives.get();
    dist::active().gradients = gradients.get();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
