"""BERT (and XLM-RoBERTa) in PyTorch: post-LayerNorm layers, GELU, attention through
scaled_dot_product_attention, or flash varlen attention over packed sequences."""
from __future__ import annotations

import torch
from torch import nn

from codesift.embed.models.bert import BertConfig
from codesift.embed.models.layers import ACTIVATIONS, Table, fuse, packed_attention


class Attention(nn.Module):
    def __init__(self, cfg: BertConfig, device=None):
        super().__init__()
        self.n_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, device=device)  # q, k, v fused: one matmul
        self.wo = nn.Linear(cfg.hidden_size, cfg.hidden_size, device=device)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(b, t, h))

    def forward_packed(self, x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        """x [tokens, hidden] of sequences laid end to end; cu_seqlens [n + 1] their int32 offsets."""
        n, h = x.shape
        q, k, v = self.wqkv(x).view(n, 3, self.n_heads, self.head_dim).unbind(1)
        return self.wo(packed_attention(q, k, v, cu_seqlens, max_seqlen).reshape(n, h))


class FeedForward(nn.Module):
    def __init__(self, cfg: BertConfig, device=None):
        super().__init__()
        self.w1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, device=device)
        self.w2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size, device=device)
        self.act = ACTIVATIONS[cfg.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.act(self.w1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BertConfig, device=None):
        super().__init__()
        self.attention = Attention(cfg, device)
        self.attention_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, device=device)
        self.ffn = FeedForward(cfg, device)
        self.ffn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, device=device)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x, mask))
        return self.ffn_norm(x + self.ffn(x))

    def forward_packed(self, x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        x = self.attention_norm(x + self.attention.forward_packed(x, cu_seqlens, max_seqlen))
        return self.ffn_norm(x + self.ffn(x))


class Bert(nn.Module):
    # flash varlen attention computes exactly this model's attention over packed sequences
    packs_with_flash = True

    def __init__(self, cfg: BertConfig, device=None):
        """device="meta" builds the structure without allocating; `layers.load_module` assigns the weights."""
        super().__init__()
        self.config = cfg
        self.tok_embeddings = Table(cfg.vocab_size, cfg.hidden_size, device=device)
        self.pos_embeddings = Table(cfg.max_position_embeddings, cfg.hidden_size, device=device)
        self.type_embeddings = Table(cfg.type_vocab_size, cfg.hidden_size, device=device)
        self.embed_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, device=device)
        self.layers = nn.ModuleList(EncoderLayer(cfg, device) for _ in range(cfg.num_hidden_layers))

    @staticmethod
    def prepare_state(state: dict[str, torch.Tensor], cfg: BertConfig) -> dict[str, torch.Tensor]:
        for i in range(cfg.num_hidden_layers):
            p = f"layers.{i}.attention."
            for kind in ("weight", "bias"):
                fuse(state, [f"{p}{w}.{kind}" for w in ("wq", "wk", "wv")], f"{p}wqkv.{kind}")
        return state

    def embed(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Every input is one segment, so the token-type embedding is row 0 for all tokens."""
        x = self.tok_embeddings(ids) + self.pos_embeddings(positions + self.config.position_offset)
        return self.embed_norm(x + self.type_embeddings.weight[0])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token states [batch, seq, hidden] for right-padded `input_ids`; `attention_mask` is 1 on real tokens."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids, positions)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]  # keys only: padded queries are discarded later
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def forward_packed(self, ids: torch.Tensor, positions: torch.Tensor, cu_seqlens: torch.Tensor,
                       max_seqlen: int) -> torch.Tensor:
        """Token states [tokens, hidden] for sequences packed end to end with no padding.

        ids, positions (within each sequence, from 0) [tokens]; cu_seqlens [n + 1] int32 offsets;
        max_seqlen bounds every length. Attention stays within each sequence.
        """
        x = self.embed(ids, positions)
        for layer in self.layers:
            x = layer.forward_packed(x, cu_seqlens, max_seqlen)
        return x
