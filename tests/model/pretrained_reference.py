#!/usr/bin/python3
"""Small Hugging Face ViT and BERT checkpoints, and the outputs of a plain-PyTorch forward.

Usage: /usr/bin/python3 pretrained_reference.py OUT_DIR [VOCAB_SIZE]

Writes, with a safetensors writer of its own (struct + json, no library):
  vit.safetensors        ViTForImageClassification names ("vit." prefix, a classifier),
                         image 32 px, patch 8, 2 layers, width 64, 2 heads
  bert.safetensors       BertForMaskedLM names ("bert." prefix, the "cls." MLM head, the int64
                         position_ids buffer), 2 layers, width 64, 2 heads, 16 positions
  reference.safetensors  the inputs (images, ids, mask, cls_id) and the forward outputs of both
                         in float64: "vit" [2, 17, 64], "bert" [2, 1 + L, 64]

The forward is written here from the Hugging Face modules' definitions, not from the C++ code:
ViT is pre-LN with a final LayerNorm; BERT is post-LN over [CLS] + ids with token type 0. Both
use LayerNorm eps 1e-6 (the C++ encoders' value; the public checkpoints' configs say 1e-12,
a difference far below the test's 1e-5 tolerance on activations of unit scale).
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

WIDTH, HEADS, LAYERS, MLP = 64, 2, 2, 4
IMAGE, PATCH = 32, 8
POSITIONS = 16
EPS = 1e-6
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.float16: "F16"}


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randn(*shape, scale=0.2):
    return torch.randn(*shape, dtype=torch.float64) * scale


def linear(names, prefix, n_in, n_out):
    names[prefix + ".weight"] = randn(n_out, n_in)
    names[prefix + ".bias"] = randn(n_out, scale=0.05)


def norm(names, prefix, weight="weight", bias="bias"):
    names[prefix + "." + weight] = 1 + randn(WIDTH, scale=0.1)
    names[prefix + "." + bias] = randn(WIDTH, scale=0.05)


def layer_norm(x, names, prefix):
    return F.layer_norm(x, (WIDTH,), names[prefix + ".weight"], names[prefix + ".bias"], EPS)


def dense(x, names, prefix):
    return F.linear(x, names[prefix + ".weight"], names[prefix + ".bias"])


def attention(x, names, q, k, v, valid=None):
    b, l, _ = x.shape
    d = WIDTH // HEADS
    split = lambda t: t.view(b, l, HEADS, d).transpose(1, 2)
    scores = split(dense(x, names, q)) @ split(dense(x, names, k)).transpose(-1, -2) / math.sqrt(d)
    if valid is not None:
        scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
    return (scores.softmax(-1) @ split(dense(x, names, v))).transpose(1, 2).reshape(b, l, WIDTH)


def vit(names, images):
    p = "vit."
    x = F.conv2d(images, names[p + "embeddings.patch_embeddings.projection.weight"],
                 names[p + "embeddings.patch_embeddings.projection.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([names[p + "embeddings.cls_token"].expand(x.shape[0], 1, WIDTH), x], 1)
    x = x + names[p + "embeddings.position_embeddings"]
    for i in range(LAYERS):
        l = f"{p}encoder.layer.{i}."
        a = l + "attention.attention."
        x = x + dense(attention(layer_norm(x, names, l + "layernorm_before"), names, a + "query", a + "key", a + "value"),
                      names, l + "attention.output.dense")
        h = F.gelu(dense(layer_norm(x, names, l + "layernorm_after"), names, l + "intermediate.dense"))
        x = x + dense(h, names, l + "output.dense")
    return layer_norm(x, names, p + "layernorm")


def bert(names, ids, mask, cls_id):
    p = "bert.embeddings."
    full = torch.cat([torch.full((ids.shape[0], 1), cls_id, dtype=torch.int64), ids], 1)
    valid = torch.cat([torch.ones(ids.shape[0], 1, dtype=torch.bool), mask.bool()], 1)
    x = names[p + "word_embeddings.weight"][full] + names[p + "position_embeddings.weight"][: full.shape[1]]
    x = x + names[p + "token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (WIDTH,), names[p + "LayerNorm.gamma"], names[p + "LayerNorm.beta"], EPS)
    for i in range(LAYERS):
        l = f"bert.encoder.layer.{i}."
        s = l + "attention.self."
        a = dense(attention(x, names, s + "query", s + "key", s + "value", valid), names, l + "attention.output.dense")
        x = layer_norm(x + a, names, l + "attention.output.LayerNorm")
        h = dense(F.gelu(dense(x, names, l + "intermediate.dense")), names, l + "output.dense")
        x = layer_norm(x + h, names, l + "output.LayerNorm")
    return x


def main():
    out = sys.argv[1]
    vocab = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    torch.manual_seed(0)

    v = {}
    v["vit.embeddings.cls_token"] = randn(1, 1, WIDTH)
    v["vit.embeddings.position_embeddings"] = randn(1, 1 + (IMAGE // PATCH) ** 2, WIDTH)
    v["vit.embeddings.patch_embeddings.projection.weight"] = randn(WIDTH, 3, PATCH, PATCH, scale=0.05)
    v["vit.embeddings.patch_embeddings.projection.bias"] = randn(WIDTH, scale=0.05)
    for i in range(LAYERS):
        l = f"vit.encoder.layer.{i}."
        norm(v, l + "layernorm_before")
        for part in ("query", "key", "value"):
            linear(v, l + "attention.attention." + part, WIDTH, WIDTH)
        linear(v, l + "attention.output.dense", WIDTH, WIDTH)
        norm(v, l + "layernorm_after")
        linear(v, l + "intermediate.dense", WIDTH, MLP * WIDTH)
        linear(v, l + "output.dense", MLP * WIDTH, WIDTH)
    norm(v, "vit.layernorm")
    linear(v, "classifier", WIDTH, 10)

    b = {}
    b["bert.embeddings.word_embeddings.weight"] = randn(vocab, WIDTH)
    b["bert.embeddings.position_embeddings.weight"] = randn(POSITIONS, WIDTH)
    b["bert.embeddings.token_type_embeddings.weight"] = randn(2, WIDTH)
    b["bert.embeddings.position_ids"] = torch.arange(POSITIONS).unsqueeze(0)
    norm(b, "bert.embeddings.LayerNorm", "gamma", "beta")  # the original BERT's names
    for i in range(LAYERS):
        l = f"bert.encoder.layer.{i}."
        for part in ("query", "key", "value"):
            linear(b, l + "attention.self." + part, WIDTH, WIDTH)
        linear(b, l + "attention.output.dense", WIDTH, WIDTH)
        norm(b, l + "attention.output.LayerNorm")
        linear(b, l + "intermediate.dense", WIDTH, MLP * WIDTH)
        linear(b, l + "output.dense", MLP * WIDTH, WIDTH)
        norm(b, l + "output.LayerNorm")
    linear(b, "cls.predictions.transform.dense", WIDTH, WIDTH)
    b["cls.predictions.bias"] = randn(vocab)

    # The checkpoints are float32, as the public ones are: the forward runs on those values.
    as_stored = lambda d: {k: t.float().double() if t.is_floating_point() else t for k, t in d.items()}
    v, b = as_stored(v), as_stored(b)
    images = torch.rand(2, 3, IMAGE, IMAGE, dtype=torch.float64) * 2 - 1
    ids = torch.randint(0, vocab, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.int64)
    mask[1, 6:] = 0
    cls_id = 2
    ref = {
        "images": images.float(), "ids": ids, "mask": mask, "cls_id": torch.tensor([cls_id]),
        "vit": vit(v, images.float().double()), "bert": bert(b, ids, mask, cls_id),
    }
    write_safetensors(f"{out}/vit.safetensors", {k: t.float() if t.is_floating_point() else t for k, t in v.items()})
    write_safetensors(f"{out}/bert.safetensors", {k: t.float() if t.is_floating_point() else t for k, t in b.items()})
    write_safetensors(f"{out}/reference.safetensors", ref)


if __name__ == "__main__":
    main()
