#pragma once
#include <torch/types.h>

#include <commercemm/core/modality.hpp>

namespace commercemm {

/// The three L2-normalised embeddings of a batch; each [B, D], undefined where the input
/// lacks what it needs (image needs images, text needs text, multimodal needs either).
struct Embeddings {
  torch::Tensor image, text, multimodal;

  const torch::Tensor& get(Modality m) const {
    return m == Modality::image ? image : m == Modality::text ? text : multimodal;
  }
};

}  // namespace commercemm
