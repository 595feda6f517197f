#pragma once
// The downstream tasks by name (DESIGN section 7), as evaluate, finetune and metrics.json
// know them: the built-in ones and a <kind>_to_product per pair kind of a dataset's own.
#include <optional>
#include <string>
#include <vector>

#include <commercemm/core/error.hpp>
#include <commercemm/core/modality.hpp>
#include <commercemm/data/manifest.hpp>

namespace commercemm::eval {

enum class TaskKind { retrieval, categorization };

struct DownstreamTask {
  std::string name;
  TaskKind kind;
  Modality query = Modality::multimodal;    ///< retrieval: the query's embedding; categorization: the input's
  Modality gallery = Modality::multimodal;  ///< retrieval: the gallery's embedding
  std::optional<data::PairKind> pairs;      ///< retrieval from sources of this kind (else catalog items)
  std::string label;                        ///< categorization: "subcategory", "category" or "fashion_mnist"
};

inline const std::vector<DownstreamTask>& downstream_tasks() {
  using M = Modality;
  static const std::vector<DownstreamTask> tasks{
      {"multimodal_categorization", TaskKind::categorization, M::multimodal, M::multimodal, std::nullopt, "subcategory"},
      {"image_categorization", TaskKind::categorization, M::image, M::image, std::nullopt, "category"},
      {"fashion_mnist_categorization", TaskKind::categorization, M::image, M::image, std::nullopt, "fashion_mnist"},
      {"image_to_text", TaskKind::retrieval, M::image, M::text, std::nullopt, ""},
      {"text_to_image", TaskKind::retrieval, M::text, M::image, std::nullopt, ""},
      {"query_to_product", TaskKind::retrieval, M::text, M::multimodal, data::pair_kinds::query, ""},
      {"image_to_product", TaskKind::retrieval, M::image, M::multimodal, data::pair_kinds::image, ""},
      {"post_to_product", TaskKind::retrieval, M::multimodal, M::multimodal, data::pair_kinds::post, ""},
  };
  return tasks;
}

/// The built-in tasks, and `<kind>_to_product` for every other pair kind of `split`: its
/// queries are the sources' text, image, or both fused, as the kind's sources hold.
inline std::vector<DownstreamTask> downstream_tasks(const data::DatasetSplit& split) {
  auto out = downstream_tasks();
  for (const auto& kind : split.pair_kinds()) {
    if (kind == data::pair_kinds::query || kind == data::pair_kinds::image || kind == data::pair_kinds::post) continue;
    const auto [text, image] = split.kind_holds(kind);
    const auto query = text && image ? Modality::multimodal : text ? Modality::text : Modality::image;
    out.push_back({kind + "_to_product", TaskKind::retrieval, query, Modality::multimodal, kind, ""});
  }
  return out;
}

/// The task called `name` among `tasks`; an unknown name is an error listing the valid ones.
inline DownstreamTask downstream_task(const std::string& name,
                                      const std::vector<DownstreamTask>& tasks = downstream_tasks()) {
  std::string known;
  for (const auto& t : tasks) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  throw Error(Location{"--task", 0, name}, "unknown downstream task; the tasks are: " + known);
}

}  // namespace commercemm::eval
