"""Every --json document validates against hfvram/data/schema.json (the schema README documents)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import hfvram

SCHEMA = json.loads((Path(hfvram.__file__).parent / "data" / "schema.json").read_text())

MODELS = ["meta-llama/Llama-2-7b-hf", "deepseek-ai/DeepSeek-V2-Lite", "openai/gpt-oss-20b", "nvidia/Nemotron-H-56B-Base-8K",
          "dslim/bert-large-NER", "meta-llama/Llama-2-7b", "TheBloke/Llama-2-13B-chat-GPTQ"]


@pytest.mark.parametrize("model", MODELS)
def test_document_matches_schema(model):
    doc = hfvram.analyze(model, offline=True, gpu="L40S", context=8192).to_dict()
    jsonschema.validate(doc, SCHEMA)


def test_schema_catches_a_missing_key():
    doc = hfvram.analyze(MODELS[0], offline=True, frameworks=["vllm"], projections=()).to_dict()
    del doc["kv_cache"]["per_token_bytes"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
