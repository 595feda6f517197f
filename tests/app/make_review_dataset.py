"""Writes a copy of a dataset directory with a pair kind of its own: product reviews.

Usage: make_review_dataset.py SRC DST
Each catalog product of every split gets a review (text only) paired with it as
{"kind": "review"}; the rest of SRC is kept as it is (images linked, not copied).
"""
import json
import os
import shutil
import sys

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for name in os.listdir(src):
    path = os.path.join(src, name)
    if os.path.isdir(path):
        os.symlink(os.path.abspath(path), os.path.join(dst, name))
    else:
        shutil.copy(path, os.path.join(dst, name))
for split in ("train", "val", "test"):
    catalog = os.path.join(src, f"catalog-{split}.jsonl")
    if not os.path.exists(catalog):
        continue
    with open(catalog) as f, open(os.path.join(dst, f"sources-{split}.jsonl"), "a") as sources, \
            open(os.path.join(dst, f"pairs-{split}.jsonl"), "a") as pairs:
        for line in f:
            item = json.loads(line)
            words = list(reversed(item.get("tags", []))) or [item["title"]]
            review = {"id": f"r:{item['product_id']}:{split}", "title": f"my {' '.join(words)}: five stars",
                      "language": "en"}
            sources.write(json.dumps(review, ensure_ascii=False) + "\n")
            pairs.write(json.dumps({"source": review["id"], "target": item["product_id"], "kind": "review"}) + "\n")
