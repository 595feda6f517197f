#pragma once
// Distributed passes must run the same networks on every rank (the losses' gathers are
// collectives), whatever each rank's shard holds.
#include <cstdint>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/dist/communicator.hpp>

namespace commercemm::train {

// Every rank must run the same networks, since the losses' gathers are collectives: a
// modality that this rank's shard lacks but another rank's has joins as absent rows
// (present = false), exactly as such rows sit in a single process's whole batch. Returns false
// when some rank's shard is empty (each of its records had a bad image): every rank then
// skips the pass together, as one process skips an empty batch.
inline bool agree_on_modalities(Batch& batch, std::int64_t pad_id, std::int64_t image_size) {
  auto* comm = dist::current();
  if (!comm) return batch.size() > 0;
  auto flags = torch::tensor({batch.has_text() ? 1 : 0, batch.has_images() ? 1 : 0, batch.size() == 0 ? 1 : 0},
                             torch::kInt);
  comm->all_reduce_max(flags);
  if (flags[2].item<int>()) return false;
  const auto b = batch.size();
  const auto device = (batch.has_text() ? batch.text_ids : batch.images).device();
  const auto on = torch::TensorOptions().device(device);
  if (flags[0].item<int>() && !batch.has_text()) {
    batch.text_ids = torch::full({b, 1}, pad_id, on.dtype(torch::kLong));
    batch.text_mask = torch::zeros({b, 1}, on.dtype(torch::kLong));
    batch.text_present = torch::zeros({b}, on.dtype(torch::kBool));
  }
  if (flags[1].item<int>() && !batch.has_images()) {
    batch.images = torch::zeros({b, 3, image_size, image_size}, on.dtype(torch::kFloat));
    batch.image_present = torch::zeros({b}, on.dtype(torch::kBool));
  }
  return true;
}

}  // namespace commercemm::train
