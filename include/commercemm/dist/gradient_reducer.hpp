#pragma once
// dist::GradientReducer: averages gradients over the ranks while the backward pass runs.
//
// As PyTorch's DistributedDataParallel does, parameters are grouped into buckets of about
// `bucket_bytes` in reverse registration order (roughly the order the backward produces their
// gradients). A hook on each parameter copies its gradient into its bucket; a bucket whose
// parameters are all in starts an asynchronous all-reduce at once, so communication overlaps
// the rest of the backward. Buckets start strictly in order, so every rank issues the same
// collectives in the same order whatever its timing.
//
// Which parameters a pass uses is learned from the previous backward of the same pass
// (pass A never touches the retrieval temperatures, pass B never the MLM head). A parameter
// used against that expectation is still reduced exactly, in a correction round after the
// backward; a parameter no rank used keeps its gradient untouched (undefined stays undefined,
// as in a single process, so the optimizer skips it there too).
//
//   reducer.begin(pass);  loss.backward();  reducer.finish();
// leaves param.grad += mean over the ranks of this backward's gradient.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <torch/types.h>

#include <commercemm/dist/communicator.hpp>

namespace commercemm::dist {

class GradientReducer {
 public:
  GradientReducer(const std::vector<torch::Tensor>& parameters, Communicator& comm,
                  std::int64_t bucket_bytes = 25ll << 20)
      : comm_(comm) {
    for (auto& p : parameters)
      if (p.requires_grad()) params_.push_back(p);  // frozen parameters have no gradient to average
    const auto n = params_.size();
    bucket_of_.resize(n);
    offset_of_.resize(n);
    ready_.assign(n, false);
    got_.assign(n, false);
    late_.assign(n, false);
    // Reverse registration order; a new bucket when full or when dtype or device changes.
    for (std::size_t i = n; i-- > 0;) {
      const auto& p = params_[i];
      const auto bytes = p.numel() * static_cast<std::int64_t>(p.element_size());
      if (buckets_.empty() || buckets_.back().bytes + bytes > bucket_bytes ||
          buckets_.back().options.dtype() != p.options().dtype() || buckets_.back().options.device() != p.device()) {
        buckets_.push_back({});
        buckets_.back().options = p.options().requires_grad(false);
      }
      auto& bucket = buckets_.back();
      bucket_of_[i] = buckets_.size() - 1;
      offset_of_[i] = bucket.numel;
      bucket.members.push_back(i);
      bucket.numel += p.numel();
      bucket.bytes += bytes;
    }
    for (auto& bucket : buckets_) bucket.flat = torch::zeros({bucket.numel}, bucket.options);
    for (std::size_t i = 0; i < n; ++i)
      hooks_.push_back(params_[i].register_hook([this, i](torch::Tensor grad) { return on_gradient(i, grad); }));
  }
  ~GradientReducer() {
    for (std::size_t i = 0; i < hooks_.size(); ++i) params_[i].remove_hook(hooks_[i]);
  }
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  std::size_t bucket_count() const { return buckets_.size(); }
  /// Seconds finish() spent waiting for communication the backward did not hide.
  double exposed_seconds() const { return exposed_seconds_; }

  /// Arms the hooks for one backward of `pass` (any small integer naming the kind of pass).
  void begin(int pass) {
    armed_ = true;
    pass_ = pass;
    auto& expected = expected_.try_emplace(pass, std::vector<bool>(params_.size(), true)).first->second;
    std::fill(ready_.begin(), ready_.end(), false);
    std::fill(got_.begin(), got_.end(), false);
    std::fill(late_.begin(), late_.end(), false);
    late_grads_.clear();
    next_ = 0;
    for (auto& bucket : buckets_) {
      bucket.flat.zero_();
      bucket.pending.reset();
      bucket.waiting = 0;
      for (auto i : bucket.members) bucket.waiting += expected[i] ? 1 : 0;
    }
    launch_ready();  // buckets that expect nothing from this pass
  }

  /// After the backward: starts what is left, waits, and adds the averaged gradients.
  void finish() {
    const auto started = std::chrono::steady_clock::now();
    armed_ = false;
    while (next_ < buckets_.size()) launch(next_++);
    for (auto& bucket : buckets_) bucket.pending->wait();
    // Which parameters any rank used, and which arrived after their bucket had left.
    const auto n = static_cast<std::int64_t>(params_.size());
    auto flags = torch::zeros({2 * n}, torch::kInt);
    auto f = flags.accessor<int, 1>();
    for (std::int64_t i = 0; i < n; ++i) f[i] = got_[i] ? 1 : 0, f[n + i] = late_[i] ? 1 : 0;
    comm_.all_reduce_max(flags);
    const double scale = 1.0 / static_cast<double>(comm_.size());
    std::vector<std::size_t> late;
    for (std::int64_t i = 0; i < n; ++i)
      if (f[n + i]) late.push_back(static_cast<std::size_t>(i));
    std::vector<torch::Tensor> corrections = reduce_late(late);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!f[static_cast<std::int64_t>(i)]) continue;  // no rank used it: leave it as it is
      auto& p = params_[i];
      auto average = buckets_[bucket_of_[i]].flat.narrow(0, offset_of_[i], p.numel()).view(p.sizes()) * scale;
      const auto where = std::find(late.begin(), late.end(), i);
      if (where != late.end()) average = average + corrections[static_cast<std::size_t>(where - late.begin())] * scale;
      auto& grad = p.mutable_grad();
      if (grad.defined()) grad.add_(average);
      else grad = average.clone();
    }
    expected_[pass_] = got_;
    exposed_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }

 private:
  struct Bucket {
    torch::TensorOptions options;
    std::vector<std::size_t> members;
    std::int64_t numel = 0, bytes = 0, waiting = 0;
    torch::Tensor flat;
    std::unique_ptr<Pending> pending;
  };

  // The hook: the gradient goes to the bucket (or, if the bucket already left, aside), and
  // the parameter's own .grad receives zeros; finish() adds the average.
  torch::Tensor on_gradient(std::size_t i, const torch::Tensor& grad) {
    if (!armed_) return {};  // a backward outside begin()/finish(): leave it alone
    got_[i] = true;
    auto& bucket = buckets_[bucket_of_[i]];
    if (bucket.pending) {
      late_[i] = true;
      auto& aside = late_grads_[i];
      aside = aside.defined() ? aside + grad : grad.detach().clone();
    } else {
      auto slot = bucket.flat.narrow(0, offset_of_[i], grad.numel()).view(grad.sizes());
      if (ready_[i]) {
        slot.add_(grad);
      } else {
        slot.copy_(grad);
        ready_[i] = true;
        if (expected_[pass_][i]) --bucket.waiting;
        launch_ready();
      }
    }
    return torch::zeros_like(grad);
  }

  void launch_ready() {
    while (next_ < buckets_.size() && buckets_[next_].waiting == 0) launch(next_++);
  }
  void launch(std::size_t b) { buckets_[b].pending = comm_.all_reduce_sum_async(buckets_[b].flat); }

  // One all-reduce of every late gradient (zeros where this rank has none), in `late` order.
  std::vector<torch::Tensor> reduce_late(const std::vector<std::size_t>& late) {
    if (late.empty()) return {};
    std::vector<torch::Tensor> parts;
    for (auto i : late) {
      const auto it = late_grads_.find(i);
      parts.push_back(it != late_grads_.end() ? it->second.reshape({-1}) : torch::zeros({params_[i].numel()}, params_[i].options().requires_grad(false)));
    }
    auto flat = torch::cat(parts);
    comm_.all_reduce_sum(flat);
    std::vector<torch::Tensor> out;
    std::int64_t offset = 0;
    for (auto i : late) {
      out.push_back(flat.narrow(0, offset, params_[i].numel()).view(params_[i].sizes()));
      offset += params_[i].numel();
    }
    return out;
  }

  std::vector<torch::Tensor> params_;
  Communicator& comm_;
  std::vector<std::size_t> bucket_of_;
  std::vector<std::int64_t> offset_of_;
  std::vector<Bucket> buckets_;
  std::vector<unsigned> hooks_;
  std::map<int, std::vector<bool>> expected_;
  std::vector<bool> ready_, got_, late_;
  std::map<std::size_t, torch::Tensor> late_grads_;
  std::size_t next_ = 0;
  int pass_ = 0;
  bool armed_ = false;
  double exposed_seconds_ = 0;
};

}  // namespace commercemm::dist
