// Must NOT compile: momentum_needs takes no options, so the step would never call it and the
// task's loss would find no momentum embeddings in its view.
#include <commercemm/components.hpp>

namespace cmm = commercemm;

struct Misread {
  static std::string name() { return "misread"; }
  static constexpr cmm::Pass pass = cmm::Pass::cross_pair;
  static constexpr cmm::Needs needs{.source = cmm::Modality::text, .target = cmm::Modality::image};
  using Head = cmm::tasks::NoHead;
  static Head make_head(const cmm::ModelConfig&) { return Head(); }
  static cmm::Needs momentum_needs() { return {.target = cmm::Modality::image}; }
  template <class ModelImpl>
  static cmm::losses::LossOutput loss(Head&, ModelImpl&, const cmm::CrossPairView&, cmm::TaskContext&) {
    return {};
  }
};

int main() {
  using Recipe = cmm::Recipe<cmm::DefaultModel, cmm::TaskList<Misread>, cmm::schedules::FixedFusionSplit<0>>;
  return sizeof(Recipe) > 0 ? 0 : 1;
}
