#pragma once
// The paper's seven downstream tasks on a benchmark directory (DESIGN section 7), with the
// names metrics.json uses (image-only categorization has two: the catalog's categories and
// Fashion-MNIST's classes):
//   multimodal_categorization     catalog item (image + text) -> subcategory
//   image_categorization          catalog image -> category
//   fashion_mnist_categorization  Fashion-MNIST image -> its ten classes (image-only, again)
//   image_to_text, text_to_image  a catalog item's image <-> its text, among the test catalog
//   query_to_product              a text query          -> the catalog item (multimodal)
//   image_to_product              a user image          -> the catalog item (multimodal)
//   post_to_product               an image + text post  -> the catalog item (multimodal)
//   <kind>_to_product             every other pair kind of the test split (a dataset's own,
//                                 e.g. review_to_product): its sources' text, image or both
// Retrieval scores Recall@1/5/10 and MRR over the test split's catalog (a hit is any catalog
// item of the right product); categorization scores accuracy and macro-F1, by the nearest
// class centroid of frozen embeddings (centroids from the train split) and, after finetune,
// by the fine-tuned head.
//
// Each concern has its header: downstream_tasks.hpp (the tasks by name), benchmark.hpp (the
// splits and the embedded sets), categorization.hpp, scoring.hpp (metrics.json) and
// references.hpp (raw pixels, TF-IDF).
#include <commercemm/eval/benchmark.hpp>
#include <commercemm/eval/categorization.hpp>
#include <commercemm/eval/downstream_tasks.hpp>
#include <commercemm/eval/references.hpp>
#include <commercemm/eval/scoring.hpp>
