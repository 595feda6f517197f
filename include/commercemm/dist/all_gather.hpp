#pragma once
// Gathering rows across ranks with gradients: the contrastive losses' negatives and ITM's hard
// negatives come from the whole global batch.
//
// dist::gather_rows(x [b, ...]) -> {all [B, ...], offset}: every rank's rows in rank order
// (shards may differ in size: a rank that skipped a bad record has fewer rows), and where this
// rank's rows start. The backward sums the gradient of `all` over the ranks and hands each
// rank its own slice, as torch.distributed.nn's all_gather does: with each rank's loss a
// global mean of its own rows (dist::global_mean) and the gradients averaged over the ranks,
// every parameter's gradient equals the single-process one.
#include <cstdint>
#include <vector>

#include <torch/csrc/autograd/custom_function.h>
#include <torch/types.h>

#include <commercemm/dist/communicator.hpp>
#include <commercemm/encoders/encoder.hpp>

namespace commercemm::dist {

struct GatheredRows {
  torch::Tensor all;       ///< [B, ...] every rank's rows, in rank order
  std::int64_t offset = 0; ///< index of this rank's first row in `all`
};

namespace detail {

// Gloo reduces and gathers numbers, not bools: bools travel as bytes.
inline torch::Tensor wire(const torch::Tensor& x) {
  return x.scalar_type() == torch::kBool ? x.to(torch::kByte) : x;
}

// Every rank's rows, each shard padded to `longest` rows for the collective and cut back.
inline torch::Tensor gather_padded(Communicator& comm, const torch::Tensor& x, const std::vector<std::int64_t>& rows,
                                   std::int64_t longest) {
  auto send = wire(x).contiguous();
  if (send.size(0) < longest) {
    auto shape = send.sizes().vec();
    shape[0] = longest - send.size(0);
    send = torch::cat({send, torch::zeros(shape, send.options())});
  }
  auto parts = comm.all_gather(send);
  for (std::size_t r = 0; r < parts.size(); ++r) parts[r] = parts[r].narrow(0, 0, rows[r]);
  auto all = torch::cat(parts);
  return x.scalar_type() == torch::kBool ? all.to(torch::kBool) : all;
}

struct GatherRowsFunction : public torch::autograd::Function<GatherRowsFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               std::vector<std::int64_t> rows, std::int64_t offset) {
    std::int64_t longest = 0;
    for (auto r : rows) longest = std::max(longest, r);
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["local"] = x.size(0);
    return gather_padded(*current(), x, rows, longest);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // Every rank's loss reached every row: sum the gradients, keep this rank's slice.
    auto g = grads[0].contiguous().clone();
    current()->all_reduce_sum(g);
    const auto offset = ctx->saved_data["offset"].toInt(), local = ctx->saved_data["local"].toInt();
    return {g.narrow(0, offset, local), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace detail

/// Every rank's rows of `x` (see the file comment); {x, 0} in a single process.
inline GatheredRows gather_rows(const torch::Tensor& x) {
  auto* comm = current();
  if (!comm || comm->size() == 1) return {x, 0};
  const auto sizes = comm->all_gather(torch::tensor({x.size(0)}, torch::kLong));
  std::vector<std::int64_t> rows;
  std::int64_t offset = 0, longest = 0;
  for (int r = 0; r < comm->size(); ++r) {
    rows.push_back(sizes[static_cast<std::size_t>(r)].item<std::int64_t>());
    if (r < comm->rank()) offset += rows.back();
    longest = std::max(longest, rows.back());
  }
  if (x.requires_grad()) return {detail::GatherRowsFunction::apply(x, rows, offset), offset};
  return {detail::gather_padded(*comm, x, rows, longest), offset};
}

struct GatheredTokens {
  TokenSequence all;        ///< every rank's sequences, in rank order
  std::int64_t offset = 0;  ///< index of this rank's first row in `all`
};

/// Every rank's token sequences [b, L, W] (with gradient) and validity [b, L], padded to the
/// longest L of any rank (the padding invalid): what ITM's hard negatives fuse with.
inline GatheredTokens gather_tokens(const TokenSequence& s) {
  auto* comm = current();
  if (!comm || comm->size() == 1 || !s.defined()) return {s, 0};
  auto length = torch::tensor({s.tokens.size(1)}, torch::kLong);
  comm->all_reduce_max(length);
  const auto l = length.item<std::int64_t>(), extra = l - s.tokens.size(1);
  auto valid = s.valid.defined() ? s.valid.to(torch::kBool)
                                 : torch::ones({s.tokens.size(0), s.tokens.size(1)}, s.tokens.options().dtype(torch::kBool));
  auto tokens = s.tokens;
  if (extra > 0) {
    tokens = torch::cat({tokens, torch::zeros({tokens.size(0), extra, tokens.size(2)}, tokens.options())}, 1);
    valid = torch::cat({valid, torch::zeros({valid.size(0), extra}, valid.options())}, 1);
  }
  auto gathered = gather_rows(tokens);
  return {{gathered.all, gather_rows(valid).all}, gathered.offset};
}

}  // namespace commercemm::dist

namespace commercemm::gather {

/// The whole global batch as negatives: every rank's rows, gradient flowing back to their own
/// rank (dist::gather_rows). In a single process it is gather::Local.
struct AcrossRanks {
  torch::Tensor all(const torch::Tensor& x) const {
    auto gathered = dist::gather_rows(x);
    offset_ = gathered.offset;
    return gathered.all;
  }
  /// Where this rank's rows start in the last all(): query row i's positive is key offset + i.
  std::int64_t offset(std::int64_t /*local_batch*/) const { return offset_; }

 private:
  mutable std::int64_t offset_ = 0;
};

}  // namespace commercemm::gather
