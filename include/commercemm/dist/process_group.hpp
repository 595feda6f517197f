#pragma once
// dist::ProcessGroupCommunicator: dist::Communicator on one of PyTorch's c10d process groups
// (c10d::ProcessGroupGloo on CPU, c10d::ProcessGroupNCCL on CUDA). A failed or timed-out
// collective becomes a commercemm::Error that names the rank that was lost (dist::Liveness).
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/types.h>

#include <commercemm/core/error.hpp>
#include <commercemm/dist/communicator.hpp>

namespace commercemm::dist {

/// Turns a collective's failure into the message the user sees.
using Diagnose = std::function<std::string(const std::string& what)>;

template <class Backend>
class ProcessGroupCommunicator final : public Communicator {
 public:
  /// `staging`: where tensors must be for the backend (CPU for Gloo, the GPU for NCCL).
  ProcessGroupCommunicator(c10::intrusive_ptr<Backend> group, torch::Device staging, Diagnose diagnose)
      : group_(std::move(group)), staging_(staging), diagnose_(std::move(diagnose)) {}

  int rank() const override { return group_->getRank(); }
  int size() const override { return group_->getSize(); }

  void all_reduce_sum(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::SUM); }
  void all_reduce_max(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::MAX); }

  std::unique_ptr<Pending> all_reduce_sum_async(torch::Tensor& t) override { return start_all_reduce(t, c10d::ReduceOp::SUM); }

  std::vector<torch::Tensor> all_gather(const torch::Tensor& t) override {
    std::vector<torch::Tensor> input{stage(t).contiguous()};
    std::vector<std::vector<torch::Tensor>> output(1);
    for (int r = 0; r < size(); ++r) output[0].push_back(torch::empty_like(input[0]));
    finish(call([&] { return group_->allgather(output, input); }));
    for (auto& part : output[0]) part = part.to(t.device());
    return output[0];
  }

  void broadcast(torch::Tensor& t, int root) override {
    auto staged = stage(t);
    std::vector<torch::Tensor> tensors{staged};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    finish(call([&] { return group_->broadcast(tensors, options); }));
    write_back(t, staged);
  }

  void barrier() override { finish(call([&] { return group_->barrier(); })); }

 private:
  class Flight final : public Pending {
   public:
    Flight(ProcessGroupCommunicator& owner, c10::intrusive_ptr<c10d::Work> work, torch::Tensor target, torch::Tensor staged)
        : owner_(owner), work_(std::move(work)), target_(std::move(target)), staged_(std::move(staged)) {}
    void wait() override {
      owner_.finish(work_);
      write_back(target_, staged_);
    }

   private:
    ProcessGroupCommunicator& owner_;
    c10::intrusive_ptr<c10d::Work> work_;
    torch::Tensor target_, staged_;
  };

  std::unique_ptr<Pending> start_all_reduce(torch::Tensor& t, c10d::ReduceOp op) {
    auto staged = stage(t);
    std::vector<torch::Tensor> tensors{staged};
    c10d::AllreduceOptions options;
    options.reduceOp = op;
    return std::make_unique<Flight>(*this, call([&] { return group_->allreduce(tensors, options); }), t, staged);
  }
  void reduce(torch::Tensor& t, c10d::ReduceOp op) { start_all_reduce(t, op)->wait(); }

  // The backend's copy of `t`: `t` itself when it is already there and contiguous.
  torch::Tensor stage(const torch::Tensor& t) const {
    return t.device() == staging_ && t.is_contiguous() ? t : t.to(staging_).contiguous();
  }
  static void write_back(torch::Tensor& t, const torch::Tensor& staged) {
    if (!t.is_same(staged)) t.copy_(staged);
  }

  template <class F> c10::intrusive_ptr<c10d::Work> call(F&& start) {
    try {
      return start();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(Location{"dist", 0, ""}, diagnose_(e.what()));
    }
  }
  void finish(const c10::intrusive_ptr<c10d::Work>& work) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw Error(Location{"dist", 0, ""}, diagnose_(e.what()));
    }
  }

  c10::intrusive_ptr<Backend> group_;
  torch::Device staging_;
  Diagnose diagnose_;
};

}  // namespace commercemm::dist
