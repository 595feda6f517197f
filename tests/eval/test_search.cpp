#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/eval/metrics.hpp>
#include <commercemm/eval/search.hpp>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/index_io.h>

#include "support.hpp"

namespace eval = commercemm::eval;
namespace tt = boost::test_tools;

namespace {

torch::Tensor unit_rows(std::int64_t n, std::int64_t d) {
  auto x = torch::randn({n, d});
  return x / x.norm(2, 1, true);
}

// 500 x 64 gallery and 50 queries of random unit vectors, 20 gallery classes.
struct RandomData {
  torch::Tensor gallery, queries, gallery_labels, query_labels;
  RandomData() {
    torch::manual_seed(7);
    gallery = unit_rows(500, 64);
    queries = unit_rows(50, 64);
    gallery_labels = torch::arange(500, torch::kLong).remainder(20);
    query_labels = torch::randint(0, 20, {50}, torch::kLong);
  }
};

// Positions where FAISS and the reference name different gallery rows that are not a near-tie.
// FAISS and torch sum the dot products in different orders (scores differ by ~2e-7), so two rows
// whose scores are that close may swap; anything else is a real disagreement.
std::int64_t real_mismatches(const eval::SearchResult& faiss, const eval::SearchResult& ref, const torch::Tensor& queries,
                             const torch::Tensor& gallery) {
  const auto exact = queries.to(torch::kDouble).matmul(gallery.to(torch::kDouble).t());  // [Q, G]
  const auto faiss_true = exact.gather(1, faiss.indices);
  const auto ref_true = exact.gather(1, ref.indices);
  const auto differ = faiss.indices.ne(ref.indices);
  const auto not_a_tie = (faiss_true - ref_true).abs().gt(1e-5);
  return differ.logical_and(not_a_tie).sum().template item<std::int64_t>();
}

// A catalog with structure, as embeddings have: 100 clusters of 40 unit vectors in 64 dims,
// and queries that are noisy copies of 200 of its rows (another view of the same product).
struct ClusteredData {
  torch::Tensor gallery, queries, sources;
  ClusteredData() {
    torch::manual_seed(11);
    const auto centres = unit_rows(100, 64);
    gallery = centres.repeat_interleave(40, 0) + 0.25 * torch::randn({4000, 64}) / 8.0;
    gallery = gallery / gallery.norm(2, 1, true);
    sources = torch::randperm(4000, torch::kLong).narrow(0, 0, 200);
    queries = gallery.index_select(0, sources) + 0.1 * torch::randn({200, 64}) / 8.0;
    queries = queries / queries.norm(2, 1, true);
  }
};

std::int64_t mismatches(const eval::SearchResult& a, const eval::SearchResult& b) {
  return a.indices.ne(b.indices).sum().template item<std::int64_t>();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eval_search)

BOOST_AUTO_TEST_CASE(parse_kind) {
  BOOST_TEST((eval::parse_search_kind("exact") == eval::SearchOptions::Kind::exact));
  BOOST_TEST((eval::parse_search_kind("hnsw") == eval::SearchOptions::Kind::hnsw));
  BOOST_TEST((eval::parse_search_kind("ivf_pq") == eval::SearchOptions::Kind::ivf_pq));
  BOOST_TEST(!eval::parse_search_kind("HNSW").has_value());
  BOOST_TEST(!eval::parse_search_kind("").has_value());
  BOOST_TEST(eval::search_kind_name(eval::SearchOptions::Kind::hnsw) == "hnsw");
  BOOST_TEST(eval::search_kind_name(eval::SearchOptions::Kind::ivf_pq) == "ivf_pq");
}

BOOST_AUTO_TEST_CASE(brute_force_by_hand) {
  // Gallery rows e0, e1, (e0 + e1)/√2; query e0 scores them 1, 0, 0.7071.
  const double h = 1.0 / std::sqrt(2.0);
  auto gallery = torch::tensor({1.0, 0.0, 0.0, 1.0, h, h}).view({3, 2});
  auto query = torch::tensor({1.0, 0.0}).view({1, 2});
  const auto r = eval::brute_force_search(query, gallery, 2);
  BOOST_TEST(r.indices.sizes() == torch::IntArrayRef({1, 2}));
  BOOST_TEST(r.indices[0][0].template item<std::int64_t>() == 0);
  BOOST_TEST(r.indices[0][1].template item<std::int64_t>() == 2);
  BOOST_TEST(r.scores[0][1].template item<float>() == h, tt::tolerance(1e-6));

  eval::InnerProductIndex index(gallery);
  const auto f = index.search(query, 3);
  BOOST_TEST(f.indices.sizes() == torch::IntArrayRef({1, 3}));
  BOOST_TEST(f.indices[0][2].template item<std::int64_t>() == 1);
  BOOST_TEST(f.scores.scalar_type() == torch::kFloat);
  BOOST_TEST(f.indices.scalar_type() == torch::kLong);
}

BOOST_AUTO_TEST_CASE(exact_index_matches_brute_force) {
  RandomData data;
  eval::InnerProductIndex index(data.gallery);
  BOOST_TEST(index.size() == 500);
  BOOST_TEST(index.dimension() == 64);

  for (std::int64_t k : {std::int64_t{10}, std::int64_t{500}}) {
    BOOST_TEST_CONTEXT("k = " << k) {
      const auto faiss = index.search(data.queries, k);
      const auto ref = eval::brute_force_search(data.queries, data.gallery, k);
      BOOST_TEST(faiss.indices.sizes() == torch::IntArrayRef({50, k}));
      BOOST_TEST((faiss.scores - ref.scores).abs().max().template item<float>() <= 1e-5f);
      const auto faiss_ranks = eval::first_relevant_ranks(faiss, data.query_labels, data.gallery_labels);
      const auto ref_ranks = eval::first_relevant_ranks(ref, data.query_labels, data.gallery_labels);
      if (k == 10) {
        // Top-10 scores are far apart on this data: the same rows in the same order, exactly.
        BOOST_TEST(mismatches(faiss, ref) == 0);
        BOOST_TEST(faiss_ranks == ref_ranks, tt::per_element());
      } else {
        // The whole gallery ranked: the same order up to near-tie swaps (none at this seed with
        // Debian's BLAS, a few per 10^5 positions in general).
        BOOST_TEST_MESSAGE("k = G: " << mismatches(faiss, ref) << " near-tie swaps");
        BOOST_TEST(real_mismatches(faiss, ref, data.queries, data.gallery) == 0);
        for (std::size_t q = 0; q < faiss_ranks.size(); ++q) {
          if (faiss_ranks[q] == ref_ranks[q]) continue;
          const auto a = ref.scores[static_cast<std::int64_t>(q)][faiss_ranks[q] - 1].template item<float>();
          const auto b = ref.scores[static_cast<std::int64_t>(q)][ref_ranks[q] - 1].template item<float>();
          BOOST_TEST(a == b, tt::tolerance(1e-5f));
        }
        // Every query label occurs in the gallery, so with k = G nothing is missed.
        BOOST_TEST(eval::retrieval_metrics(faiss_ranks).recall_at_10 ==
                   eval::retrieval_metrics(ref_ranks).recall_at_10);
        BOOST_TEST(std::count(faiss_ranks.begin(), faiss_ranks.end(), 0) == 0);
      }
    }
  }

  // Any float dtype is accepted and converted: double input gives the same rows.
  const auto as_double = eval::InnerProductIndex(data.gallery.to(torch::kDouble)).search(data.queries.to(torch::kDouble), 10);
  BOOST_TEST(mismatches(as_double, index.search(data.queries, 10)) == 0);
}

BOOST_AUTO_TEST_CASE(hnsw_recall_against_exact) {
  RandomData data;
  eval::SearchOptions options;
  options.kind = eval::SearchOptions::Kind::hnsw;
  eval::InnerProductIndex hnsw(data.gallery, options);
  const auto approx = hnsw.search(data.queries, 10);
  const auto exact = eval::brute_force_search(data.queries, data.gallery, 10);
  BOOST_TEST(approx.indices.ge(0).all().template item<bool>());  // 500 entries: every slot filled

  const double recall = eval::recall_at_k(approx, exact);
  BOOST_TEST_MESSAGE("HNSW recall@10 against exact: " << recall);
  BOOST_TEST(recall >= 0.95);
  // Scores are inner products (FAISS undoes its internal negation), best first.
  BOOST_TEST((approx.scores.select(1, 0) - exact.scores.select(1, 0)).abs().max().template item<float>() <= 1e-5f);
}

BOOST_AUTO_TEST_CASE(ivf_pq_finds_what_exact_finds_in_a_16x_smaller_index) {
  ClusteredData data;
  eval::SearchOptions options;
  options.kind = eval::SearchOptions::Kind::ivf_pq;
  const eval::InnerProductIndex index(data.gallery, options);
  const auto& ivf = dynamic_cast<const faiss::IndexIVFPQ&>(index.faiss_index());
  BOOST_TEST(ivf.nlist == 63u);        // round(sqrt(4000)), under 4000 / 39 = 102
  BOOST_TEST(ivf.pq.M == 16u);         // 64 dims / 4: 16 bytes a vector against 256 in float32
  BOOST_TEST(ivf.nprobe == 32u);
  const auto approx = index.search(data.queries, 10);
  const auto exact = eval::brute_force_search(data.queries, data.gallery, 10);
  const double recall = eval::recall_at_k(approx, exact);
  BOOST_TEST_MESSAGE("IVF-PQ recall@10 against exact: " << recall);
  // Clusters of near-duplicates are PQ's hard case: their scores differ by less than its
  // quantization error, so which of them make the top 10 is partly a draw (0.47 measured).
  BOOST_TEST(recall >= 0.4);
  // The row each query was made from: exact search ranks it first; IVF-PQ keeps it in its top
  // 10 for nearly every query (185 of 200 measured; the rest lose it among its near-duplicates).
  BOOST_TEST(exact.indices.select(1, 0).equal(data.sources));
  const auto kept = approx.indices.eq(data.sources.unsqueeze(1)).any(1).sum().template item<std::int64_t>();
  BOOST_TEST_MESSAGE("IVF-PQ keeps the source row in its top 10 for " << kept << " of 200 queries");
  BOOST_TEST(kept >= 180);
}

BOOST_AUTO_TEST_CASE(ivf_pq_bad_options_are_errors) {
  ClusteredData data;
  eval::SearchOptions options;
  options.kind = eval::SearchOptions::Kind::ivf_pq;
  BOOST_TEST(error_of([&] { eval::InnerProductIndex(data.gallery.narrow(0, 0, 200), options); }) ==
             "gallery: has 200 entries; IVF-PQ trains codebooks of 256 centroids on it: use exact search");
  options.pq_bytes = 24;
  BOOST_TEST(error_of([&] { eval::InnerProductIndex(data.gallery, options); }) ==
             "pq_bytes: 24 does not divide the dimension 64");
  options.pq_bytes = 0, options.nprobe = 0;
  BOOST_TEST(error_of([&] { eval::InnerProductIndex(data.gallery, options); }) ==
             "nprobe: ivf_lists and pq_bytes must not be negative, nprobe at least 1");
}

BOOST_AUTO_TEST_CASE(a_saved_index_loads_and_answers_the_same) {
  ClusteredData data;
  TempDir dir;
  for (auto kind : {eval::SearchOptions::Kind::exact, eval::SearchOptions::Kind::hnsw, eval::SearchOptions::Kind::ivf_pq}) {
    BOOST_TEST_CONTEXT(eval::search_kind_name(kind)) {
      const eval::InnerProductIndex index(data.gallery, eval::SearchOptions{kind});
      const auto file = dir.path / (std::string(eval::search_kind_name(kind)) + ".faiss");
      index.save(file);
      const auto loaded = eval::InnerProductIndex::load(file);
      BOOST_TEST(loaded.size() == 4000);
      BOOST_TEST(loaded.dimension() == 64);
      const auto before = index.search(data.queries, 10), after = loaded.search(data.queries, 10);
      BOOST_TEST(after.indices.equal(before.indices));
      BOOST_TEST(after.scores.equal(before.scores));
    }
  }
  // A damaged file and one that ranks by L2 are errors naming the file.
  const auto good = dir.path / "exact.faiss", cut = dir.path / "cut.faiss", l2 = dir.path / "l2.faiss";
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(good) / 2);
  BOOST_TEST(error_of([&] { eval::InnerProductIndex::load(cut); }).rfind(cut.string() + ": not a FAISS index", 0) == 0);
  faiss::IndexFlatL2 by_distance(64);
  faiss::write_index(&by_distance, l2.c_str());
  BOOST_TEST(error_of([&] { eval::InnerProductIndex::load(l2); }) ==
             l2.string() + ": metric: the index ranks by L2 distance, not by inner product");
  BOOST_TEST(error_of([&] { eval::InnerProductIndex::load(dir.path / "none.faiss"); }).rfind((dir.path / "none.faiss").string(), 0) == 0);
}

BOOST_AUTO_TEST_CASE(ties_come_out_in_gallery_order) {
  // Rows 1, 3, 4 are e0 and rows 0, 2, 5 are e1: query e0 ties them at 1 and at 0. Left to
  // themselves FAISS's flat index gives 4 3 1 5 2 0, HNSW 1 3 4 0 2 5, topk 1 4 3 2 0 5.
  const auto e0 = torch::tensor({1.0f, 0.0f}), e1 = torch::tensor({0.0f, 1.0f});
  const auto gallery = torch::stack({e1, e0, e1, e0, e0, e1});
  const auto queries = e0.view({1, 2}).repeat({30, 1});  // >= 20 queries: FAISS's BLAS path too
  const auto expected = torch::tensor({1, 3, 4, 0, 2, 5}, torch::kLong).expand({30, 6});
  eval::SearchOptions hnsw;
  hnsw.kind = eval::SearchOptions::Kind::hnsw;
  BOOST_TEST(eval::InnerProductIndex(gallery).search(queries, 6).indices.equal(expected));
  BOOST_TEST(eval::InnerProductIndex(gallery).search(queries.narrow(0, 0, 1), 6).indices.equal(expected.narrow(0, 0, 1)));
  BOOST_TEST(eval::InnerProductIndex(gallery, hnsw).search(queries, 6).indices.equal(expected));
  BOOST_TEST(eval::brute_force_search(queries, gallery, 6).indices.equal(expected));
}

BOOST_AUTO_TEST_CASE(k_is_clamped_to_gallery) {
  torch::manual_seed(3);
  auto gallery = unit_rows(3, 8);
  auto queries = unit_rows(4, 8);
  for (auto kind : {eval::SearchOptions::Kind::exact, eval::SearchOptions::Kind::hnsw}) {
    eval::InnerProductIndex index(gallery, eval::SearchOptions{kind});
    const auto r = index.search(queries, 10);
    BOOST_TEST(r.indices.sizes() == torch::IntArrayRef({4, 3}));
    // Every query sees each of the 3 rows once: no -1 padding once k is clamped.
    BOOST_TEST((std::get<0>(r.indices.sort(1)) == torch::arange(3).expand({4, 3})).all().template item<bool>());
  }
  BOOST_TEST(eval::brute_force_search(queries, gallery, 10).indices.size(1) == 3);
  BOOST_TEST(eval::InnerProductIndex(gallery).search(queries.narrow(0, 0, 0), 5).indices.sizes() ==
             torch::IntArrayRef({0, 3}));
}

BOOST_AUTO_TEST_CASE(recall_at_k_by_hand) {
  // Exact top 2 per query: {4, 7} and {1, 2}. Query 0's list has 7 and 4 (2 of 2), query 1's
  // has 2 and an unfilled slot (1 of 2): 3 of 4.
  const eval::SearchResult exact{torch::tensor({4, 7, 1, 2}, torch::kLong).view({2, 2}), torch::zeros({2, 2})};
  const eval::SearchResult approx{torch::tensor({7, 4, 9, 2, -1, 5}, torch::kLong).view({2, 3}), torch::zeros({2, 3})};
  BOOST_TEST(eval::recall_at_k(approx, exact) == 0.75);
  BOOST_TEST(eval::recall_at_k(exact, exact) == 1.0);
  const eval::SearchResult first_only{approx.indices.narrow(0, 0, 1), approx.scores.narrow(0, 0, 1)};
  BOOST_TEST(error_of([&] { eval::recall_at_k(first_only, exact); }) == "approx: has 1 queries, exact has 2");
}

BOOST_AUTO_TEST_CASE(first_relevant_ranks_by_hand) {
  // Query 0 (label 5): rows 2 (7), -1 (unfilled), 0 (5) -> rank 3. Query 1 (label 9): no row has 9 -> 0.
  eval::SearchResult r{torch::tensor({2, -1, 0, 1, 0, 2}, torch::kLong).view({2, 3}), torch::zeros({2, 3})};
  const auto ranks = eval::first_relevant_ranks(r, torch::tensor({5, 9}, torch::kLong), torch::tensor({5, 6, 7}, torch::kLong));
  BOOST_TEST(ranks == (std::vector<std::int64_t>{3, 0}), tt::per_element());
  BOOST_CHECK_THROW(eval::first_relevant_ranks(r, torch::tensor({5}, torch::kLong), torch::tensor({5, 6, 7}, torch::kLong)),
                    commercemm::Error);
  BOOST_CHECK_THROW(eval::first_relevant_ranks(r, torch::tensor({6, 9}, torch::kLong), torch::tensor({5, 6}, torch::kLong)),
                    commercemm::Error);  // row 2 is not a gallery entry
}

BOOST_AUTO_TEST_CASE(bad_input_is_an_error) {
  const auto empty = torch::zeros({0, 64});
  BOOST_TEST(error_of([&] { eval::InnerProductIndex index(empty); }) == "gallery: is empty; nothing to search");
  BOOST_TEST(error_of([&] { eval::brute_force_search(torch::zeros({1, 64}), empty, 5); }) ==
             "gallery: is empty; nothing to search");

  torch::manual_seed(1);
  const auto gallery = unit_rows(10, 64);
  const auto wrong = unit_rows(2, 32);
  eval::InnerProductIndex index(gallery);
  const std::string mismatch = "queries: have dimension 32 but the gallery has dimension 64";
  BOOST_TEST(error_of([&] { index.search(wrong, 5); }) == mismatch);
  BOOST_TEST(error_of([&] { eval::brute_force_search(wrong, gallery, 5); }) == mismatch);
  BOOST_TEST(error_of([&] { index.search(gallery, 0); }) == "k: must be at least 1, got 0");
  BOOST_TEST(error_of([&] { eval::InnerProductIndex bad(torch::zeros({10})); }) == "gallery: must be a [N, D] tensor");
  BOOST_CHECK_THROW(eval::InnerProductIndex(torch::zeros({3, 4}, torch::kLong)), commercemm::Error);
}

BOOST_AUTO_TEST_SUITE_END()
