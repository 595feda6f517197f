#pragma once
// Where training runs (train.device) and how a batch gets there.
#include <string>

#include <torch/cuda.h>
#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/dist/environment.hpp>

namespace commercemm::train {

/// "cpu", "cuda" (cuda:LOCAL_RANK under torchrun, else cuda:0) or "cuda:N".
inline torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available())
    throw Error(Location{"", 0, "train.device"},
                "\"" + name + "\" asked for, but this LibTorch has no CUDA or no GPU is visible (the README says "
                "how to build against a CUDA LibTorch)");
  if (name == "cuda") return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(dist::environment().local_rank));
  return torch::Device(name);
}

/// The batch's tensors on `device` (sample_index stays on the CPU: random draws are made there).
inline Batch to_device(Batch batch, const torch::Device& device) {
  for (auto* t : {&batch.text_ids, &batch.text_mask, &batch.images, &batch.product_ids, &batch.text_present,
                  &batch.image_present})
    if (t->defined() && t->device() != device) *t = t->to(device, /*non_blocking=*/true);
  return batch;
}

}  // namespace commercemm::train
