// The full recipe plus a task of the user's own for a pair kind of the dataset's own
// (examples/review_task.hpp) and modality dropout, with the whole app:
//   commercemm_review_task pretrain --config examples/configs/tiny.toml --data DIR --out runs/reviews
#include <commercemm/commercemm.hpp>

#include "review_task.hpp"

namespace cmm = commercemm;
namespace tk = commercemm::tasks;

using Tasks = cmm::TaskList<tk::MLM, tk::ITC<>, tk::ITM<cmm::negatives::Hard>, tk::OmniRetrieval<cmm::omni::All>,
                            reviews::ReviewToProduct>;
// Modality dropout: [schedule] drop_text and drop_image reach it from the config.
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::ModalityDropout<cmm::schedules::RandomFusionSplit>>;

int main(int argc, char** argv) { return cmm::cli::main<Recipe>(argc, argv); }
