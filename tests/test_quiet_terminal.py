"""Library warnings an analyst cannot act on are not printed on every CLI call (issue 27, item 7)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import model.generation, model.loading  # the product's narrow filters
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                     num_attention_heads=2, num_key_value_heads=2)
get_peft_model(LlamaForCausalLM(config), LoraConfig(r=2, target_modules=["q_proj"]))
"""


def _stderr(script: str) -> str:
    done = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True,
                          timeout=300, check=True)
    return done.stderr


def test_wrapping_a_decoder_in_peft_prints_no_deprecation_warning():
    assert "is_gradient_checkpointing" in _stderr(SCRIPT.replace("import model.generation, model.loading", "pass"))
    assert "FutureWarning" not in _stderr(SCRIPT)
