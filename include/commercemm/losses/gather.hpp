#pragma once
// Gather policies for contrastive losses: where the negatives come from.
//   gather::Local   this process's batch only (single process).
// A policy provides
//   torch::Tensor all(const torch::Tensor& x)   [B, ...] -> [B_total, ...], gradient flowing
//                                                back to this rank's rows;
//   std::int64_t offset(std::int64_t local_batch) index of this rank's row 0 in all(x).
#include <cstdint>

#include <torch/types.h>

namespace commercemm::gather {

struct Local {
  torch::Tensor all(const torch::Tensor& x) const { return x; }
  std::int64_t offset(std::int64_t /*local_batch*/) const { return 0; }
};

template <class G>
concept GatherPolicy = requires(const G g, const torch::Tensor& t) {
  { g.all(t) } -> std::convertible_to<torch::Tensor>;
  { g.offset(std::int64_t{}) } -> std::convertible_to<std::int64_t>;
};

}  // namespace commercemm::gather
