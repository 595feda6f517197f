#pragma once
// The run configuration: one struct per TOML table, field for field, read by load_config().
// Unknown keys, wrong types and invalid sizes are errors naming the file, line and key.
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include <commercemm/core/model_config.hpp>
#include <commercemm/core/options.hpp>
#include <commercemm/data/augmentation.hpp>

namespace commercemm {

struct DataConfig {
  std::string dir = "data/emoji-commerce";  ///< a benchmark directory written by `data emoji`
  std::int64_t workers = 1;                 ///< background decode threads of the loader
  /// "learned_bpe" (a byte-level BPE learned from the train split, at most
  /// model.text.vocab_size ids), "wordpiece" (BERT's vocab.txt in `vocab`), "gpt2_bpe"
  /// (GPT-2's encoder.json in `vocab` and vocab.bpe in `merges`; with either file the model's
  /// vocab_size comes from the tokenizer) or "hashed_ngrams" (each word's character n-grams
  /// hashed into model.text.vocab_size - 3 buckets; data/tokenizers/hashed_ngrams.hpp).
  std::string tokenizer = "learned_bpe";
  std::string vocab;   ///< wordpiece, gpt2_bpe: the vocabulary file
  std::string merges;  ///< gpt2_bpe: the merges file
  std::int64_t ngram = 3;  ///< hashed_ngrams: code points per n-gram, 1-8
  /// [data.pair_kinds]: pair kind -> relative share of pass-B rows (empty: each kind's share of
  /// the pairs). When given, every kind of the train split must be listed (0 leaves it out).
  OptionTable pair_kinds;
  /// How pass B draws each kind's pairs: "pairs" (every pair equally often) or "products"
  /// (every target product equally often, its pairs taking turns; data::PairSampling).
  std::string pair_sampling = "pairs";
  /// Manifest paths (images) that resolve outside the manifest's directory ("..", absolute
  /// paths, symlinks pointing out) are errors unless this is true.
  bool allow_outside_paths = false;
  /// Images with more pixels (width x height, read from the file's header before decoding) are
  /// reported and skipped: a 30000 x 30000 PNG would otherwise take 14 GB to decode.
  std::int64_t max_image_pixels = 25'000'000;
  /// [data.augment]: the training images' augmentations (evaluation never augments).
  data::Augmentation augment;
};

struct TrainConfig {
  std::int64_t steps = 2000;
  std::int64_t batch_size = 64;
  double lr = 3e-4;
  std::int64_t warmup_steps = 100;
  double weight_decay = 0.05;
  double grad_clip = 1.0;
  std::int64_t seed = 0;
  std::string precision = "fp32";  ///< "fp32" or "bf16" (autocast on CPUs with AVX-512 bf16)
  /// Torch intra-op threads; 0 = by precision (train::apply_threads): fp32 matrix products run
  /// in OpenBLAS, which already uses every core (more torch threads oversubscribe: 2.5x slower
  /// here), bf16 ones in oneDNN, which uses torch's threads (2 threads: 1.6x faster here).
  std::int64_t threads = 0;
  /// Divide each pass's weighted loss sum by the sum of its weights, so adding tasks to a
  /// pass does not scale its gradient (ITC starves next to three retrieval losses otherwise).
  bool normalize_pass_weights = false;
  /// Pass A's views: "shared" (one masked view for all five tasks) or "separate" (ITC and ITM
  /// see the unmasked text and image, MLM and MIM the masked ones, as ALBEF and the paper do;
  /// the unmasked image also serves as MIM's stop-gradient target). "shared" is the default
  /// because it measured better here: README "Ablations".
  std::string views = "shared";
  std::int64_t cross_pair_batch_size = 0;  ///< pass B rows; 0 = half of batch_size
  /// Micro-batches per optimizer step (gradient accumulation): the batches above are cut into
  /// this many forward/backward passes, so a machine trains at a batch it cannot hold at once.
  std::int64_t accumulate = 1;
  std::int64_t log_every = 10;             ///< steps per metrics.jsonl line (losses averaged)
  std::int64_t checkpoint_every = 500;     ///< steps between checkpoints (and one at the end)
  std::int64_t keep_checkpoints = 3;       ///< newest step-N.pt files kept (last.pt links the newest)
  /// "cpu", "cuda" or "cuda:N". Under torchrun "cuda" means cuda:LOCAL_RANK.
  std::string device = "cpu";
  /// A step whose loss or gradient is NaN or infinite is skipped (weights, optimizer state and
  /// buffers untouched) and logged; this many skipped steps in a row stop the run, its last
  /// checkpoint from a good step intact.
  std::int64_t max_nonfinite = 5;
  /// A moving average of the weights (train/weight_average.hpp): each step it moves toward the
  /// trained weights by 1 - min(ema_decay, (1 + step) / (10 + step)); checkpoints keep it
  /// beside the weights, and evaluate, embed, export and finetune read it. It is also the
  /// momentum model of the tasks' `distill` and `momentum_keys`. 0 = off.
  double ema_decay = 0;
};

/// [dist]: data-parallel training when launched with WORLD_SIZE > 1 (torchrun); ignored by a
/// single process, so one config serves both.
struct DistConfig {
  double timeout_s = 300;        ///< a lost or hung rank ends the others within this
  std::string backend = "auto";  ///< "auto" (NCCL on CUDA, Gloo on CPU), "gloo" or "nccl"
  std::int64_t bucket_mb = 25;   ///< gradient all-reduce bucket size (DDP's default)
};

/// [finetune]: adapting a pre-trained model to one downstream task (cmm::eval::downstream).
struct FinetuneConfig {
  std::int64_t steps = 300;
  std::int64_t batch_size = 64;
  double lr = 1e-4;        ///< the pre-trained networks
  double head_lr = 1e-3;   ///< a new classification head
  std::int64_t warmup_steps = 20;
};

/// [eval]: how evaluate scores the downstream tasks.
struct EvalConfig {
  std::string search = "exact";        ///< "exact", or "hnsw" / "ivf_pq" for large catalogs (README: Benchmarks)
  // The search's own knobs (eval::SearchOptions); 0 = its default. Setting one that
  // eval.search does not read is an error.
  std::int64_t hnsw_m = 0;           ///< hnsw: graph neighbours per node (default 32)
  std::int64_t ef_construction = 0;  ///< hnsw: candidates while building (default 200)
  std::int64_t ef_search = 0;        ///< hnsw: candidates while searching (default 128)
  std::int64_t ivf_lists = 0;        ///< ivf_pq: cells (default sqrt(catalog size))
  std::int64_t pq_bytes = 0;         ///< ivf_pq: bytes per vector, must divide model.embed_dim (default D / 4)
  std::int64_t nprobe = 0;           ///< ivf_pq: cells scanned per query (default 32)
  std::int64_t batch_size = 128;       ///< embedding batch
  std::int64_t fusion_split = 0;       ///< fusion layers each modality runs alone (0 = all joint)
  std::int64_t fashion_mnist_train = 2000;  ///< Fashion-MNIST images for centroids / fine-tuning
  std::int64_t fashion_mnist_test = 1000;   ///< Fashion-MNIST test images scored
  /// evaluate's hybrid reference row: the model's cosine plus this times the trigram TF-IDF
  /// cosine (eval::as_hybrid); 0 leaves the row out
  double hybrid_weight = 1.0;
};

/// One [tasks.<name>] table; weight 0 switches a compiled-in task off at run time. Every other
/// key is one of the task's hyper-parameters, checked against the recipe's task when the
/// training step is built (core/options.hpp).
struct TaskConfig {
  double weight = 1.0;
  OptionTable options;
};

struct Config {
  ModelConfig model = presets::model("small");
  DataConfig data;
  TrainConfig train;
  FinetuneConfig finetune;
  EvalConfig eval;
  DistConfig dist;
  std::map<std::string, TaskConfig> tasks;  ///< keyed by snake_case task name ("itc", ...)
  /// [schedule]: the modality-randomization schedule's options (split_weights, drop_text,
  /// drop_image, two_tower_start, two_tower_end), checked against the recipe's schedule.
  OptionTable schedule;
};

template <class F> void visit_fields(DataConfig& c, F&& f) {
  f("dir", c.dir); f("workers", c.workers); f("tokenizer", c.tokenizer); f("vocab", c.vocab); f("merges", c.merges);
  f("ngram", c.ngram); f("pair_kinds", c.pair_kinds); f("pair_sampling", c.pair_sampling);
  f("allow_outside_paths", c.allow_outside_paths);
  f("max_image_pixels", c.max_image_pixels); f("augment", c.augment);
}
template <class F> void visit_fields(TrainConfig& c, F&& f) {
  f("steps", c.steps); f("batch_size", c.batch_size); f("lr", c.lr);
  f("warmup_steps", c.warmup_steps); f("weight_decay", c.weight_decay);
  f("grad_clip", c.grad_clip); f("seed", c.seed); f("precision", c.precision);
  f("threads", c.threads); f("normalize_pass_weights", c.normalize_pass_weights); f("views", c.views);
  f("cross_pair_batch_size", c.cross_pair_batch_size); f("log_every", c.log_every);
  f("checkpoint_every", c.checkpoint_every); f("keep_checkpoints", c.keep_checkpoints);
  f("device", c.device); f("accumulate", c.accumulate); f("max_nonfinite", c.max_nonfinite);
  f("ema_decay", c.ema_decay);
}
template <class F> void visit_fields(DistConfig& c, F&& f) {
  f("timeout_s", c.timeout_s); f("backend", c.backend); f("bucket_mb", c.bucket_mb);
}
template <class F> void visit_fields(FinetuneConfig& c, F&& f) {
  f("steps", c.steps); f("batch_size", c.batch_size); f("lr", c.lr); f("head_lr", c.head_lr);
  f("warmup_steps", c.warmup_steps);
}
template <class F> void visit_fields(EvalConfig& c, F&& f) {
  f("search", c.search); f("batch_size", c.batch_size); f("fusion_split", c.fusion_split);
  f("hnsw_m", c.hnsw_m); f("ef_construction", c.ef_construction); f("ef_search", c.ef_search);
  f("ivf_lists", c.ivf_lists); f("pq_bytes", c.pq_bytes); f("nprobe", c.nprobe);
  f("fashion_mnist_train", c.fashion_mnist_train); f("fashion_mnist_test", c.fashion_mnist_test);
  f("hybrid_weight", c.hybrid_weight);
}

inline void validate(const Config& c, const std::string& file = "") {
  validate(c.model, file);
  const Location at{file, 0, ""};
  const auto& t = c.train;
  detail::require(t.steps >= 1, at, "train.steps", "must be at least 1, got " + std::to_string(t.steps));
  detail::require(t.batch_size > 0, at, "train.batch_size", "must be at least 1");
  detail::require(t.lr > 0, at, "train.lr", "must be positive");
  detail::require(t.warmup_steps >= 0, at, "train.warmup_steps", "must not be negative");
  detail::require(t.weight_decay >= 0, at, "train.weight_decay", "must not be negative");
  detail::require(t.grad_clip >= 0, at, "train.grad_clip", "must not be negative (0 = off)");
  detail::require(t.precision == "fp32" || t.precision == "bf16", at, "train.precision",
                  "must be \"fp32\" or \"bf16\", got \"" + t.precision + "\"");
  detail::require(t.threads >= 0, at, "train.threads", "must not be negative (0 = by precision)");
  detail::require(t.views == "separate" || t.views == "shared", at, "train.views",
                  "must be \"separate\" or \"shared\", got \"" + t.views + "\"");
  detail::require(c.data.workers >= 0, at, "data.workers", "must not be negative");
  detail::require(c.data.pair_sampling == "pairs" || c.data.pair_sampling == "products", at, "data.pair_sampling",
                  "must be \"pairs\" or \"products\", got \"" + c.data.pair_sampling + "\"");
  detail::require(c.data.max_image_pixels >= 1, at, "data.max_image_pixels", "must be at least 1");
  data::validate(c.data.augment, at, "data.augment.");
  detail::require(t.max_nonfinite >= 1, at, "train.max_nonfinite", "must be at least 1 (1 = stop at the first)");
  detail::require(t.ema_decay >= 0 && t.ema_decay < 1, at, "train.ema_decay", "must be in [0, 1) (0 = off)");
  const auto& tok = c.data.tokenizer;
  detail::require(tok == "learned_bpe" || tok == "wordpiece" || tok == "gpt2_bpe" || tok == "hashed_ngrams", at,
                  "data.tokenizer",
                  "must be \"learned_bpe\", \"wordpiece\", \"gpt2_bpe\" or \"hashed_ngrams\", got \"" + tok + "\"");
  const bool vocabulary_file = tok == "wordpiece" || tok == "gpt2_bpe";
  detail::require(!vocabulary_file || !c.data.vocab.empty(), at, "data.vocab",
                  "data.tokenizer = \"" + tok + "\" reads its vocabulary from this file; it is not set");
  detail::require(vocabulary_file || c.data.vocab.empty(), at, "data.vocab",
                  "does nothing with data.tokenizer = \"" + tok + "\" (it has no vocabulary file)");
  detail::require(tok == "hashed_ngrams" || c.data.ngram == DataConfig{}.ngram, at, "data.ngram",
                  "does nothing with data.tokenizer = \"" + tok + "\" (only hashed_ngrams has n-grams)");
  detail::require(c.data.ngram >= 1 && c.data.ngram <= 8, at, "data.ngram",
                  "must be in [1, 8], got " + std::to_string(c.data.ngram));
  detail::require(tok != "hashed_ngrams" || c.model.text.vocab_size >= 4, at, "model.text.vocab_size",
                  "hashed n-grams need at least one bucket besides pad, unk and mask (>= 4)");
  detail::require(tok == "gpt2_bpe" || c.data.merges.empty(), at, "data.merges",
                  "does nothing with data.tokenizer = \"" + tok + "\" (only gpt2_bpe has a merges file)");
  detail::require(tok != "gpt2_bpe" || !c.data.merges.empty(), at, "data.merges",
                  "data.tokenizer = \"gpt2_bpe\" reads its merges (vocab.bpe) from this file; it is not set");
  detail::require(t.cross_pair_batch_size >= 0, at, "train.cross_pair_batch_size", "must not be negative (0 = half)");
  detail::require(t.log_every > 0, at, "train.log_every", "must be at least 1");
  detail::require(t.accumulate >= 1, at, "train.accumulate", "must be at least 1 (1 = no accumulation)");
  detail::require(t.checkpoint_every > 0, at, "train.checkpoint_every", "must be at least 1");
  detail::require(t.keep_checkpoints >= 1, at, "train.keep_checkpoints", "must be at least 1 (the newest)");
  const bool cuda_index = t.device.rfind("cuda:", 0) == 0 && t.device.size() > 5 &&
                          t.device.find_first_not_of("0123456789", 5) == std::string::npos;
  detail::require(t.device == "cpu" || t.device == "cuda" || cuda_index, at, "train.device",
                  "must be \"cpu\", \"cuda\" or \"cuda:N\", got \"" + t.device + "\"");
  const auto& d = c.dist;
  detail::require(d.timeout_s >= 1, at, "dist.timeout_s", "must be at least 1 (seconds)");
  detail::require(d.backend == "auto" || d.backend == "gloo" || d.backend == "nccl", at, "dist.backend",
                  "must be \"auto\", \"gloo\" or \"nccl\", got \"" + d.backend + "\"");
  detail::require(d.bucket_mb > 0, at, "dist.bucket_mb", "must be at least 1");
  const auto& f = c.finetune;
  detail::require(f.steps >= 0, at, "finetune.steps", "must not be negative");
  detail::require(f.batch_size > 1, at, "finetune.batch_size", "must be at least 2 (contrastive batches)");
  detail::require(f.lr > 0, at, "finetune.lr", "must be positive");
  detail::require(f.head_lr > 0, at, "finetune.head_lr", "must be positive");
  detail::require(f.warmup_steps >= 0, at, "finetune.warmup_steps", "must not be negative");
  const auto& e = c.eval;
  detail::require(e.search == "exact" || e.search == "hnsw" || e.search == "ivf_pq", at, "eval.search",
                  "must be \"exact\", \"hnsw\" or \"ivf_pq\", got \"" + e.search + "\"");
  for (const auto& [key, value, reader] :
       {std::tuple{"hnsw_m", e.hnsw_m, "hnsw"}, std::tuple{"ef_construction", e.ef_construction, "hnsw"},
        std::tuple{"ef_search", e.ef_search, "hnsw"}, std::tuple{"ivf_lists", e.ivf_lists, "ivf_pq"},
        std::tuple{"pq_bytes", e.pq_bytes, "ivf_pq"}, std::tuple{"nprobe", e.nprobe, "ivf_pq"}}) {
    detail::require(value >= 0, at, std::string("eval.") + key, "must not be negative (0 = the search's default)");
    detail::require(value == 0 || e.search == reader, at, std::string("eval.") + key,
                    std::string("only eval.search = \"") + reader + "\" reads it, and eval.search is \"" + e.search + "\"");
  }
  detail::require(e.hnsw_m == 0 || e.hnsw_m >= 2, at, "eval.hnsw_m", "must be at least 2");
  detail::require(e.pq_bytes == 0 || c.model.embed_dim % e.pq_bytes == 0, at, "eval.pq_bytes",
                  "must divide model.embed_dim = " + std::to_string(c.model.embed_dim));
  detail::require(e.batch_size > 0, at, "eval.batch_size", "must be at least 1");
  detail::require(e.fusion_split >= 0 && e.fusion_split <= c.model.fusion.layers, at, "eval.fusion_split",
                  "must be in [0, model.fusion.layers = " + std::to_string(c.model.fusion.layers) + "]");
  detail::require(e.fashion_mnist_train > 0, at, "eval.fashion_mnist_train", "must be at least 1");
  detail::require(e.fashion_mnist_test > 0, at, "eval.fashion_mnist_test", "must be at least 1");
  detail::require(std::isfinite(e.hybrid_weight) && e.hybrid_weight >= 0, at, "eval.hybrid_weight",
                  "must be a finite number, at least 0 (0 = no hybrid row)");
  for (const auto& [name, task] : c.tasks)
    detail::require(task.weight >= 0, at, "tasks." + name + ".weight", "must not be negative");
}

}  // namespace commercemm
