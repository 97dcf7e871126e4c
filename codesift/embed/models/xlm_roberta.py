"""XLM-RoBERTa (and RoBERTa): BERT's layers with positions numbered from padding_idx + 1.

fairseq numbered positions after the padding id, so position i of a sequence uses row
pad_token_id + 1 + i of the position table, and the table holds pad_token_id + 1 rows that
no token uses: a 514-row table encodes at most 512 tokens. Everything else is BERT's
(`bert.py` for the numpy forward, `bert_torch.py` for the torch module).
"""
from __future__ import annotations

from dataclasses import dataclass

from codesift.embed.models.bert import ANCHOR, BertConfig, NumpyBert, weight_map  # noqa: F401  (the registry reads them here)

PREFIXES = ("", "roberta.", "model.", "encoder.", "0.auto_model.")


@dataclass(frozen=True)
class XLMRobertaConfig(BertConfig):
    pad_token_id: int = 1

    @property
    def position_offset(self) -> int:
        return self.pad_token_id + 1
