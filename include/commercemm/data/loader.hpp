#pragma once
// A batch loader that decodes, resizes and tokenizes on background threads.
//
// Records are image-text items (pass A: a catalog item) or cross pairs (pass B: a source item
// and its target product). Batch k of an epoch is the same whatever the number of workers or
// their timing: its records come from a seeded shuffle and each record's augmentation draws
// from its own seed. A missing or corrupt image is reported on stderr with its path, counted,
// and its record dropped from the batch; past LoaderOptions::max_skipped it is an error.
//
// Sharded (LoaderOptions::shards > 1, one loader per rank of a distributed run): batch k is
// still the global batch k, and shard r reads, decodes and returns only its r-th slice of it,
// each row carrying its index in the global batch (Batch::sample_index). Positions (epoch,
// batch) mean the same at any number of shards, so a checkpoint resumes at any world size.
#include <algorithm>
#include <cmath>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <torch/types.h>

#include <commercemm/core/batch.hpp>
#include <commercemm/core/config.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/data/image.hpp>
#include <commercemm/data/loader_options.hpp>
#include <commercemm/data/manifest.hpp>
#include <commercemm/data/records.hpp>
#include <commercemm/data/tokenizer.hpp>
#include <commercemm/dist/environment.hpp>

namespace commercemm::data {

/// What next() returns: `target` is empty (size 0) for image-text records.
struct LoaderBatch {
  Batch source;
  Batch target;
};

struct LoaderStats {
  std::int64_t records = 0;   ///< records delivered in batches
  std::int64_t skipped = 0;   ///< records dropped for a bad image
  std::vector<std::string> skipped_files;
};

class Loader {
 public:
  Loader(std::vector<Record> records, std::shared_ptr<const Tokenizer> tokenizer, LoaderOptions options)
      : records_(std::move(records)), tokenizer_(std::move(tokenizer)), options_(std::move(options)) {
    if (options_.batch_size <= 0) throw Error(Location{"", 0, "batch_size"}, "must be at least 1");
    if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards)
      throw Error(Location{"", 0, "shard"}, "must be in [0, shards)");
    if (options_.batch_size % options_.shards != 0)
      throw Error(Location{"", 0, "batch_size"}, "the batch of " + std::to_string(options_.batch_size) +
                                                     " does not divide into " + std::to_string(options_.shards) + " shards");
    if (options_.shards > 1 && !options_.drop_last)
      throw Error(Location{"", 0, "drop_last"}, "a sharded loader drops the last, smaller batch");
    if (!tokenizer_) throw Error(Location{"", 0, "tokenizer"}, "the loader needs a tokenizer");
    start_epoch(0);
  }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  ~Loader() { stop(); }

  /// Batches per epoch.
  std::int64_t size() const {
    const auto n = static_cast<std::int64_t>(records_.size()), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }

  /// (Re)starts at batch `first_batch` of `epoch`: the position a checkpoint stores.
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0) {
    stop();
    epoch_ = epoch;
    next_ = first_batch;
    order_.resize(records_.size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    if (options_.shuffle) {
      std::mt19937_64 rng(options_.seed * 1000003ull + static_cast<std::uint64_t>(epoch));
      std::shuffle(order_.begin(), order_.end(), rng);
    }
    if (options_.workers > 0) {
      stopping_ = false;
      claimed_ = first_batch;
      for (std::int64_t i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { work(); });
    }
  }

  /// The next batch of this epoch, or nullopt at its end (then start_epoch(epoch() + 1)).
  std::optional<LoaderBatch> next() {
    std::unique_lock lock(mutex_);  // workers read next_ to know how far ahead they may go
    if (next_ >= size()) return std::nullopt;
    const auto k = next_++;
    if (options_.workers == 0) {
      lock.unlock();
      return finish(build(k));
    }
    space_cv_.notify_all();
    ready_cv_.wait(lock, [&] { return error_ || ready_.count(k); });
    if (error_) std::rethrow_exception(error_);
    auto batch = std::move(ready_.at(k));
    ready_.erase(k);
    space_cv_.notify_all();
    lock.unlock();
    return finish(std::move(batch));
  }

  /// The next batch, starting the next epoch when this one ends: how training loops read.
  LoaderBatch next_cycling() {
    if (auto batch = next()) return std::move(*batch);
    start_epoch(epoch() + 1);
    if (auto batch = next()) return std::move(*batch);
    throw Error(Location{"", 0, "batch_size"}, "larger than the data: an epoch has no full batch");
  }

  std::int64_t epoch() const { return epoch_; }
  std::int64_t position() const { return next_; }  ///< batches already returned this epoch
  LoaderStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  const LoaderOptions& options() const { return options_; }

 private:
  struct Built {
    LoaderBatch batch;
    std::int64_t records = 0;
    std::vector<std::pair<std::string, std::string>> bad;  // path, message
  };

  void work() {
    for (;;) {
      std::int64_t k;
      {
        std::unique_lock lock(mutex_);
        space_cv_.wait(lock, [&] { return stopping_ || claimed_ < next_ + options_.prefetch; });
        if (stopping_ || claimed_ >= size()) return;
        k = claimed_++;
      }
      try {
        auto built = build(k);
        std::lock_guard lock(mutex_);
        ready_.emplace(k, std::move(built));
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      ready_cv_.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    space_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    ready_.clear();
    error_ = nullptr;
  }

  // Bookkeeping on the consumer's thread, in batch order, so the counts are deterministic.
  LoaderBatch finish(Built built) {
    std::lock_guard lock(mutex_);
    for (const auto& [path, message] : built.bad) {
      ++stats_.skipped;
      stats_.skipped_files.push_back(path);
      std::cerr << dist::rank_prefix() << "warning: skipping a record: " << message << "\n";
    }
    stats_.records += built.records;
    if (stats_.skipped > options_.max_skipped)
      throw Error(Location{built.bad.empty() ? "" : built.bad.back().first, 0, ""},
                  std::to_string(stats_.skipped) + " records skipped for bad images, more than max_skipped (" +
                      std::to_string(options_.max_skipped) + ")");
    return std::move(built.batch);
  }

  Built build(std::int64_t k) const {
    const auto first = k * options_.batch_size, per_shard = options_.batch_size / options_.shards;
    const auto begin = first + options_.shard * per_shard;
    const auto end = std::min<std::int64_t>(begin + per_shard, static_cast<std::int64_t>(records_.size()));
    Built out;
    std::vector<const Record*> kept;
    std::vector<std::int64_t> index;  // each kept record's index in the global batch
    std::vector<torch::Tensor> source_images, target_images;
    for (auto i = begin; i < end; ++i) {
      const auto& record = records_[order_[static_cast<std::size_t>(i)]];
      // Each record's augmentation has its own stream: the batch does not depend on threads.
      ImageRng rng(options_.seed ^ (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(epoch_ * 1000003 + i + 1)));
      try {
        auto s = load(record.source, rng);
        torch::Tensor t;
        if (record.target) t = load(*record.target, rng);
        source_images.push_back(s);
        target_images.push_back(t);
        kept.push_back(&record);
        index.push_back(i - first);
      } catch (const Error& e) {
        out.bad.emplace_back(e.where().file, e.what());
      }
    }
    out.records = static_cast<std::int64_t>(kept.size());
    std::vector<const Example*> sources, targets;
    for (const auto* r : kept) {
      sources.push_back(&r->source);
      if (r->target) targets.push_back(&*r->target);
    }
    out.batch.source = collate(sources, source_images);
    if (!targets.empty()) out.batch.target = collate(targets, target_images);
    if (!kept.empty()) {
      out.batch.source.sample_index = torch::tensor(index, torch::kLong);
      if (!targets.empty()) out.batch.target.sample_index = out.batch.source.sample_index;
    }
    return out;
  }

  torch::Tensor load(const Example& e, ImageRng& rng) const {
    if (e.image.empty()) return {};
    return options_.augment ? load_image(e.image, options_.image, *options_.augment, rng)
                            : load_image(e.image, options_.image);
  }

  Batch collate(const std::vector<const Example*>& examples, const std::vector<torch::Tensor>& images) const {
    Batch batch;
    const auto b = static_cast<std::int64_t>(examples.size());
    if (b == 0) return batch;
    const auto special = tokenizer_->special_tokens();
    std::vector<std::vector<std::int64_t>> ids(examples.size());
    std::int64_t longest = 0;
    bool any_text = false, all_text = true, any_image = false, all_image = true;
    for (std::size_t i = 0; i < examples.size(); ++i) {
      if (!examples[i]->text.empty()) {
        ids[i] = tokenizer_->encode(examples[i]->text);
        if (static_cast<std::int64_t>(ids[i].size()) > options_.max_length) ids[i].resize(options_.max_length);
      }
      const bool has_text = !ids[i].empty();
      any_text |= has_text, all_text &= has_text;
      any_image |= images[i].defined(), all_image &= images[i].defined();
      longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(ids[i].size()));
    }
    if (any_text) {
      batch.text_ids = torch::full({b, longest}, special.pad, torch::kLong);
      batch.text_mask = torch::zeros({b, longest}, torch::kLong);
      auto id = batch.text_ids.accessor<std::int64_t, 2>();
      auto mask = batch.text_mask.accessor<std::int64_t, 2>();
      for (std::int64_t i = 0; i < b; ++i)
        for (std::size_t j = 0; j < ids[i].size(); ++j) id[i][j] = ids[i][j], mask[i][j] = 1;
      if (!all_text) batch.text_present = batch.text_mask.sum(1).gt(0);
    }
    if (any_image) {
      std::vector<torch::Tensor> filled;
      const auto s = options_.image.size;
      for (const auto& image : images) filled.push_back(image.defined() ? image : torch::zeros({3, s, s}));
      batch.images = torch::stack(filled);
      if (!all_image) {
        batch.image_present = torch::zeros({b}, torch::kBool);
        auto present = batch.image_present.accessor<bool, 1>();
        for (std::int64_t i = 0; i < b; ++i) present[i] = images[i].defined();
      }
    }
    batch.product_ids = torch::empty({b}, torch::kLong);
    auto product = batch.product_ids.accessor<std::int64_t, 1>();
    for (std::int64_t i = 0; i < b; ++i) {
      product[i] = examples[i]->product;
      batch.item_ids.push_back(examples[i]->id);
    }
    if (!examples.front()->kind.empty())
      for (const auto* e : examples) batch.kinds.push_back(e->kind);
    return batch;
  }

  std::vector<Record> records_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  LoaderOptions options_;
  std::vector<std::size_t> order_;
  std::int64_t epoch_ = 0, next_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable ready_cv_, space_cv_;
  std::map<std::int64_t, Built> ready_;
  std::int64_t claimed_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  LoaderStats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace commercemm::data
