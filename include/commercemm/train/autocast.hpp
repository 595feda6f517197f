#pragma once
// Mixed precision on CPU: "bf16" runs matrix products in bfloat16 under autocast (about 2x on
// CPUs with AVX-512 bf16), parameters and optimizer state stay fp32.
#include <algorithm>
#include <dlfcn.h>
#include <string>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <commercemm/core/error.hpp>

namespace commercemm::train {

/// Sets torch's intra-op threads: `threads` if positive, else by precision (see
/// TrainConfig::threads): 1 for fp32, every core for bf16. `local_processes` share the cores
/// (ranks on one machine): each gets its part, and so does OpenBLAS's own pool (which would
/// otherwise start a thread per core in every process and oversubscribe them).
inline void apply_threads(std::int64_t threads, const std::string& precision, int local_processes = 1) {
  const auto cores = static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  const auto share = std::max<std::int64_t>(1, cores / std::max(1, local_processes));
  if (threads <= 0) threads = precision == "bf16" ? share : 1;
  at::set_num_threads(static_cast<int>(threads));
  if (local_processes > 1) {
    using SetThreads = void (*)(int);
    if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
      set(static_cast<int>(share));
  }
}

/// bf16 autocast for a scope, on the CPU (default) or on CUDA, restoring what was there.
class AutocastGuard {
 public:
  explicit AutocastGuard(const std::string& precision, c10::DeviceType device = c10::DeviceType::CPU)
      : cuda_(device == c10::DeviceType::CUDA) {
    if (precision == "fp32") return;
    if (precision != "bf16") throw Error(Location{"", 0, "train.precision"}, "must be fp32 or bf16, got " + precision);
    enabled_ = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const auto type = cuda_ ? at::kCUDA : at::kCPU;
    previous_ = at::autocast::is_autocast_enabled(type);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
#else
    if (cuda_) {
      previous_ = at::autocast::is_enabled();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      previous_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
  }
  ~AutocastGuard() {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, previous_);
#else
    if (cuda_) at::autocast::set_enabled(previous_);
    else at::autocast::set_cpu_enabled(previous_);
#endif
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cuda_ = false, enabled_ = false, previous_ = false;
};

}  // namespace commercemm::train
