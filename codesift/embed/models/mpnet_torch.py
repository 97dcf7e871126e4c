"""MPNet in PyTorch: BERT's encoder layers (`bert_torch`) with a relative position bias added to
the attention scores of every layer.

Flash attention takes no additive bias, so packed batches are unpacked into a padded batch
here: correct everywhere, fast nowhere; on a GPU MPNet runs padded batches (`packs_with_flash`).
"""
from __future__ import annotations

import torch
from torch import nn

from codesift.embed.models.bert_torch import Bert, EncoderLayer
from codesift.embed.models.layers import Table
from codesift.embed.models.mpnet import MPNetConfig, relative_buckets


class MPNet(nn.Module):
    packs_with_flash = False

    def __init__(self, cfg: MPNetConfig, device=None):
        super().__init__()
        self.config = cfg
        self.tok_embeddings = Table(cfg.vocab_size, cfg.hidden_size, device=device)
        self.pos_embeddings = Table(cfg.max_position_embeddings, cfg.hidden_size, device=device)
        self.embed_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, device=device)
        self.relative_bias = Table(cfg.relative_attention_num_buckets, cfg.num_attention_heads, device=device)
        # bucket of (query, key) for every pair of positions, from the one bucketing function
        self.register_buffer("buckets", torch.empty(cfg.max_tokens, cfg.max_tokens, dtype=torch.long,
                                                    device=device))
        self.layers = nn.ModuleList(EncoderLayer(cfg, device) for _ in range(cfg.num_hidden_layers))

    @staticmethod
    def prepare_state(state: dict[str, torch.Tensor], cfg: MPNetConfig) -> dict[str, torch.Tensor]:
        state = Bert.prepare_state(state, cfg)  # q, k, v fused as in BERT
        state["buckets"] = torch.from_numpy(relative_buckets(cfg.max_tokens))
        return state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token states [batch, seq, hidden] for right-padded `input_ids`; `attention_mask` is 1 on real tokens."""
        t = input_ids.shape[1]
        positions = torch.arange(t, device=input_ids.device) + self.config.position_offset
        x = self.embed_norm(self.tok_embeddings(input_ids) + self.pos_embeddings(positions))
        bias = self.relative_bias(self.buckets[:t, :t]).permute(2, 0, 1).unsqueeze(0).to(x.dtype)  # [1, heads, t, t]
        if attention_mask is not None:
            hidden = torch.finfo(x.dtype).min  # padded keys: no weight (finite: no NaN from inf - inf)
            bias = bias.masked_fill(~attention_mask.bool()[:, None, None, :], hidden)
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def forward_packed(self, ids: torch.Tensor, positions: torch.Tensor, cu_seqlens: torch.Tensor,
                       max_seqlen: int) -> torch.Tensor:
        """Token states [tokens, hidden] for sequences packed end to end (see `Bert.forward_packed`),
        computed as one padded batch."""
        bounds = cu_seqlens.tolist()
        spans = [(s, e) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
        t = max(e - s for s, e in spans)
        padded = ids.new_zeros((len(spans), t), dtype=torch.long)
        mask = ids.new_zeros((len(spans), t), dtype=torch.long)
        for row, (s, e) in enumerate(spans):
            padded[row, :e - s] = ids[s:e]
            mask[row, :e - s] = 1
        hidden = self.forward(padded, mask)
        out = hidden.new_empty((ids.shape[0], hidden.shape[-1]))
        for row, (s, e) in enumerate(spans):
            out[s:e] = hidden[row, :e - s]
        return out
