"""NomicBERT in PyTorch: post-LayerNorm layers, rotary positions, one q/k/v projection, SwiGLU
(its up and gate projections fused into one matmul); flash varlen attention over packed sequences."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codesift.embed.models.layers import Table, fuse, packed_attention
from codesift.embed.models.modernbert_torch import rotary, rotate
from codesift.embed.models.nomicbert import NomicBertConfig


class Layer(nn.Module):
    def __init__(self, cfg: NomicBertConfig, device=None):
        super().__init__()
        h, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.n_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.attn = nn.Module()
        self.attn.wqkv = nn.Linear(h, 3 * h, bias=cfg.qkv_proj_bias, device=device)
        self.attn.wo = nn.Linear(h, h, bias=cfg.qkv_proj_bias, device=device)
        self.attn_norm = nn.LayerNorm(h, eps=eps, device=device)
        self.mlp = nn.Module()
        self.mlp.wi = nn.Linear(h, 2 * cfg.ffn_size, bias=cfg.mlp_fc1_bias, device=device)  # up, then gate
        self.mlp.wo = nn.Linear(cfg.ffn_size, h, bias=cfg.mlp_fc2_bias, device=device)
        self.mlp_norm = nn.LayerNorm(h, eps=eps, device=device)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        up, gate = self.mlp.wi(x).chunk(2, dim=-1)
        return self.mlp_norm(x + self.mlp.wo(up * F.silu(gate)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cos: torch.Tensor,
                sin: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.attn.wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(rotate(q, cos, sin), rotate(k, cos, sin), v, attn_mask=mask)
        x = self.attn_norm(x + self.attn.wo(y.transpose(1, 2).reshape(b, t, h)))
        return self.feed_forward(x)

    def forward_packed(self, x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int, cos: torch.Tensor,
                       sin: torch.Tensor) -> torch.Tensor:
        n, h = x.shape
        q, k, v = self.attn.wqkv(x).view(n, 3, self.n_heads, self.head_dim).unbind(1)
        cos, sin = cos[:, None], sin[:, None]  # [tokens, 1, d] against [tokens, heads, d]
        y = packed_attention(rotate(q, cos, sin), rotate(k, cos, sin), v, cu_seqlens, max_seqlen)
        x = self.attn_norm(x + self.attn.wo(y.reshape(n, h)))
        return self.feed_forward(x)


class NomicBert(nn.Module):
    # flash varlen attention computes exactly this model's attention over packed sequences
    packs_with_flash = True

    def __init__(self, cfg: NomicBertConfig, device=None):
        super().__init__()
        self.config = cfg
        self.tok_embeddings = Table(cfg.vocab_size, cfg.hidden_size, device=device)
        self.type_embeddings = Table(cfg.type_vocab_size, cfg.hidden_size, device=device)
        self.embed_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, device=device)
        self.layers = nn.ModuleList(Layer(cfg, device) for _ in range(cfg.num_hidden_layers))

    @staticmethod
    def prepare_state(state: dict[str, torch.Tensor], cfg: NomicBertConfig) -> dict[str, torch.Tensor]:
        for i in range(cfg.num_hidden_layers):
            p = f"layers.{i}.mlp."
            fuse(state, [p + "up.weight", p + "gate.weight"], p + "wi.weight")
            if cfg.mlp_fc1_bias:
                fuse(state, [p + "up.bias", p + "gate.bias"], p + "wi.bias")
        return state

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Every input is one segment, so the token-type embedding is row 0 for all tokens."""
        return self.embed_norm(self.tok_embeddings(ids) + self.type_embeddings.weight[0])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token states [batch, seq, hidden] for right-padded `input_ids`; `attention_mask` is 1 on real tokens."""
        x = self.embed(input_ids)
        cos, sin = rotary(torch.arange(input_ids.shape[1], device=input_ids.device), self.config.rope_theta,
                          self.config.head_dim)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]  # keys only: padded queries are discarded later
        for layer in self.layers:
            x = layer(x, mask, cos, sin)
        return x

    def forward_packed(self, ids: torch.Tensor, positions: torch.Tensor, cu_seqlens: torch.Tensor,
                       max_seqlen: int) -> torch.Tensor:
        """Token states [tokens, hidden] for sequences packed end to end with no padding.

        ids, positions (within each sequence, from 0) [tokens]; cu_seqlens [n + 1] int32 offsets;
        max_seqlen bounds every length. Attention stays within each sequence.
        """
        x = self.embed(ids)
        cos, sin = rotary(positions, self.config.rope_theta, self.config.head_dim)
        for layer in self.layers:
            x = layer.forward_packed(x, cu_seqlens, max_seqlen, cos, sin)
        return x
