#pragma once
// The ablation recipes of the paper's Table 5, one type each. Every one shares the data, the
// config and the app; the task list and the schedule differ, and all14_convnet swaps the
// image encoder.
#include <commercemm/commercemm.hpp>

namespace ablation {
namespace cmm = commercemm;
namespace tk = commercemm::tasks;

using Model = cmm::DefaultModel;
using Random = cmm::schedules::RandomFusionSplit;

using ImageTextTasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>,
                                     tk::ITC<>, tk::ITM<cmm::negatives::Hard>>;
using AllTasks = cmm::TaskList<tk::MLM, tk::MIM<cmm::losses::KL>, tk::MIM<cmm::losses::FeatureRegression>, tk::ITC<>,
                               tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<cmm::omni::All>>;

using itc_only = cmm::Recipe<Model, cmm::TaskList<tk::ITC<>>, Random>;
using image_text = cmm::Recipe<Model, ImageTextTasks, Random>;                           // the 5
using omni = cmm::Recipe<Model, cmm::TaskList<tk::OmniRetrieval<cmm::omni::All>>, Random>;  // the 9
using all14 = cmm::Recipe<Model, AllTasks, Random>;
using all14_fixed_split = cmm::Recipe<Model, AllTasks, cmm::schedules::FixedFusionSplit<0>>;  // no randomization
// The same 14 tasks with the convolutional image encoder in place of the ViT.
using ConvModel = cmm::Model<cmm::encoders::ConvNet, cmm::encoders::TextTransformer, cmm::fusion::MergedAttention>;
using all14_convnet = cmm::Recipe<ConvModel, AllTasks, Random>;
}  // namespace ablation
