// Retrieval over a synthetic catalog of 10k, 100k and 1M products (256-dim unit embeddings,
// the small and base presets' width) with each eval.search kind: build time, index size
// (FAISS's serialized bytes: what memory holds and embed --index writes), query latency
// (1,000 queries in one call, and one query at a time) and recall@10 against exact search.
//   build/benchmarks/commercemm_bench_retrieval --benchmark_counters_tabular=true
// The catalog has the structure embeddings have (clusters of 20 similar products around
// random centres) and each query is a noisy copy of a catalog row, as another view of the
// same product would be: on structureless random vectors every approximate index looks worse
// than it does on embeddings.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include <ATen/Parallel.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <torch/types.h>

#include <commercemm/eval/search.hpp>

namespace eval = commercemm::eval;

namespace {
constexpr std::int64_t kDim = 256, kQueries = 1000, kK = 10, kCluster = 20;

torch::Tensor unit(torch::Tensor x) { return x / x.norm(2, 1, true); }

struct Catalog {
  torch::Tensor gallery, queries;
  eval::SearchResult exact;  // the ground truth, from the exact index
};

const Catalog& catalog(std::int64_t size) {
  static std::map<std::int64_t, Catalog> cache;
  if (auto it = cache.find(size); it != cache.end()) return it->second;
  torch::manual_seed(size);
  Catalog c;
  const auto centres = unit(torch::randn({size / kCluster, kDim}));
  // Noise of norm ~0.5 around each centre: neighbours within a cluster score ~0.8, across ~0.
  c.gallery = unit(centres.repeat_interleave(kCluster, 0) + 0.5 * torch::randn({size, kDim}) / 16.0);
  const auto sources = torch::randint(size, {kQueries}, torch::kLong);
  c.queries = unit(c.gallery.index_select(0, sources) + 0.3 * torch::randn({kQueries, kDim}) / 16.0);
  c.exact = eval::InnerProductIndex(c.gallery).search(c.queries, kK);
  return cache.emplace(size, std::move(c)).first->second;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// range(0): the kind (0 exact, 1 hnsw, 2 ivf_pq), range(1): the catalog size. Iterations time
// a batched search of the 1,000 queries; the counters carry the rest.
void search(benchmark::State& state) {
  at::set_num_threads(2);  // FAISS and LibTorch share OpenMP's threads: both cores
  const auto kind = static_cast<eval::SearchOptions::Kind>(state.range(0));
  const auto& c = catalog(state.range(1));
  const auto start = std::chrono::steady_clock::now();
  const eval::InnerProductIndex index(c.gallery, eval::SearchOptions{kind});
  const double build_s = seconds_since(start);
  faiss::VectorIOWriter bytes;
  faiss::write_index(&index.faiss_index(), &bytes);

  eval::SearchResult result;
  const auto batched = std::chrono::steady_clock::now();
  for (auto _ : state) result = index.search(c.queries, kK);
  const double batched_s = seconds_since(batched);
  const auto one = std::chrono::steady_clock::now();
  constexpr std::int64_t kSingles = 100;
  for (std::int64_t q = 0; q < kSingles; ++q) benchmark::DoNotOptimize(index.search(c.queries.narrow(0, q, 1), kK));
  state.counters["build_s"] = build_s;
  state.counters["index_MB"] = static_cast<double>(bytes.data.size()) / 1e6;
  state.counters["batched_ms_per_q"] = batched_s * 1e3 / static_cast<double>(state.iterations() * kQueries);
  state.counters["single_q_ms"] = seconds_since(one) * 1e3 / kSingles;
  state.counters["recall@10"] = eval::recall_at_k(result, c.exact);
  state.SetLabel(std::string(eval::search_kind_name(kind)));
}

}  // namespace

// HNSW stops at 100k: its graph over 100k entries took 5 minutes to build here (M 32,
// efConstruction 200), so a million would take about an hour.
BENCHMARK(search)
    ->ArgNames({"kind", "products"})
    ->Args({0, 10'000})->Args({1, 10'000})->Args({2, 10'000})
    ->Args({0, 100'000})->Args({1, 100'000})->Args({2, 100'000})
    ->Args({0, 1'000'000})->Args({2, 1'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()  // FAISS searches on both cores
    ->MinTime(2.0);

BENCHMARK_MAIN();
