// A retrieval task written outside the library and added to a TaskList like the built-in
// ones: VSE++'s hinge loss with the hardest in-batch negative (Faghri et al., 2018) between a
// source modality and a target modality. It satisfies the cmm::tasks::Task concept
// (tasks/task.hpp documents every member); the step planner computes the embeddings it asks
// for in `needs` together with every other pass-B task's, in one call per network.
#include <commercemm/commercemm.hpp>

namespace cmm = commercemm;
namespace tk = commercemm::tasks;

template <cmm::ModalityTag Source, cmm::ModalityTag Target>
struct HardestNegativeRetrieval {
  static std::string name() { return std::string("hardest_") + Source::name + "_" + Target::name; }
  static constexpr cmm::Pass pass = cmm::Pass::cross_pair;
  static constexpr cmm::Needs needs{.source = Source::value, .target = Target::value};
  using Head = tk::NoHead;  // no parameters: a fixed margin
  static Head make_head(const cmm::ModelConfig&) { return Head(); }
  // Its hyper-parameter, set in TOML as [tasks.hardest_image_multimodal] margin = 0.3 (an
  // unknown key there is an error, like anywhere in a config).
  struct Options {
    double margin = 0.2;
    template <class F> friend void visit_fields(Options& o, F&& f) { f("margin", o.margin); }
  };

  template <class ModelImpl>
  static cmm::losses::LossOutput loss(Head&, ModelImpl&, const cmm::CrossPairView& view, cmm::TaskContext&,
                                      const Options& options) {
    const auto& q = view.source_embeddings.get(Source::value);
    const auto& k = view.target_embeddings.get(Target::value);
    const auto rows = tk::rows_with(*view.source, Source::value);
    if (!q.defined() || !k.defined() || !cmm::dist::any_rank(rows.any().template item<bool>()))
      return {torch::zeros({}, torch::requires_grad()), {}, {}};
    const auto sim = torch::matmul(q, k.t());                       // [B, B]
    const auto positive = sim.diagonal().unsqueeze(1);              // [B, 1]
    const auto same = view.source->product_ids.unsqueeze(1).eq(view.target->product_ids.unsqueeze(0));
    const auto hardest = sim.masked_fill(same, -2.0).amax(1, true); // the closest other product
    const auto hinge = (options.margin + hardest - positive).clamp_min(0).squeeze(1);
    const auto w = rows.to(hinge.dtype());
    return {cmm::dist::global_mean((hinge * w).sum(), w.sum()), sim, {}};  // over every rank's rows
  }
};
static_assert(tk::Task<HardestNegativeRetrieval<cmm::Image, cmm::Multimodal>>);

using Tasks = cmm::TaskList<tk::ITC<>, tk::Retrieval<cmm::Text, cmm::Multimodal>,
                            HardestNegativeRetrieval<cmm::Image, cmm::Multimodal>>;
using Recipe = cmm::Recipe<cmm::DefaultModel, Tasks, cmm::schedules::FixedFusionSplit<0>>;

// The user's recipe gets the whole app: pretrain, finetune, evaluate, embed, plot, describe.
//   commercemm_custom_task pretrain --config examples/configs/tiny.toml --out runs/custom
int main(int argc, char** argv) { return cmm::cli::main<Recipe>(argc, argv); }
