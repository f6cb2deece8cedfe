"""The model registry: names, offline bundled models, integrity, loading once."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.inference.models import BUNDLED, ModelError, ModelIntegrityError, ModelRegistry, UnknownModelError


def test_whisper_1_is_the_default_and_names_resolve(registry):
    assert registry.resolve("whisper-1") == "tiny.en"
    assert registry.resolve(None) == "tiny.en"
    assert registry.resolve("base") == "base"
    assert registry.ids() == ["whisper-1", "tiny.en", "base"]


def test_unknown_model_lists_the_available_ones(registry):
    with pytest.raises(UnknownModelError) as error:
        registry.resolve("large-v3")
    assert error.value.available == ["whisper-1", "tiny.en", "base"]
    assert "large-v3" in str(error.value) and "tiny.en" in str(error.value)


def test_describe_says_what_each_model_is(registry):
    infos = {m.id: m for m in registry.describe()}
    assert infos["whisper-1"].alias_of == "tiny.en" and infos["whisper-1"].is_default
    assert infos["tiny.en"].bundled and infos["tiny.en"].languages == ["en"]
    assert infos["base"].bundled and infos["base"].multilingual
    assert {"en", "de", "ja"} <= set(infos["base"].languages)


def test_models_load_once_and_are_shared(registry):
    assert registry.get("tiny.en") is registry.get("whisper-1")
    assert "tiny.en" in registry.loaded_ids()


def test_the_base_halves_are_joined_and_verified():
    files = BUNDLED["base"].read_files()
    assert set(files) == {"model.bin", "config.json", "vocabulary.txt", "tokenizer.json"}
    assert len(files["model.bin"]) == 2 * 72608766


def test_a_damaged_model_is_refused():
    damaged = dataclasses.replace(BUNDLED["tiny.en"], weights_sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        damaged.read_files()


def test_a_local_ctranslate2_directory_is_a_model(registry, tmp_path):
    home = BUNDLED["tiny.en"].home_dir()
    local = ModelRegistry(str(home))
    assert local.default == home.name
    assert local.resolve("whisper-1") == home.name
    assert local.get(None).model.is_multilingual is False
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(ModelError, match="model.bin"):
        ModelRegistry(str(not_a_model))


def test_a_hub_name_without_hub_access_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = ModelRegistry("small")
    assert registry.resolve("whisper-1") == "small"
    with pytest.raises(ModelError, match="cannot load model 'small'.*tiny.en"):
        registry.get(None)
