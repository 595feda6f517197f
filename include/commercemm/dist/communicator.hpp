#pragma once
// dist::Communicator: the collectives data-parallel training uses, over one group of ranks.
//
// The interface is all the library's training code sees; the implementation on PyTorch's c10d
// process groups (Gloo on CPU, NCCL on CUDA) lives in dist/process_group.hpp, which only the
// code that starts a run includes (its headers are heavy). While a run is distributed,
// dist::current() is its communicator; with no process group (WORLD_SIZE unset or 1) it is
// null and every helper below is the single-process computation, with no overhead.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <torch/types.h>

namespace commercemm::dist {

/// An asynchronous collective in flight.
class Pending {
 public:
  virtual ~Pending() = default;
  /// Blocks until done; throws commercemm::Error naming the lost rank on failure.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// In place: every rank's `t` becomes the element-wise sum (max) over the ranks. Blocking.
  virtual void all_reduce_sum(torch::Tensor& t) = 0;
  virtual void all_reduce_max(torch::Tensor& t) = 0;
  /// In place, asynchronous: `t` holds the sum once the returned handle's wait() returns.
  virtual std::unique_ptr<Pending> all_reduce_sum_async(torch::Tensor& t) = 0;
  /// Every rank's `t` in rank order; `t` must have the same shape and dtype on every rank.
  virtual std::vector<torch::Tensor> all_gather(const torch::Tensor& t) = 0;
  /// In place: every rank's `t` becomes rank `root`'s.
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
};

/// The communicators of the running distributed job: `collectives` for the forward pass
/// (gathers, counts, logged losses), `gradients` for the gradient buckets. Two process
/// groups, so the order of one kind of collective never has to agree with the other's.
struct Active {
  Communicator* collectives = nullptr;
  Communicator* gradients = nullptr;
  std::function<void(std::int64_t)> note_step;  ///< tells the liveness monitor the step
};

inline Active& active() {
  static Active a;
  return a;
}

/// The running job's communicator, or null in a single process.
inline Communicator* current() { return active().collectives; }
/// Publishes the step this rank is at (for the diagnosis of a hung rank); no-op alone.
inline void note_step(std::int64_t step) {
  if (active().note_step) active().note_step(step);
}
inline int rank() { return current() ? current()->rank() : 0; }
inline int world_size() { return current() ? current()->size() : 1; }

/// Suspends the distributed job for a scope: code in it computes as a single process
/// (a reference computation in a test, rank 0 scoring a model alone).
class LocalScope {
 public:
  LocalScope() : saved_(active()) { active() = {}; }
  ~LocalScope() { active() = saved_; }
  LocalScope(const LocalScope&) = delete;
  LocalScope& operator=(const LocalScope&) = delete;

 private:
  Active saved_;
};

/// Sum of a double over the ranks (itself in a single process).
inline double sum_over_ranks(double value) {
  auto* comm = current();
  if (!comm) return value;
  auto t = torch::tensor({value}, torch::kDouble);
  comm->all_reduce_sum(t);
  return t.item<double>();
}

/// Whether `flag` is true on any rank.
inline bool any_rank(bool flag) {
  auto* comm = current();
  if (!comm) return flag;
  auto t = torch::tensor({flag ? 1 : 0}, torch::kInt);
  comm->all_reduce_max(t);
  return t.item<int>() > 0;
}

/// A mean over the rows of the whole global batch, computed from this rank's rows:
/// `local_sum` [] (with gradient) over the global `local_count` summed over the ranks, times
/// the world size. The ranks' values average (as the gradient all-reduce averages) to the
/// global mean, so every loss and gradient equals the single-process one whatever the shards'
/// sizes. In a single process: local_sum / max(local_count, 1).
inline torch::Tensor global_mean(const torch::Tensor& local_sum, const torch::Tensor& local_count) {
  auto* comm = current();
  if (!comm) return local_sum / local_count.to(local_sum.scalar_type()).clamp_min(1.0);
  // The count stays a tensor (no host synchronisation on a GPU backend).
  auto total = local_count.detach().to(torch::kDouble).reshape({1}).clone();
  comm->all_reduce_sum(total);
  const auto scale =
      (static_cast<double>(comm->size()) / total.clamp_min(1.0)).reshape({}).to(local_sum.device(), local_sum.scalar_type());
  return local_sum * scale;
}
inline torch::Tensor global_mean(const torch::Tensor& local_sum, std::int64_t local_count) {
  return global_mean(local_sum, torch::tensor(static_cast<double>(local_count), torch::TensorOptions(torch::kDouble)));
}

}  // namespace commercemm::dist
