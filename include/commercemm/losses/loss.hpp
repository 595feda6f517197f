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

}  // namespace commercemm::losses
