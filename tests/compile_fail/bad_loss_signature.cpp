// Must NOT compile: the loss takes the pass-A view, but the task is a pass-B task. Without the
// check, the planner would never find a loss to call for it.
#include <commercemm/components.hpp>

namespace cmm = commercemm;

struct Misplaced {
  static std::string name() { return "misplaced"; }
  static constexpr cmm::Pass pass = cmm::Pass::cross_pair;
  static constexpr cmm::Needs needs{.source = cmm::Modality::text, .target = cmm::Modality::text};
  using Head = cmm::tasks::NoHead;
  static Head make_head(const cmm::ModelConfig&) { return Head(); }
  template <class ModelImpl>
  static cmm::losses::LossOutput loss(Head&, ModelImpl&, const cmm::ImageTextView&, cmm::TaskContext&) {
    return {};
  }
};

int main() {
  using Recipe = cmm::Recipe<cmm::DefaultModel, cmm::TaskList<Misplaced>, cmm::schedules::FixedFusionSplit<0>>;
  return sizeof(Recipe) > 0 ? 0 : 1;
}
