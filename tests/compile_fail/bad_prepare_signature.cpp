// Must NOT compile: prepare returns nothing instead of a FusionRequest, so the planner would
// silently skip it and the task's loss would read rows that were never fused.
#include <commercemm/components.hpp>

namespace cmm = commercemm;

struct Forgetful {
  static std::string name() { return "forgetful"; }
  static constexpr cmm::Pass pass = cmm::Pass::image_text;
  static constexpr cmm::Needs needs{.embeddings = true, .fusion = true};
  using Head = cmm::tasks::NoHead;
  static Head make_head(const cmm::ModelConfig&) { return Head(); }
  template <class ModelImpl>
  static void prepare(Head&, ModelImpl&, const cmm::ImageTextView&, cmm::TaskContext&) {}
  template <class ModelImpl>
  static cmm::losses::LossOutput loss(Head&, ModelImpl&, const cmm::ImageTextView&, cmm::TaskContext&) {
    return {};
  }
};

int main() {
  using Recipe = cmm::Recipe<cmm::DefaultModel, cmm::TaskList<Forgetful>, cmm::schedules::FixedFusionSplit<0>>;
  return sizeof(Recipe) > 0 ? 0 : 1;
}
