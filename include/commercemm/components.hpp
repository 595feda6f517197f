#pragma once
// The library's building blocks without the app (cmm::cli): configs, models, data, tokenizers,
// tasks, schedules, the training step and the distributed collectives. For code that builds
// its own loop; it compiles faster than <commercemm/commercemm.hpp>, which adds the app.
#include <commercemm/core/batch.hpp>
#include <commercemm/core/config.hpp>
#include <commercemm/core/config_io.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/core/modality.hpp>
#include <commercemm/core/model_config.hpp>
#include <commercemm/core/version.hpp>
#include <commercemm/data/fashion_mnist.hpp>
#include <commercemm/data/image.hpp>
#include <commercemm/data/loader.hpp>
#include <commercemm/data/manifest.hpp>
#include <commercemm/data/tokenizers.hpp>
#include <commercemm/dist/all_gather.hpp>
#include <commercemm/dist/communicator.hpp>
#include <commercemm/dist/consistency.hpp>
#include <commercemm/dist/environment.hpp>
#include <commercemm/dist/gradient_reducer.hpp>
#include <commercemm/encoders/conv_net.hpp>
#include <commercemm/encoders/encoder.hpp>
#include <commercemm/encoders/text_transformer.hpp>
#include <commercemm/encoders/vit.hpp>
#include <commercemm/fusion/fusion.hpp>
#include <commercemm/fusion/merged_attention.hpp>
#include <commercemm/model.hpp>
#include <commercemm/schedules/schedules.hpp>
#include <commercemm/tasks/tasks.hpp>
#include <commercemm/train/lr_schedule.hpp>
#include <commercemm/train/step.hpp>

namespace commercemm {
/// The paper's model: ViT image encoder, BERT-style text encoder, merged-attention fusion.
using DefaultModel = Model<encoders::ViT, encoders::TextTransformer, fusion::MergedAttention>;
}  // namespace commercemm
