#pragma once
// A retrieval task of a user's own, for a pair kind the library does not know: product
// reviews (text) -> the product (multimodal). The dataset adds the kind with no code
// (docs/manifests.md, "Adding a pair kind"); this header adds a task that trains on it alone,
// with its own hyper-parameter in [tasks.review_to_product].
#include <string>

#include <commercemm/components.hpp>

namespace reviews {
namespace cmm = commercemm;

struct ReviewToProduct {
  static std::string name() { return "review_to_product"; }
  static constexpr cmm::Pass pass = cmm::Pass::cross_pair;
  static constexpr cmm::Needs needs{.source = cmm::Modality::text, .target = cmm::Modality::multimodal};
  using Head = cmm::tasks::Temperature;  // a learned temperature
  struct Options {
    double temperature = 0.05;  // its initial value
    template <class F> friend void visit_fields(Options& o, F&& f) { f("temperature", o.temperature); }
  };
  static Head make_head(const cmm::ModelConfig&, const Options& o) { return Head(o.temperature); }

  template <class ModelImpl>
  static cmm::losses::LossOutput loss(Head& head, ModelImpl&, const cmm::CrossPairView& view, cmm::TaskContext&,
                                      const Options&) {
    const auto& reviews = view.source_embeddings.text;
    const auto& products = view.target_embeddings.multimodal;
    // This rank's review rows; every rank's products are the negatives (dist::gather_rows).
    auto rows = cmm::tasks::rows_with(*view.source, cmm::Modality::text);
    rows = rows.logical_and(cmm::tasks::rows_of_kinds<cmm::kinds::Only<"review">>(*view.source, rows.options()));
    if (!reviews.defined() || !cmm::dist::any_rank(rows.any().template item<bool>()))
      return {head->forward() * 0.0, {}, {}};  // no review in the global batch: nothing to learn
    cmm::losses::InfoNceOptions options{view.source->product_ids, view.target->product_ids, rows};
    auto out = cmm::losses::info_nce(reviews, products, head->forward(), options, cmm::gather::AcrossRanks{});
    out.parts["reviews"] = rows.sum().to(torch::kDouble) * static_cast<double>(cmm::dist::world_size());
    return out;
  }
};
static_assert(cmm::tasks::Task<ReviewToProduct>);

}  // namespace reviews
