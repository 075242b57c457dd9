"""Similar resolved cases: retrieval quality against plain full-text search, and speed at scale.

    python benchmarks/similar.py                      # everything, SQLite and PostgreSQL
    python benchmarks/similar.py --cases 20000 --no-postgres

1. Embeddings: the model as installed (int8 ONNX on ONNX Runtime) against reference vectors
   computed with sentence-transformers on PyTorch (benchmarks/data/minilm_reference.json, made
   by benchmarks/minilm_reference.py): cosine per text, min and median.
2. Quality, on the evaluation set tests/data/similar_cases.yaml (resolved cases with details,
   resolutions and thread replies; held-out repeats, a third of them hard; unrelated new
   cases), loaded into each database through alembic: recall@1, recall@3, MRR and the
   false-offer rate (share of unrelated cases offered anything) of
   - full text: today's `storage.search` with the new case's summary as the words, resolved
     cases only, hits ranked as search ranks them;
   - semantic: `SimilarCases` (the default), cosine of the new case's text against each
     record's vector, offered only above SIMILARITY_THRESHOLD;
   and, database-independent, any-word BM25 over the same records and its reciprocal-rank
   fusion with the semantic ranking, to show whether lexical retrieval adds anything here.
3. Speed: `--cases` more resolved cases (vectors near the evaluation records, so every lookup
   reads its full candidate list) added to each database; then the lookup for every new case
   of the set, `--rounds` times: embedding, index refresh, nearest neighbours, reading the
   candidates. p50/p95 in ms of wall-clock time and of the process's CPU time (what the
   lookup costs whatever else the machine runs), the embedding and the vector search alone,
   the index's first load, and the memory of the vectors.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from storage.db import create_db_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, CaseStatus, CaseVector  # noqa: E402
from storage.search import SearchQuery, search  # noqa: E402
from storage.uow import UnitOfWorkFactory  # noqa: E402
from storage.vectors import to_bytes  # noqa: E402
from tests.pgcluster import throwaway_postgres  # noqa: E402
from tests.similar_eval import load_resolved, load_set, new_case_text  # noqa: E402
from workflows.clock import SystemClock  # noqa: E402
from workflows.embedding import DOCUMENT_TOKENS, MODEL_ID, Embedder  # noqa: E402
from workflows.similarity import SIMILARITY_THRESHOLD, SimilarCases  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_FILE = ROOT / "benchmarks" / "data" / "minilm_reference.json"
TEAM = "T0BENCH01"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BATCH = 5000
THRESHOLDS = (0.35, 0.40, 0.45, 0.50, 0.55)


def p95(values: list[float]) -> float:
    return sorted(values)[max(math.ceil(len(values) * 0.95) - 1, 0)]


# --- 1. the embeddings against sentence-transformers ------------------------------------------


def reference_check(embedder: Embedder) -> dict[str, float]:
    data = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    cosines = []
    for text_, encoded in zip(data["texts"], data["vectors_float16_base64"], strict=True):
        reference = np.frombuffer(base64.b64decode(encoded), dtype=np.float16).astype(np.float32)
        ours = embedder.embed(text_, max_tokens=DOCUMENT_TOKENS)
        cosines.append(float(ours @ reference / np.linalg.norm(reference)))
    return {
        "texts": len(cosines),
        "min": min(cosines),
        "median": statistics.median(cosines),
        "below_0.99": sum(c < 0.99 for c in cosines),
        "reference": data["computed_with"],
    }


# --- 2. quality ---------------------------------------------------------------------------------


def full_text_ranking(session, summary: str) -> list[int]:
    page = search(
        session,
        SearchQuery(team_id=TEAM, words=summary, statuses=(CaseStatus.RESOLVED,), limit=10),
    )
    ranking: list[int] = []
    for hit in page.hits:
        if hit.case_id not in ranking:
            ranking.append(hit.case_id)
    return ranking


def scores(rankings: list[list[int]], gold: list[int], unrelated: list[list[int]]) -> dict:
    ranks = [r.index(g) + 1 if g in r else None for r, g in zip(rankings, gold, strict=True)]
    return {
        "r1": sum(1 for r in ranks if r == 1) / len(ranks),
        "r3": sum(1 for r in ranks if r is not None and r <= 3) / len(ranks),
        "mrr": sum(1 / r for r in ranks if r is not None) / len(ranks),
        "false": sum(1 for r in unrelated if r) / len(unrelated),
        "ranks": ranks,
    }


def subset_r3(ranks: list[int | None], mask: list[bool]) -> str:
    picked = [r for r, m in zip(ranks, mask, strict=True) if m]
    found = sum(1 for r in picked if r is not None and r <= 3)
    return f"{found}/{len(picked)}"


def quality(name: str, db_url: str, data: dict[str, Any], engine_similar: SimilarCases) -> dict:
    engine = create_db_engine(db_url)
    upgrade(engine)
    ids = load_resolved(engine, data, TEAM)
    uow_factory = UnitOfWorkFactory(session_factory(engine))
    # Every neighbour with its score; each threshold is then applied here.
    similar = SimilarCases(engine_similar.embedder, threshold=-1.0)
    started = time.perf_counter()
    similar.embed_due(uow_factory, SystemClock())
    embed_seconds = time.perf_counter() - started
    gold = [ids[r["of"]] for r in data["repeats"]]
    out: dict[str, Any] = {"embed_per_case_ms": embed_seconds * 1000 / len(ids)}
    sessions = session_factory(engine)
    with sessions() as session:
        lexical = [full_text_ranking(session, r["summary"]) for r in data["repeats"]]
        lexical_u = [full_text_ranking(session, u["summary"]) for u in data["unrelated"]]
    out["full text"] = scores(lexical, gold, lexical_u)

    def semantic(item: dict[str, Any]) -> list[tuple[int, float]]:
        found = similar.similar_to_text(
            uow_factory, team_id=TEAM, text=new_case_text(item), visible=lambda _c: True, limit=10
        )
        return [(c.case_id, c.score) for c in found.cases]

    repeats = [semantic(r) for r in data["repeats"]]
    unrelated = [semantic(u) for u in data["unrelated"]]

    def above(results: list[list[tuple[int, float]]], threshold: float) -> list[list[int]]:
        return [[case_id for case_id, score in r if score >= threshold] for r in results]

    out["semantic"] = scores(
        above(repeats, SIMILARITY_THRESHOLD), gold, above(unrelated, SIMILARITY_THRESHOLD)
    )
    out["sweep"] = {t: scores(above(repeats, t), gold, above(unrelated, t)) for t in THRESHOLDS}
    engine.dispose()
    return out


WORD = re.compile(r"\w+", re.UNICODE)


def bm25_rankings(data: dict[str, Any], texts: list[str]) -> list[list[int]]:
    """Any-word Okapi BM25 (k1 1.2, b 0.75) of each text over the resolved records."""
    docs = []
    for item in data["resolved"]:
        record = [item["summary"], item.get("details", ""), item.get("customer", "")]
        record += [item.get(k) or "" for k in ("root_cause", "resolution", "workaround")]
        docs.append(Counter(WORD.findall(" ".join(record + item.get("thread", [])).lower())))
    lengths = [sum(d.values()) for d in docs]
    average = sum(lengths) / len(lengths)
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    out = []
    for query in texts:
        words = set(WORD.findall(query.lower()))
        score = []
        for doc, length in zip(docs, lengths, strict=True):
            s = 0.0
            for w in words & doc.keys():
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                tf = doc[w]
                s += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))
            score.append(s)
        out.append([i for i in sorted(range(n), key=lambda i: -score[i]) if score[i] > 0][:10])
    return out


def lexical_rows(data: dict[str, Any], embedder: Embedder) -> dict[str, dict]:
    """Any-word BM25, and its fusion with the (unthresholded) semantic ranking, by position."""
    keys = [item["key"] for item in data["resolved"]]
    gold = [keys.index(r["of"]) for r in data["repeats"]]
    new = [new_case_text(r) for r in data["repeats"]]
    unrelated = [new_case_text(u) for u in data["unrelated"]]
    bm25 = bm25_rankings(data, new)
    bm25_u = bm25_rankings(data, unrelated)
    records = []
    for item in data["resolved"]:
        parts = [item["summary"], item.get("details", ""), item.get("customer", "")]
        parts += [item.get(k) or "" for k in ("root_cause", "resolution", "workaround")]
        records.append("\n".join(p for p in parts + item.get("thread", []) if p))
    matrix = np.array([embedder.embed(r) for r in records])

    def fused(texts: list[str], lexical: list[list[int]]) -> list[list[int]]:
        out = []
        for text_, lex in zip(texts, lexical, strict=True):
            sem = list(np.argsort(-(matrix @ embedder.embed(text_, max_tokens=128)))[:10])
            rrf: Counter[int] = Counter()
            for ranking in (lex, sem):
                for position, i in enumerate(ranking):
                    rrf[int(i)] += 1 / (60 + position + 1)
            out.append([i for i, _ in rrf.most_common(10)])
        return out

    def agreement(texts: list[str], lexical: list[list[int]]) -> list[list[int]]:
        """Semantic above the threshold, or above 0.36 when BM25 ranks the same case first."""
        out = []
        for text_, lex in zip(texts, lexical, strict=True):
            sem = matrix @ embedder.embed(text_, max_tokens=128)
            order = [int(i) for i in np.argsort(-sem)[:3]]
            out.append(
                [
                    i
                    for i in order
                    if sem[i] >= SIMILARITY_THRESHOLD or (sem[i] >= 0.36 and lex[:1] == [i])
                ]
            )
        return out

    return {
        "semantic, or 0.36 + BM25 first": scores(
            agreement(new, bm25), gold, agreement(unrelated, bm25_u)
        ),
        "BM25 (any word)": scores(bm25, gold, bm25_u),
        "BM25 + semantic (RRF)": scores(fused(new, bm25), gold, fused(unrelated, bm25_u)),
    }


# --- 3. speed -----------------------------------------------------------------------------------


def add_neighbours(engine, count: int, base: np.ndarray, seed: int = 3) -> float:
    """`count` more resolved cases, each with a vector near one evaluation record's."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    with engine.connect() as connection:
        first = connection.execute(text("SELECT max(id) FROM cases")).scalar_one() + 1
    for offset in range(0, count, BATCH):
        size = min(BATCH, count - offset)
        picks = base[rng.integers(0, len(base), size)]
        noise = rng.standard_normal((size, base.shape[1])).astype(np.float32)
        vectors = picks + 0.06 * noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        cases, rows = [], []
        for i in range(size):
            case_id = first + offset + i
            at = START + timedelta(minutes=case_id)
            cases.append(
                {
                    "id": case_id,
                    "team_id": TEAM,
                    "case_number": str(1000000 + case_id),
                    "summary": f"Synthetic resolved case {case_id}",
                    "details": "",
                    "customer": "",
                    "urgency": "low",
                    "topic_key": "api",
                    "region": "",
                    "status": "resolved",
                    "filer_id": "U0AGENT01",
                    "resolved_by": f"U0EXP{case_id % 50:04d}",
                    "confidential": False,
                    "channel_id": "C0API0001",
                    "thread_ts": f"{1700000000 + case_id}.000100",
                    "card_attempts": 1,
                    "resolution": "Synthetic resolution.",
                    "created_at": at,
                    "updated_at": at,
                    "resolved_at": at,
                }
            )
            rows.append(
                {
                    "case_id": case_id,
                    "team_id": TEAM,
                    "model": MODEL_ID,
                    "vector": to_bytes(vectors[i]),
                    "embedded_at": at,
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(Case.__table__), cases)
            connection.execute(insert(CaseVector.__table__), rows)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("COMMIT"))
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(db_url: str, data: dict[str, Any], embedder: Embedder, count: int, rounds: int) -> dict:
    engine = create_db_engine(db_url)
    uow_factory = UnitOfWorkFactory(session_factory(engine))
    with engine.connect() as connection:
        base = np.array(
            [
                np.frombuffer(v, dtype=np.float32)
                for v in connection.execute(text("SELECT vector FROM case_vectors")).scalars()
            ]
        )
    load_seconds = add_neighbours(engine, count, base)
    similar = SimilarCases(embedder)
    before = rss_mib()
    started = time.perf_counter()
    with uow_factory() as uow:
        similar.index.refresh(uow.session)
    first_load = time.perf_counter() - started
    growth = rss_mib() - before
    texts = [new_case_text(c) for c in data["repeats"] + data["unrelated"]]
    times, embed_times, search_times, cpu_times = [], [], [], []
    for _ in range(rounds):
        for text_ in texts:
            t0 = time.perf_counter()
            vector = similar.embedder.embed(text_, max_tokens=128)
            t1 = time.perf_counter()
            similar.index.nearest(TEAM, vector, k=40)
            t2 = time.perf_counter()
            c2 = time.process_time()
            similar.similar_to_text(uow_factory, team_id=TEAM, text=text_, visible=lambda _c: True)
            t3 = time.perf_counter()
            cpu_times.append((time.process_time() - c2) * 1000)
            embed_times.append((t1 - t0) * 1000)
            search_times.append((t2 - t1) * 1000)
            times.append((t3 - t2) * 1000)
    engine.dispose()
    return {
        "vectors": len(similar.index),
        "load_s": load_seconds,
        "first_load_s": first_load,
        "index_mib": similar.index.nbytes / 2**20,
        "rss_growth_mib": growth,
        "p50": statistics.median(times),
        "p95": p95(times),
        "max": max(times),
        "cpu_p50": statistics.median(cpu_times),
        "cpu_p95": p95(cpu_times),
        "embed_p50": statistics.median(embed_times),
        "embed_p95": p95(embed_times),
        "search_p50": statistics.median(search_times),
        "search_p95": p95(search_times),
        "lookups": len(times),
    }


# --- report -------------------------------------------------------------------------------------


def quality_row(database: str, method: str, s: dict, hard: list[bool], spanish: list[bool]) -> str:
    return (
        f"| {database} | {method} | {s['r1']:.2f} | **{s['r3']:.2f}** | {s['mrr']:.2f} | "
        f"{subset_r3(s['ranks'], hard)} | {subset_r3(s['ranks'], spanish)} | {s['false']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="resolved cases for speed")
    parser.add_argument("--rounds", type=int, default=3, help="lookups per new case")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    data = load_set()
    embedder = Embedder()
    embedder.warm_up()
    print(
        f"{platform.machine()}, {platform.python_version()}; evaluation set: "
        f"{len(data['resolved'])} resolved cases, {len(data['repeats'])} repeats "
        f"({sum(1 for r in data['repeats'] if r.get('hard'))} hard, "
        f"{sum(1 for r in data['repeats'] if r.get('lang') == 'es')} Spanish), "
        f"{len(data['unrelated'])} unrelated; threshold {SIMILARITY_THRESHOLD}\n",
        flush=True,
    )
    check = reference_check(embedder)
    print(
        f"Embeddings vs sentence-transformers ({check['reference']}): {check['texts']} texts, "
        f"cosine min {check['min']:.4f}, median {check['median']:.4f}, "
        f"{check['below_0.99']} below 0.99\n",
        flush=True,
    )
    hard = [bool(r.get("hard")) for r in data["repeats"]]
    spanish = [r.get("lang") == "es" for r in data["repeats"]]
    print("| database | method | recall@1 | recall@3 | MRR | hard found@3 | Spanish found@3 "
          "| false offers |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|", flush=True)
    speeds, sweeps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{Path(tmp) / 'similar.db'}")]
        with throwaway_postgres("similar_bench", wanted=not args.no_postgres) as pg_url:
            if pg_url is not None:
                targets.append(("PostgreSQL", pg_url))
            similar = SimilarCases(embedder)
            for name, url in targets:
                q = quality(name, url, data, similar)
                for method in ("full text", "semantic"):
                    print(quality_row(name, method, q[method], hard, spanish), flush=True)
                sweeps.append((name, q["sweep"]))
                if not args.no_speed:
                    speeds.append((name, speed(url, data, embedder, args.cases, args.rounds)))
            for method, s in lexical_rows(data, embedder).items():
                print(quality_row("(in memory)", method, s, hard, spanish), flush=True)
    print("\n| database | threshold | recall@3 | hard found@3 | false offers |")
    print("|---|---|---|---|---|")
    for name, sweep in sweeps:
        for threshold, s in sweep.items():
            print(
                f"| {name} | {threshold:.2f} | {s['r3']:.2f} | {subset_r3(s['ranks'], hard)} "
                f"| {s['false']:.2f} |"
            )
    if speeds:
        print(
            "\n| database | resolved cases | lookup p50 (ms) | p95 (ms) | max (ms) | CPU per "
            "lookup p50 / p95 (ms) | embedding p50 / p95 | vector search p50 / p95 | index first "
            "load (s) | vectors in memory (MiB) | RSS growth (MiB) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, s in speeds:
            print(
                f"| {name} | {s['vectors']:,} | {s['p50']:.1f} | **{s['p95']:.1f}** | "
                f"{s['max']:.1f} | {s['cpu_p50']:.1f} / {s['cpu_p95']:.1f} | "
                f"{s['embed_p50']:.1f} / {s['embed_p95']:.1f} | "
                f"{s['search_p50']:.1f} / {s['search_p95']:.1f} | {s['first_load_s']:.2f} | "
                f"{s['index_mib']:.0f} | {s['rss_growth_mib']:.0f} |"
            )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"\n({speeds[0][1]['lookups']} lookups per database; the lookup includes the "
            f"embedding; load average at the end {load} on {os.cpu_count()} CPUs)"
        )


if __name__ == "__main__":
    main()
