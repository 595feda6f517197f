#pragma once
// Nearest-neighbour search by inner product (cosine on normalised embeddings) for the
// retrieval tasks. Small galleries use exact search; large catalogues can use FAISS's HNSW
// graph (a little recall for speed) or IVF-PQ (more recall for speed and a 16x smaller index).
// brute_force_search is the matmul + topk reference all are tested against; an index is saved
// and loaded as FAISS's own file, to serve it. FAISS itself is included by impl/search.ipp only.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/core/linkage.hpp>

namespace faiss {
struct Index;
}

namespace commercemm::eval {

struct SearchOptions {
  /// exact: faiss::IndexFlatIP, every gallery entry scored. hnsw: faiss::IndexHNSWFlat, a graph
  /// over the full vectors. ivf_pq: faiss::IndexIVFPQ, vectors compressed to pq_bytes and
  /// bucketed into ivf_lists cells, of which nprobe are scanned per query (trained on the gallery).
  enum class Kind { exact, hnsw, ivf_pq };
  Kind kind = Kind::exact;
  int hnsw_m = 32;            ///< graph neighbours per node (HNSW's M)
  int ef_construction = 200;  ///< candidate list size while building
  int ef_search = 128;        ///< candidate list size while searching (FAISS uses max(ef_search, k))
  int ivf_lists = 0;          ///< IVF cells; 0: sqrt(G), at most G / 39 (FAISS's k-means minimum)
  int pq_bytes = 0;           ///< bytes per stored vector (8-bit sub-quantizers); 0: D / 4, a 16x compression
  int nprobe = 32;            ///< cells scanned per query
};

/// The names eval.search takes.
inline constexpr std::pair<std::string_view, SearchOptions::Kind> search_kinds[] = {
    {"exact", SearchOptions::Kind::exact}, {"hnsw", SearchOptions::Kind::hnsw}, {"ivf_pq", SearchOptions::Kind::ivf_pq}};

/// "exact", "hnsw" or "ivf_pq"; anything else is nullopt, for the caller to report with its own location.
inline std::optional<SearchOptions::Kind> parse_search_kind(std::string_view name) {
  for (const auto& [n, kind] : search_kinds)
    if (n == name) return kind;
  return std::nullopt;
}

inline std::string_view search_kind_name(SearchOptions::Kind kind) {
  for (const auto& [n, k] : search_kinds)
    if (k == kind) return n;
  return "?";
}

/// Top-k results, best first, on the CPU; equal scores in ascending gallery order. An index of -1
/// marks a slot the search could not fill (possible with HNSW); its score is then meaningless.
/// Which of several entries tied at the k-th score make the cut is up to the search.
struct SearchResult {
  torch::Tensor indices;  ///< [Q, k] int64 rows of the gallery
  torch::Tensor scores;   ///< [Q, k] float32 inner products
};

namespace detail {

/// [N, D] contiguous float32 on the CPU, the layout FAISS reads; `field` names the argument in errors.
inline torch::Tensor as_search_matrix(const torch::Tensor& x, const char* field) {
  if (!x.defined() || x.dim() != 2) throw Error(Location{"", 0, field}, "must be a [N, D] tensor");
  if (!at::isFloatingType(x.scalar_type())) {
    throw Error(Location{"", 0, field}, std::string("must be floating point, got ") + c10::toString(x.scalar_type()));
  }
  return x.detach().to(torch::kCPU, torch::kFloat).contiguous();
}

inline void check_gallery(const torch::Tensor& gallery) {
  if (gallery.size(0) == 0) throw Error(Location{"", 0, "gallery"}, "is empty; nothing to search");
  if (gallery.size(1) == 0) throw Error(Location{"", 0, "gallery"}, "has dimension 0");
}

inline void check_queries(const torch::Tensor& queries, std::int64_t dimension) {
  if (queries.size(1) != dimension) {
    throw Error(Location{"", 0, "queries"}, "have dimension " + std::to_string(queries.size(1)) +
                                                " but the gallery has dimension " + std::to_string(dimension));
  }
}

/// k clamped to the gallery size; k < 1 is an error rather than an empty result nobody asked for.
inline std::int64_t clamp_k(std::int64_t k, std::int64_t gallery_size) {
  if (k < 1) throw Error(Location{"", 0, "k"}, "must be at least 1, got " + std::to_string(k));
  return std::min(k, gallery_size);
}

/// Puts equal scores in ascending gallery order within each row. FAISS's flat index returns a
/// run of tied scores in descending index order, HNSW in graph-visit order, torch::topk in an
/// unspecified one; ties
/// are common (duplicate images, the untrained baseline), and without this the rank of the first
/// relevant entry, and so Recall@1 and MRR, would depend on which search ran.
inline void order_ties(SearchResult& r) {
  if (r.indices.numel() == 0) return;
  // Sort by index, then stable-sort by score (descending): equal scores keep ascending index.
  // Unfilled (-1) slots carry FAISS's lowest score and stay at the end.
  const auto by_index = r.indices.argsort(/*dim=*/std::int64_t{1});
  auto indices = r.indices.gather(1, by_index);
  auto scores = r.scores.gather(1, by_index);
  const auto by_score = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  r.indices = indices.gather(1, by_score);
  r.scores = scores.gather(1, by_score);
}

}  // namespace detail

/// An inner-product index over a fixed gallery. Move-only (it owns the FAISS index);
/// search() is const and safe to call from several threads at once.
class InnerProductIndex {
 public:
  /// `gallery` [G, D], any floating dtype and device: copied to float32 on the CPU.
  /// An empty gallery, or bad options, throws Error.
  COMMERCEMM_DECL explicit InnerProductIndex(const torch::Tensor& gallery, const SearchOptions& options = {});
  COMMERCEMM_DECL ~InnerProductIndex();
  COMMERCEMM_DECL InnerProductIndex(InnerProductIndex&&) noexcept;
  COMMERCEMM_DECL InnerProductIndex& operator=(InnerProductIndex&&) noexcept;

  /// Writes the index as FAISS's own file (faiss::read_index and load() read it back), atomically.
  COMMERCEMM_DECL void save(const std::filesystem::path& path) const;

  /// An index save() (or FAISS with inner-product metric) wrote. A damaged file, or one of
  /// another metric, is an Error naming the file.
  COMMERCEMM_DECL static InnerProductIndex load(const std::filesystem::path& path);

  /// `queries` [Q, D] (any floating dtype/device) -> the top min(k, G) gallery rows per query,
  /// best first. A dimension mismatch or k < 1 throws Error.
  COMMERCEMM_DECL SearchResult search(const torch::Tensor& queries, std::int64_t k) const;

  /// G, the number of gallery entries.
  std::int64_t size() const { return size_; }
  /// D, the embedding width.
  std::int64_t dimension() const { return dimension_; }
  /// The FAISS index itself, for what this class does not wrap (its type, its parameters).
  const faiss::Index& faiss_index() const { return *index_; }

 private:
  COMMERCEMM_DECL explicit InnerProductIndex(std::unique_ptr<faiss::Index> index);

  std::unique_ptr<faiss::Index> index_;  // complete only where FAISS's headers are (impl/search.ipp)
  std::int64_t size_ = 0;
  std::int64_t dimension_ = 0;
};

/// The reference: scores = queries · galleryᵀ in float32 on the CPU, then topk (sorted, largest
/// first). Same shapes, checks, clamping of k and tie order as InnerProductIndex::search. FAISS
/// sums in a different order, so scores agree to ~2e-7, not bit for bit: rows whose scores are
/// that close (deep in a long list, not in a top 10) can come out swapped between the two.
inline SearchResult brute_force_search(const torch::Tensor& queries, const torch::Tensor& gallery, std::int64_t k) {
  const auto g = detail::as_search_matrix(gallery, "gallery");
  detail::check_gallery(g);
  const auto q = detail::as_search_matrix(queries, "queries");
  detail::check_queries(q, g.size(1));
  k = detail::clamp_k(k, g.size(0));
  auto [scores, indices] = q.matmul(g.t()).topk(k, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
  SearchResult out{indices, scores};
  detail::order_ties(out);
  return out;
}

/// Recall@k of an approximate search against the exact one (FAISS's measure of an index): the
/// share of `exact`'s top k rows, per query, that `approx` also returns anywhere in its list.
/// Both are [Q, k'] results of the same queries; k is `exact`'s width. -1 slots never count.
inline double recall_at_k(const SearchResult& approx, const SearchResult& exact) {
  if (approx.indices.size(0) != exact.indices.size(0))
    throw Error(Location{"", 0, "approx"}, "has " + std::to_string(approx.indices.size(0)) + " queries, exact has " +
                                               std::to_string(exact.indices.size(0)));
  const auto a = approx.indices.to(torch::kCPU, torch::kLong).contiguous();
  const auto e = exact.indices.to(torch::kCPU, torch::kLong).contiguous();
  const auto queries = e.size(0), k = e.size(1), width = a.size(1);
  if (queries * k == 0) return 0.0;
  const auto* ap = a.data_ptr<std::int64_t>();
  const auto* ep = e.data_ptr<std::int64_t>();
  std::int64_t found = 0;
  for (std::int64_t q = 0; q < queries; ++q)
    for (std::int64_t j = 0; j < k; ++j)
      if (ep[q * k + j] >= 0) found += std::count(ap + q * width, ap + (q + 1) * width, ep[q * k + j]);
  return static_cast<double>(found) / static_cast<double>(queries * k);
}

/// For each query q, the 1-based rank of the first result whose gallery label equals
/// query_labels[q], or 0 when none of its k results matches (-1 slots never match).
/// `query_labels` [Q] and `gallery_labels` [G] are integer labels; the result rows must index
/// into gallery_labels. Feed the output to retrieval_metrics().
inline std::vector<std::int64_t> first_relevant_ranks(const SearchResult& result, const torch::Tensor& query_labels,
                                                      const torch::Tensor& gallery_labels) {
  if (!result.indices.defined() || result.indices.dim() != 2) {
    throw Error(Location{"", 0, "result.indices"}, "must be a [Q, k] tensor");
  }
  auto check_labels = [](const torch::Tensor& t, const char* field) {
    if (!t.defined() || t.dim() != 1 || !at::isIntegralType(t.scalar_type(), /*includeBool=*/false)) {
      throw Error(Location{"", 0, field}, "must be a 1-D tensor of integer labels");
    }
  };
  check_labels(query_labels, "query_labels");
  check_labels(gallery_labels, "gallery_labels");
  const auto queries = result.indices.size(0);
  const auto k = result.indices.size(1);
  if (query_labels.size(0) != queries) {
    throw Error(Location{"", 0, "query_labels"}, "has " + std::to_string(query_labels.size(0)) +
                                                     " labels for " + std::to_string(queries) + " queries");
  }
  const auto indices = result.indices.to(torch::kCPU, torch::kLong).contiguous();
  const auto qlab = query_labels.to(torch::kCPU, torch::kLong).contiguous();
  const auto glab = gallery_labels.to(torch::kCPU, torch::kLong).contiguous();
  const auto gallery_size = glab.size(0);
  const auto* idx = indices.data_ptr<std::int64_t>();
  const auto* ql = qlab.data_ptr<std::int64_t>();
  const auto* gl = glab.data_ptr<std::int64_t>();

  std::vector<std::int64_t> ranks(static_cast<std::size_t>(queries), 0);
  for (std::int64_t q = 0; q < queries; ++q) {
    for (std::int64_t j = 0; j < k; ++j) {
      const auto g = idx[q * k + j];
      if (g < 0) continue;
      if (g >= gallery_size) {
        throw Error(Location{"", 0, "result.indices"}, "gallery row " + std::to_string(g) +
                                                           " is out of range for " + std::to_string(gallery_size) +
                                                           " gallery labels");
      }
      if (gl[g] == ql[q]) {
        ranks[static_cast<std::size_t>(q)] = j + 1;
        break;
      }
    }
  }
  return ranks;
}

}  // namespace commercemm::eval

#ifndef COMMERCEMM_SEPARATE_COMPILATION
#include <commercemm/eval/impl/search.ipp>
#endif
