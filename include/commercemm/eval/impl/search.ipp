#pragma once
// Definitions of eval/search.hpp's FAISS indexes (see core/linkage.hpp): the one place that
// includes FAISS.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <torch/types.h>

#include <commercemm/core/atomic_file.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/eval/search.hpp>

namespace commercemm::eval {
namespace detail {

// Spelled through a member because the typedef moved (faiss::Index::idx_t -> faiss::idx_t) across versions.
using FaissIdx = decltype(faiss::Index::ntotal);
static_assert(std::is_same_v<FaissIdx, std::int64_t>, "FAISS labels must be int64 to share torch::kLong storage");

COMMERCEMM_DECL std::unique_ptr<faiss::Index> make_hnsw(int d, const SearchOptions& options) {
  if (options.hnsw_m < 2) throw Error(Location{"", 0, "hnsw_m"}, "must be at least 2, got " + std::to_string(options.hnsw_m));
  if (options.ef_construction < 1 || options.ef_search < 1) {
    throw Error(Location{"", 0, "ef_search"}, "ef_construction and ef_search must be at least 1");
  }
  auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(d, options.hnsw_m, faiss::METRIC_INNER_PRODUCT);
  hnsw->hnsw.efConstruction = options.ef_construction;  // read by add(), so set first
  hnsw->hnsw.efSearch = options.ef_search;
  return hnsw;
}

/// IVF-PQ trained on `data` [G, D]: k-means cells on a sample of 64 points per cell, then
/// product quantizers of 256 centroids on the residuals of 39 points per centroid (FAISS asks
/// for 39 to 256: the small samples keep a million-entry build to about a minute here).
COMMERCEMM_DECL std::unique_ptr<faiss::Index> make_ivf_pq(const torch::Tensor& data, const SearchOptions& options) {
  const auto g = data.size(0);
  const auto d = static_cast<int>(data.size(1));
  constexpr std::int64_t pq_centroids = 256;  // 8-bit codes
  if (g < pq_centroids)
    throw Error(Location{"", 0, "gallery"}, "has " + std::to_string(g) + " entries; IVF-PQ trains codebooks of " +
                                                std::to_string(pq_centroids) + " centroids on it: use exact search");
  if (options.ivf_lists < 0 || options.pq_bytes < 0 || options.nprobe < 1)
    throw Error(Location{"", 0, "nprobe"}, "ivf_lists and pq_bytes must not be negative, nprobe at least 1");
  const auto lists = options.ivf_lists > 0
                         ? std::int64_t{options.ivf_lists}
                         : std::clamp<std::int64_t>(std::llround(std::sqrt(static_cast<double>(g))), 1, std::max<std::int64_t>(1, g / 39));
  if (lists > g) throw Error(Location{"", 0, "ivf_lists"}, std::to_string(lists) + " cells for " + std::to_string(g) + " entries");
  int bytes = options.pq_bytes;
  if (bytes == 0) {  // the largest divisor of D up to D / 4
    bytes = std::max(1, d / 4);
    while (d % bytes != 0) --bytes;
  }
  if (d % bytes != 0)
    throw Error(Location{"", 0, "pq_bytes"}, std::to_string(bytes) + " does not divide the dimension " + std::to_string(d));
  auto quantizer = std::make_unique<faiss::IndexFlatIP>(d);
  auto index = std::make_unique<faiss::IndexIVFPQ>(quantizer.get(), d, static_cast<std::size_t>(lists),
                                                   static_cast<std::size_t>(bytes), 8, faiss::METRIC_INNER_PRODUCT);
  index->own_fields = true;
  quantizer.release();
  index->nprobe = static_cast<std::size_t>(std::min<std::int64_t>(options.nprobe, lists));
  index->cp.max_points_per_centroid = 64;
  index->pq.cp.max_points_per_centroid = 39;  // 9,984 points per codebook, FAISS's minimum without a warning
  // Evenly spaced rows, so the sample spans the whole gallery (not its head) and is the same
  // on every build.
  const auto sample = std::min<std::int64_t>(g, std::max<std::int64_t>(lists * 64, pq_centroids * 64));
  const auto rows = sample == g ? data : data.index_select(0, torch::div(torch::arange(sample, torch::kLong) * g, sample, "floor")).contiguous();
  index->train(static_cast<FaissIdx>(sample), rows.data_ptr<float>());
  return index;
}

}  // namespace detail

COMMERCEMM_DECL InnerProductIndex::InnerProductIndex(const torch::Tensor& gallery, const SearchOptions& options) {
  const auto data = detail::as_search_matrix(gallery, "gallery");
  detail::check_gallery(data);
  size_ = data.size(0);
  dimension_ = data.size(1);
  const auto d = static_cast<int>(dimension_);
  try {
    switch (options.kind) {
      case SearchOptions::Kind::exact: index_ = std::make_unique<faiss::IndexFlatIP>(d); break;
      case SearchOptions::Kind::hnsw: index_ = detail::make_hnsw(d, options); break;
      case SearchOptions::Kind::ivf_pq: index_ = detail::make_ivf_pq(data, options); break;
    }
    index_->add(static_cast<detail::FaissIdx>(size_), data.data_ptr<float>());
  } catch (const faiss::FaissException& e) {  // FAISS's own checks, should ours miss one
    throw Error(Location{"", 0, "gallery"}, std::string("FAISS refused it: ") + e.what());
  }
}

COMMERCEMM_DECL InnerProductIndex::InnerProductIndex(std::unique_ptr<faiss::Index> index)
    : index_(std::move(index)), size_(index_->ntotal), dimension_(index_->d) {}
COMMERCEMM_DECL InnerProductIndex::~InnerProductIndex() = default;
COMMERCEMM_DECL InnerProductIndex::InnerProductIndex(InnerProductIndex&&) noexcept = default;
COMMERCEMM_DECL InnerProductIndex& InnerProductIndex::operator=(InnerProductIndex&&) noexcept = default;

COMMERCEMM_DECL void InnerProductIndex::save(const std::filesystem::path& path) const {
  write_atomically(path, [&](const std::filesystem::path& temporary) {
    try {
      faiss::write_index(index_.get(), temporary.c_str());
    } catch (const faiss::FaissException& e) {
      throw Error(Location{path.string(), 0, ""}, std::string("cannot write the index: ") + e.what());
    }
  });
}

COMMERCEMM_DECL InnerProductIndex InnerProductIndex::load(const std::filesystem::path& path) {
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::read_index(path.c_str()));
  } catch (const faiss::FaissException& e) {
    throw Error(Location{path.string(), 0, ""}, std::string("not a FAISS index this FAISS can read: ") + e.what());
  }
  if (index->metric_type != faiss::METRIC_INNER_PRODUCT)
    throw Error(Location{path.string(), 0, "metric"}, "the index ranks by L2 distance, not by inner product");
  if (index->ntotal < 1) throw Error(Location{path.string(), 0, ""}, "the index is empty; nothing to search");
  return InnerProductIndex(std::move(index));
}

COMMERCEMM_DECL SearchResult InnerProductIndex::search(const torch::Tensor& queries, std::int64_t k) const {
  const auto q = detail::as_search_matrix(queries, "queries");
  detail::check_queries(q, dimension_);
  k = detail::clamp_k(k, size_);
  SearchResult out{torch::empty({q.size(0), k}, torch::kLong), torch::empty({q.size(0), k}, torch::kFloat)};
  if (q.size(0) == 0) return out;
  // FAISS writes -1 into slots it cannot fill; they are passed through unchanged.
  index_->search(static_cast<detail::FaissIdx>(q.size(0)), q.data_ptr<float>(), static_cast<detail::FaissIdx>(k),
                 out.scores.data_ptr<float>(), out.indices.data_ptr<std::int64_t>());
  detail::order_ties(out);
  return out;
}

}  // namespace commercemm::eval
