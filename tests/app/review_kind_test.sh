#!/usr/bin/env bash
# A pair kind of the dataset's own, with no code: the generic binary trains on a dataset with
# "review" pairs and scores them as review_to_product; a task of the user's own for it
# (examples/review_task.hpp) trains with its hyper-parameter from the command line; and
# [schedule] drop_text reaches the ModalityDropout schedule of that binary (counted).
# Usage: review_kind_test.sh PATH/TO/commercemm PATH/TO/commercemm_review_task RUN_DIR
set -euo pipefail
app=$1
reviews_app=$2
run=$3
source tests/app/script_support.sh
fresh_dir "$run"
python3 tests/app/make_review_dataset.py data/emoji-commerce "$run/data"
tiny+=(--data "$run/data" --set train.steps=6 --set train.log_every=2)

echo "== the copy links the images directory of the original: outside the dataset, refused unless allowed"
set +e
"$app" pretrain "${tiny[@]}" --out "$run/outside" 2> "$run/outside.err"; status=$?
set -e
cat "$run/outside.err"
[ "$status" -eq 2 ] || fail "a symlink out of the dataset: exit status $status, expected 2"
grep -q "catalog-train.jsonl:1: image: 'images/.*' resolves outside the dataset directory" "$run/outside.err" ||
  fail "the error does not name the file, line and field"
tiny+=(--set data.allow_outside_paths=true)

echo "== tiny.toml weighs query, image and post: a review kind without a weight is an error"
set +e
"$app" pretrain "${tiny[@]}" --out "$run/unweighted" 2> "$run/unweighted.err"; status=$?
set -e
cat "$run/unweighted.err"
[ "$status" -eq 2 ] || fail "exit status $status, expected 2"
grep -q "data.pair_kinds.review" "$run/unweighted.err" || fail "the error does not name data.pair_kinds.review"

echo "== the generic binary trains on reviews and scores review_to_product"
"$app" pretrain "${tiny[@]}" --set data.pair_kinds.review=1 --out "$run/generic" > "$run/generic.log"
"$app" evaluate --checkpoint "$run/generic/checkpoints/last.pt" --data "$run/data" --out "$run/generic" \
  --task review_to_product --task query_to_product > "$run/evaluate.log"
cat "$run/evaluate.log"
python3 - "$run/generic" <<'PY'
import json, sys
metrics = json.load(open(f"{sys.argv[1]}/metrics.json"))
reference = json.load(open(f"{sys.argv[1]}/reference.json"))
m = metrics["review_to_product"]
assert set(m) >= {"recall@1", "recall@5", "recall@10", "mrr", "queries"}, m
assert m["queries"] == 90, m  # one review per test product
assert "review_to_product" in reference["trigram_tfidf"], reference  # reviews are text
assert "review_to_product" not in reference["raw_pixels"], reference  # ... with no image
hybrid = reference["model_plus_tfidf"]["review_to_product"]  # the model's cosine plus TF-IDF's
assert hybrid["queries"] == 90 and 0 <= hybrid["mrr"] <= 1, hybrid
print("review_to_product:", m)
PY

echo "== a task of the user's own for reviews; its option from --set; a misspelt option is an error"
"$reviews_app" pretrain "${tiny[@]}" --set data.pair_kinds.review=3 --set tasks.review_to_product.temperature=0.1 \
  --set schedule.drop_text=0.5 --set train.log_every=1 --set train.steps=60 --out "$run/own" > "$run/own.log"
grep -q '"review_to_product"' "$run/own/metrics.jsonl" || fail "no review_to_product loss in metrics.jsonl"
grep -q '"temperature": 0.1' "$run/own/config.json" || fail "the option is not in config.json"
python3 - "$run/own/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
dropped = sum(l["draw"]["dropped_text"] for l in lines)
droppable = sum(l["draw"]["droppable"] for l in lines)
assert droppable > 0, "no pass-B source had both modalities"
share = dropped / droppable
print(f"modality dropout: {dropped} of {droppable} texts dropped ({share:.2f})")
assert 0.35 < share < 0.65, share  # drop_text = 0.5 over some 70 posts
assert all(l["draw"]["drop_text"] == 0.5 for l in lines)
PY
set +e
"$reviews_app" pretrain "${tiny[@]}" --set data.pair_kinds.review=1 --set tasks.review_to_product.temprature=0.1 \
  --out "$run/typo" 2> "$run/typo.err"; status=$?
set -e
cat "$run/typo.err"
[ "$status" -eq 2 ] || fail "exit status $status, expected 2"
grep -q "did you mean 'temperature'" "$run/typo.err" || fail "no suggestion for the misspelt option"
echo "review kind: all checks passed"
