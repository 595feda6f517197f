#!/usr/bin/env bash
# The app from the command line, as a user runs it: pretrain (interrupted by SIGTERM and by
# SIGKILL, then resumed), a config error, finetune, evaluate with a fusion-split sweep, embed
# and plot. Usage: cli_test.sh PATH/TO/commercemm RUN_DIR   (from the repository root)
set -euo pipefail
app=$1
run=$2
source tests/app/script_support.sh
fresh_dir "$run"
tiny+=(--set train.log_every=2)

echo "== a config error names the file, the line and the key, and suggests the nearest key"
printf '[train]\nsteps = 3\nbatchsize = 4\n' > "$run/bad.toml"
set +e
"$app" pretrain --config "$run/bad.toml" --out "$run/bad" 2> "$run/bad.err"
status=$?
set -e
cat "$run/bad.err"
[ "$status" -eq 2 ] || fail "config error exit status $status, expected 2"
grep -q "bad.toml:3" "$run/bad.err" || fail "no file:line in the error"
grep -q "batch_size" "$run/bad.err" || fail "no suggestion in the error"
set +e
"$app" evaluate --checkpoint "$run/no-such.pt" 2> "$run/usage.err"; status=$?
set -e
[ "$status" -eq 2 ] && grep -q "no-such.pt" "$run/usage.err" || fail "a usage error exit status $status, expected 2"

echo "== pretrain, stopped by SIGTERM: it checkpoints and exits 130"
"$app" pretrain "${tiny[@]}" --set train.steps=400 --set train.checkpoint_every=1000 --out "$run/pre" &
pid=$!
for _ in $(seq 1 120); do [ -s "$run/pre/metrics.jsonl" ] && break; sleep 0.5; done
kill -TERM "$pid"
set +e
wait "$pid"
status=$?
set -e
[ "$status" -eq 130 ] || fail "SIGTERM exit status $status, expected 130"
[ -f "$run/pre/checkpoints/last.pt" ] || fail "no checkpoint after SIGTERM"

echo "== resume with fewer total steps; then SIGKILL mid-run and resume again from the last checkpoint"
"$app" pretrain --resume --out "$run/pre" --set train.steps=40 --set train.checkpoint_every=10 | tee "$run/resume.log"
grep -q "resuming at step" "$run/resume.log" || fail "resume did not say where it resumed"
"$app" pretrain "${tiny[@]}" --set train.steps=400 --set train.checkpoint_every=2 --out "$run/killed" &
pid=$!
for _ in $(seq 1 240); do [ -f "$run/killed/checkpoints/step-0000004.pt" ] && break; sleep 0.25; done
kill -KILL "$pid"
wait "$pid" || true
"$app" pretrain --resume --out "$run/killed" --set train.steps=24 | tee "$run/killed.log"
grep -q "resuming at step" "$run/killed.log" || fail "could not resume after SIGKILL"
ls "$run/killed/checkpoints"
! ls -A "$run/killed/checkpoints" | grep -q '\.tmp$' || fail "a temporary file was left behind"

checkpoint="$run/pre/checkpoints/last.pt"
echo "== a second pretrain into the same --out is refused; --resume with --config is refused"
set +e
"$app" pretrain "${tiny[@]}" --out "$run/pre" 2> "$run/again.err"; again=$?
"$app" pretrain --resume --config examples/configs/tiny.toml --out "$run/pre" 2>> "$run/again.err"; mixed=$?
set -e
cat "$run/again.err"
[ "$again" -eq 2 ] && [ "$mixed" -eq 2 ] || fail "expected both to be refused with status 2"

echo "== what a checkpoint fixes is refused: its model, its tokenizer, fewer steps than done, its --out for finetune"
for args in "--set model.embed_dim=32" "--set data.ngram=4" "--set train.steps=1"; do
  set +e
  # shellcheck disable=SC2086
  "$app" pretrain --resume --out "$run/pre" $args 2> "$run/fixed.err"; status=$?
  set -e
  cat "$run/fixed.err"
  [ "$status" -eq 2 ] || fail "pretrain --resume $args: status $status, expected 2"
  grep -Eq "cannot change|already at step" "$run/fixed.err" || fail "pretrain --resume $args: no reason given"
done
sum_before=$(md5sum < "$checkpoint")
set +e
"$app" finetune --checkpoint "$checkpoint" --task image_categorization --out "$run/pre" 2> "$run/ft-pre.err"; status=$?
set -e
[ "$status" -eq 2 ] && grep -q "already holds" "$run/ft-pre.err" || fail "finetune into a pre-training run: status $status"
[ "$(md5sum < "$checkpoint")" = "$sum_before" ] || fail "finetune overwrote the pre-training checkpoint"

echo "== finetune"
"$app" finetune --checkpoint "$checkpoint" --task image_categorization --set finetune.steps=4 \
  --set finetune.batch_size=16 --out "$run/ft" | tee "$run/ft.log"
grep -q '"accuracy"' "$run/ft/metrics.json" || fail "finetune wrote no accuracy"
grep -q '"scored_by": "finetuned_head"' "$run/ft/metrics.json" || fail "finetune did not score its head"
"$app" evaluate --checkpoint "$run/ft/checkpoints/last.pt" --task image_categorization --no-reference --out "$run/ft-eval"
grep -q '"finetuned_head"' "$run/ft-eval/metrics.json" || fail "evaluate ignored the fine-tuned head"
set +e
"$app" finetune --checkpoint "$checkpoint" --task image_categorization --set train.ema_decay=0.9 \
  --out "$run/ft-ema" 2> "$run/ft-ema.err"; status=$?
set -e
[ "$status" -eq 2 ] && grep -q "train.ema_decay" "$run/ft-ema.err" || fail "finetune took train.ema_decay (status $status)"

echo "== evaluate two tasks with the fusion-split sweep, on an explicit benchmark directory"
"$app" evaluate --checkpoint "$checkpoint" --data data/emoji-commerce --task query_to_product --task post_to_product \
  --sweep-fusion-split --out "$run/pre"
for key in query_to_product post_to_product '"recall@1"' '"recall@5"' '"recall@10"' '"mrr"'; do
  grep -q "$key" "$run/pre/metrics.json" || fail "metrics.json lacks $key"
done
[ "$(wc -l < "$run/pre/fusion_sweep.jsonl")" -eq 3 ] || fail "the tiny model has 2 fusion layers: 3 splits expected"
for key in embed_ms_per_item title_change_ms_per_item photo_change_ms_per_item multimodal_from_sides_ms_per_item; do
  [ "$(grep -c "\"$key\": *[0-9]" "$run/pre/fusion_sweep.jsonl")" -eq 3 ] || fail "a fusion_sweep.jsonl line lacks $key"
done
set +e
"$app" evaluate --checkpoint "$checkpoint" --task query_to_prodcut --out "$run/x" 2> "$run/task.err"
status=$?
set -e
[ "$status" -eq 2 ] && grep -q "query_to_product" "$run/task.err" || fail "an unknown task is not a clear error"
cp -r data/emoji-commerce "$run/no-posts"
grep -v '"kind":"post"' data/emoji-commerce/pairs-test.jsonl > "$run/no-posts/pairs-test.jsonl"
set +e
"$app" evaluate --checkpoint "$checkpoint" --data "$run/no-posts" --task post_to_product --no-reference \
  --out "$run/x" 2> "$run/no-posts.err"
status=$?
set -e
[ "$status" -eq 2 ] && grep -q "nothing to score" "$run/no-posts.err" || fail "a task with no queries: status $status"
set +e
"$app" evaluate --checkpoint "$checkpoint" --task query_to_product --set train.lr=5 --out "$run/x" 2> "$run/lr.err"
status=$?
set -e
[ "$status" -eq 2 ] && grep -q "does nothing in .evaluate" "$run/lr.err" || fail "evaluate took train.lr (status $status)"

echo "== embed a manifest"
"$app" embed --checkpoint "$checkpoint" --manifest data/emoji-commerce/sources-test.jsonl --out "$run/emb"
for f in image text multimodal; do
  head -c 6 "$run/emb/$f.npy" | grep -q "NUMPY" || fail "$f.npy is not an .npy file"
done
[ "$(wc -l < "$run/emb/ids.txt")" -eq "$(wc -l < data/emoji-commerce/sources-test.jsonl)" ] || fail "ids.txt has a line per item"
"$app" embed --checkpoint "$checkpoint" --manifest data/emoji-commerce/sources-test.jsonl --index hnsw --out "$run/emb"
[ "$(head -c 4 "$run/emb/multimodal.faiss")" = "IHNf" ] || fail "--index hnsw did not write a FAISS HNSW index"
head -n 3 data/emoji-commerce/sources-test.jsonl > "$run/three.jsonl"
set +e  # IVF-PQ cannot be trained on 3 rows: the earlier output stays as it was
"$app" embed --checkpoint "$checkpoint" --manifest "$run/three.jsonl" --index ivf_pq --out "$run/emb" 2> "$run/ivf.err"
status=$?
set -e
[ "$status" -ne 0 ] && [ "$(wc -l < "$run/emb/ids.txt")" -eq "$(wc -l < data/emoji-commerce/sources-test.jsonl)" ] ||
  fail "a failed index build overwrote the earlier output (status $status)"
"$app" embed --checkpoint "$checkpoint" --manifest "$run/three.jsonl" --out "$run/emb"
[ "$(wc -l < "$run/emb/ids.txt")" -eq 3 ] && [ ! -e "$run/emb/multimodal.faiss" ] ||
  fail "an embed without --index left the earlier output's index beside 3 rows"

echo "== embed --keep-sides, then --update: only a changed title reruns an encoder"
python3 - data/emoji-commerce/catalog-test.jsonl "$run/catalog.jsonl" "$run/catalog-new.jsonl" <<'PY'
import json, os, sys
items = [json.loads(line) for line in open(sys.argv[1])]
for item in items:  # absolute image paths: the copies live outside the dataset directory
    item["image"] = os.path.abspath(os.path.join(os.path.dirname(sys.argv[1]), item["image"]))
open(sys.argv[2], "w").writelines(json.dumps(i) + "\n" for i in items)
items[0]["title"] += " (new edition)"
open(sys.argv[3], "w").writelines(json.dumps(i) + "\n" for i in items)
PY
outside=(--set data.allow_outside_paths=true)
"$app" embed --checkpoint "$checkpoint" --manifest "$run/catalog.jsonl" "${outside[@]}" --keep-sides --out "$run/kept"
[ -f "$run/kept/sides/sides.json" ] || fail "--keep-sides wrote no sides/sides.json"
"$app" embed --checkpoint "$checkpoint" --manifest "$run/catalog.jsonl" "${outside[@]}" --update "$run/kept" --out "$run/same"
python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); assert e["image_sides"]["encoded"] == 0 == e["text_sides"]["encoded"], e' \
  "$run/same/embed.json" || fail "an unchanged manifest reran an encoder"
for f in image text multimodal; do
  cmp -s "$run/kept/$f.npy" "$run/same/$f.npy" || fail "--update of an unchanged manifest changed $f.npy"
done
"$app" embed --checkpoint "$checkpoint" --manifest "$run/catalog-new.jsonl" "${outside[@]}" --update "$run/kept" --out "$run/kept"
python3 - "$run/kept/embed.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
assert e["image_sides"]["encoded"] == 0 and e["text_sides"]["encoded"] == 1, e
assert e["text_sides"]["reused"] > 0 and e["image_sides"]["reused"] > 0, e
PY
set +e
"$app" embed --checkpoint "$checkpoint" --manifest "$run/catalog.jsonl" "${outside[@]}" --fusion-split 1 \
  --update "$run/kept" --out "$run/other-split" 2> "$run/split.err"
status=$?
set -e
[ "$status" -ne 0 ] && grep -q "fusion_split" "$run/split.err" || fail "--update across fusion splits is not a clear error"

echo "== export a checkpoint's model; a new run starts its encoders from it"
"$app" export --checkpoint "$checkpoint" --out "$run/model.safetensors"
grep -qa '"image_encoder.patch_embed.weight"' "$run/model.safetensors" || fail "export lacks the ViT's names"
"$app" pretrain "${tiny[@]}" --set train.steps=2 --set model.image.init="$run/model.safetensors" \
  --set model.text.init="$run/model.safetensors" --out "$run/from-export" 2> "$run/from-export.err" ||
  { cat "$run/from-export.err"; fail "pretrain from an exported model"; }
"$app" export --checkpoint "$run/ft/checkpoints/last.pt" --out "$run/ft.safetensors"
grep -qa '"finetune_head.weight"' "$run/ft.safetensors" && grep -qa 'commercemm.finetune_labels' "$run/ft.safetensors" ||
  fail "export of a fine-tuned checkpoint lacks its head and classes"

echo "== import Hugging Face ViT and BERT files (the tiny preset's sizes) and train from them"
/usr/bin/python3 tests/model/pretrained_reference.py "$run" 40
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'; for w in a b c d e f g h i j k l m n o p q r s t u v w x y z; do echo $w; done
  for w in an the on to '##s' '##ed' '##ing' '##e' sm; do echo "$w"; done; } > "$run/vocab.txt"
bert=(--set model.text.norm=post --set data.tokenizer=wordpiece --set data.vocab="$run/vocab.txt" --set model.text.max_length=15)
"$app" import "${tiny[@]}" "${bert[@]}" --image "$run/vit.safetensors" --text "$run/bert.safetensors" \
  --out "$run/imported.safetensors" 2> "$run/import.err" || { cat "$run/import.err"; fail "import"; }
grep -q "left out" "$run/import.err" || fail "import did not list the classifier and MLM head it left out"
"$app" pretrain "${tiny[@]}" "${bert[@]}" --set train.steps=2 --set model.image.init="$run/imported.safetensors" \
  --set model.text.init="$run/bert.safetensors" --out "$run/from-hf" > /dev/null
set +e
"$app" import "${tiny[@]}" --text "$run/bert.safetensors" --set data.tokenizer=wordpiece \
  --set data.vocab="$run/vocab.txt" --out "$run/x.safetensors" 2> "$run/pre-ln.err"; status=$?
set -e
[ "$status" -eq 2 ] && grep -q "model.text.norm" "$run/pre-ln.err" || fail "BERT into a pre-LN encoder is not a clear error"

echo "== plot"
"$app" plot --run "$run/pre"
for f in losses learning_rate fusion_split; do
  [ -s "$run/pre/plots/$f.png" ] || fail "no $f.png"
done
echo "PASS"
