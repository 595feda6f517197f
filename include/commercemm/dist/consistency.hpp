#pragma once
// What makes the ranks of a job start alike: the same recipe and config everywhere (checked),
// and rank 0's initial parameters and buffers everywhere (copied).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/core/random.hpp>
#include <commercemm/dist/communicator.hpp>

namespace commercemm::dist {

/// The fingerprint check_same compares: FNV-1a of the text.
inline std::uint64_t fingerprint(const std::string& text) { return random::fnv1a(text); }

/// Every rank's `fingerprint` of `what` must equal rank 0's; otherwise every rank throws,
/// naming the ranks that differ (the alternative is a silent divergence or a hang).
inline void check_same(Communicator& comm, const std::string& what, std::uint64_t fingerprint) {
  const auto all = comm.all_gather(torch::tensor({static_cast<std::int64_t>(fingerprint)}, torch::kLong));
  const auto reference = all[0].item<std::int64_t>();
  std::string differ;
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r].item<std::int64_t>() != reference) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    throw Error(Location{"dist", 0, ""}, "rank " + differ + " started with another " + what +
                                             " than rank 0 (fingerprints differ): start every rank with the same "
                                             "binary, config file and --set flags");
}

/// Copies rank 0's parameters and buffers of `module` to every rank (one broadcast a dtype).
inline void broadcast_from_rank0(Communicator& comm, torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors = module.parameters();
  for (auto& b : module.buffers()) tensors.push_back(b);
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_type;
  for (auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<torch::Tensor> flat;
    for (auto& t : group) flat.push_back(t.detach().reshape({-1}));
    auto all = torch::cat(flat);
    comm.broadcast(all, 0);
    std::int64_t offset = 0;
    for (auto& t : group) {
      t.detach().copy_(all.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace commercemm::dist
