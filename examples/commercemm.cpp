// The generic commercemm binary: the full CommerceMM recipe (5 image-text tasks + the 9
// omni-retrieval tasks, random fusion split) behind the app's subcommands, plus the
// library's tools (describe, data emoji). This is DESIGN's golden example, word for word.
#include <commercemm/commercemm.hpp>
namespace cmm = commercemm;

using Model = cmm::Model<cmm::encoders::ViT,              // image encoder
                         cmm::encoders::TextTransformer,  // text encoder
                         cmm::fusion::MergedAttention>;   // joint attention over [text; image]

using Tasks = cmm::TaskList<cmm::tasks::MLM,
                            cmm::tasks::MIM<cmm::losses::KL>,                 // MIM-kl
                            cmm::tasks::MIM<cmm::losses::FeatureRegression>,  // MIM-fr
                            cmm::tasks::ITC<>,
                            cmm::tasks::ITM<cmm::negatives::Hard>,
                            cmm::tasks::OmniRetrieval<cmm::omni::All>>;       // the 9

using Recipe = cmm::Recipe<Model, Tasks, cmm::schedules::RandomFusionSplit>;

int main(int argc, char** argv) { return cmm::cli::main<Recipe>(argc, argv); }
