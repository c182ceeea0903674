"""Embedded tiny defaults: tokenizers trained locally from a small fundus vocabulary (nothing can be downloaded).

Used by the demo and the tests to build tiny random-weight models from configs. Real runs pass a Hub id or path.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

CORPUS = (
    "A colour fundus photograph of the left eye right eye. The optic disc is round, pink, with a clear margin and a "
    "small cup; cup-to-disc ratio 0.3 0.5 0.7, enlarged cup, glaucomatous cupping, rim thinning. Retinal vessels are "
    "evenly distributed with normal calibre and mild tortuosity, arteriovenous nicking. The macula and fovea show a "
    "normal reflex; the nerve fibre layer is intact. Lesions: no microaneurysms, scattered haemorrhages, hard "
    "exudates, cotton-wool spots, neovascularisation, drusen, laser scars. Diabetic retinopathy grade 0 1 2 3 4: "
    "none, mild, moderate, severe non-proliferative, proliferative. Diabetic macular oedema present absent. Image "
    "quality good usable reject. Age-related macular degeneration, myopia, cataract, hypertension, normal fundus. "
    "Describe the image. Keep or drop: the caption agrees with the labels. JSON answer reason score."
).split(". ")

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]


def gemma_tokenizer(vocab_size: int = 512):
    """A Gemma-style tokenizer: BPE with byte fallback, spaces as '▁', specials then the 256 <0xNN> byte tokens."""
    from transformers import GemmaTokenizer

    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = None
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=GEMMA_SPECIALS + byte_tokens,
        initial_alphabet=list("▁"),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    state = tok.model.__getstate__()
    import json

    bpe = json.loads(state)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in bpe["merges"]]
    return GemmaTokenizer(vocab=bpe["vocab"], merges=merges, add_bos_token=True, add_eos_token=False)


def byte_level_tokenizer(vocab_size: int = 512, *, specials: tuple[str, ...] = (), suffix: str | None = None):
    """A byte-level BPE as `PreTrainedTokenizerFast` (CLIP uses `suffix='</w>'`; chat models add their specials)."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(end_of_word_suffix=suffix) if suffix else models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    extra = {"end_of_word_suffix": suffix} if suffix else {}
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        **extra,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    if suffix:  # CLIP wraps every text in start/end tokens
        bos, eos = specials[0], specials[1]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def clip_tokenizer(vocab_size: int = 512):
    """CLIP-style tokenizer (`<|startoftext|>`, `<|endoftext|>`, padded with eos) for tiny CLIP models."""
    tok = byte_level_tokenizer(vocab_size, specials=("<|startoftext|>", "<|endoftext|>"), suffix="</w>")
    tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token = (
        "<|startoftext|>",
        "<|endoftext|>",
        "<|endoftext|>",
        "<|endoftext|>",
    )
    tok.model_max_length = 77
    return tok


CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHATML_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def chatml_tokenizer(vocab_size: int = 512):
    """Qwen-style byte-level BPE with ChatML specials and chat template (tiny LM judges and VLM captioners)."""
    tok = byte_level_tokenizer(vocab_size, specials=CHATML_SPECIALS)
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = CHATML_TEMPLATE
    return tok


def save(tokenizer, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    return directory
