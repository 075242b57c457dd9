"""Similar resolved cases: the embedding model, its threshold on the evaluation set, the vectors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select, update

from storage.db import create_db_engine, session_factory
from storage.models import Case, CaseVector
from storage.uow import UnitOfWorkFactory
from tests.conftest import FakeClock
from tests.similar_eval import load_resolved, load_set, new_case_text
from workflows.embedding import DOCUMENT_TOKENS, Embedder
from workflows.similarity import MAX_SIMILAR, SIMILARITY_THRESHOLD, SimilarCases

REFERENCE = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "minilm_reference.json"
TEAM = "T0SIMILAR"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """One loaded model for the module (loading takes about a second)."""
    model = Embedder()
    model.warm_up()
    return model


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


def test_the_installed_model_matches_sentence_transformers(embedder: Embedder) -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    pairs = list(zip(reference["texts"], reference["vectors_float16_base64"], strict=True))
    # Every fifth text: new cases in English and Spanish, and whole resolved records.
    for text, encoded in pairs[::5]:
        expected = np.frombuffer(base64.b64decode(encoded), dtype=np.float16).astype(np.float32)
        vector = embedder.embed(text, max_tokens=DOCUMENT_TOKENS)
        assert vector.shape == (384,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
        assert float(vector @ expected / np.linalg.norm(expected)) >= 0.99, text[:60]


def test_repeats_are_found_and_unrelated_cases_get_no_offer(
    engine: Engine, embedder: Embedder
) -> None:
    data = load_set()
    ids = load_resolved(engine, data, TEAM)
    uows = UnitOfWorkFactory(session_factory(engine))
    similar = SimilarCases(embedder)
    assert similar.embed_due(uows, FakeClock()) == len(data["resolved"])

    found = 0
    for repeat in data["repeats"]:
        offer = similar.similar_to_text(
            uows, team_id=TEAM, text=new_case_text(repeat), visible=lambda _c: True
        )
        assert len(offer.cases) <= MAX_SIMILAR
        assert all(c.score >= SIMILARITY_THRESHOLD for c in offer.cases)
        found += ids[repeat["of"]] in [c.case_id for c in offer.cases]
    assert found / len(data["repeats"]) >= 0.8

    offered = [
        u["summary"]
        for u in data["unrelated"]
        if similar.similar_to_text(
            uows, team_id=TEAM, text=new_case_text(u), visible=lambda _c: True
        )
    ]
    assert len(offered) <= 0.1 * len(data["unrelated"]), offered


def test_a_spanish_repeat_finds_the_spanish_case_with_its_answer_and_experts(
    engine: Engine, embedder: Embedder
) -> None:
    data = load_set()
    ids = load_resolved(engine, data, TEAM)
    uows = UnitOfWorkFactory(session_factory(engine))
    similar = SimilarCases(embedder)
    similar.embed_due(uows, FakeClock())

    offer = similar.similar_to_text(
        uows,
        team_id=TEAM,
        text="Nos han cobrado dos veces la renovación anual\nDos cargos iguales en la tarjeta.",
        visible=lambda _c: True,
        exclude_users=["U0EXP0003"],
    )
    first = offer.cases[0]
    assert first.case_id == ids["R60"]
    assert first.summary == "Cobro duplicado de la suscripción anual"
    assert first.answer.startswith("Reembolsamos el segundo cargo")
    assert first.thread_ts
    # Who resolved, claimed or first answered it, never the person excluded (the filer).
    assert offer.experts
    assert "U0EXP0003" not in [e.user_id for e in offer.experts]


def test_only_visible_cases_of_the_same_workspace_are_offered(
    engine: Engine, embedder: Embedder
) -> None:
    data = load_set()
    ids = load_resolved(engine, data, TEAM)
    uows = UnitOfWorkFactory(session_factory(engine))
    similar = SimilarCases(embedder)
    similar.embed_due(uows, FakeClock())
    text = "Charged twice for the monthly plan\nTwo identical $499 charges on our card."

    offer = similar.similar_to_text(
        uows, team_id=TEAM, text=text, visible=lambda c: c.id != ids["R41"]
    )
    assert ids["R41"] not in [c.case_id for c in offer.cases]
    assert not similar.similar_to_text(uows, team_id="T0ELSEWHERE", text=text, visible=bool)

    with uows() as uow:  # a reopened case is not an answer any more
        uow.session.execute(update(Case).where(Case.id == ids["R41"]).values(status="swarming"))
        uow.commit()
    offer = similar.similar_to_text(uows, team_id=TEAM, text=text, visible=lambda _c: True)
    assert ids["R41"] not in [c.case_id for c in offer.cases]


def test_a_vector_made_by_one_process_is_found_by_another(
    engine: Engine, embedder: Embedder
) -> None:
    data = load_set()
    data["resolved"] = data["resolved"][:10]
    ids = load_resolved(engine, data, TEAM)
    uows = UnitOfWorkFactory(session_factory(engine))
    worker, other = SimilarCases(embedder), SimilarCases(embedder)
    text = "OAuth refresh returns invalid_grant and users must reconnect the integration"
    assert not other.similar_to_text(uows, team_id=TEAM, text=text, visible=bool)

    clock = FakeClock(datetime(2026, 2, 1, tzinfo=UTC))
    assert worker.embed_due(uows, clock) == 10
    offer = other.similar_to_text(uows, team_id=TEAM, text=text, visible=bool)
    assert offer.cases[0].case_id == ids["R03"]
    with uows() as uow:
        assert uow.session.scalar(select(Case.vector_due_at).where(Case.id == ids["R03"])) is None
        stored = uow.session.scalar(select(CaseVector).where(CaseVector.case_id == ids["R03"]))
        assert stored is not None and len(stored.vector) == 384 * 4


def test_a_record_that_changes_while_it_is_embedded_stays_owed(
    engine: Engine, embedder: Embedder
) -> None:
    data = load_set()
    data["resolved"] = data["resolved"][:1]
    ids = load_resolved(engine, data, TEAM)
    uows = UnitOfWorkFactory(session_factory(engine))
    clock = FakeClock(datetime(2026, 2, 1, tzinfo=UTC))

    class ChangingEmbedder:
        """The record changes (a new thread reply) while the model runs."""

        def embed(self, text: str, *, max_tokens: int = DOCUMENT_TOKENS) -> np.ndarray:
            with uows() as uow:
                uow.session.execute(
                    update(Case).where(Case.id == ids["R01"]).values(vector_due_at=clock.now())
                )
                uow.commit()
            return embedder.embed(text, max_tokens=max_tokens)

    SimilarCases(ChangingEmbedder()).embed_due(uows, clock)  # type: ignore[arg-type]
    with uows() as uow:
        assert uow.session.scalar(select(Case.vector_due_at).where(Case.id == ids["R01"]))
        assert uow.session.scalar(select(CaseVector.case_id)) == ids["R01"]
