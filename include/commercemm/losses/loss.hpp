#pragma once
// What every loss function returns: the scalar to optimise plus what produced it, so tasks
// can log parts and reuse logits (ITM samples hard negatives from ITC's similarities).
#include <map>
#include <string>

#include <torch/types.h>

namespace commercemm::losses {

struct LossOutput {
  torch::Tensor loss;                          ///< [] the scalar to minimise
  torch::Tensor logits;                        ///< the logits behind it (shape per loss)
  std::map<std::string, torch::Tensor> parts;  ///< named components, detached for logging
};

/// Half-precision logits (from bf16 autocast) are promoted to fp32 before softmax and
/// logs; fp32 and fp64 pass through unchanged.
inline torch::Tensor upcast(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat) : t;
}

}  // namespace commercemm::losses
