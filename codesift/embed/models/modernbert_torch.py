"""ModernBERT in PyTorch: pre-LayerNorm layers without biases, rotary positions, GeGLU, and
alternating global and local (sliding-window) attention; over packed sequences the local
layers use flash attention's own window."""
from __future__ import annotations

import torch
from torch import nn

from codesift.embed.models.layers import ACTIVATIONS, Table, band_mask, packed_attention
from codesift.embed.models.modernbert import GLOBAL, LOCAL, ModernBertConfig


def rotary(positions: torch.Tensor, theta: float, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [tokens, head_dim] (float32) for positions [tokens]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32)
                                / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions in float32, "rotate half" layout; cos, sin broadcast against x."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)


class Layer(nn.Module):
    def __init__(self, cfg: ModernBertConfig, index: int, device=None):
        super().__init__()
        h, eps = cfg.hidden_size, cfg.norm_eps
        self.kind = cfg.kinds[index]
        self.window = cfg.window if self.kind == LOCAL else None
        self.n_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        # the first layer's input is the embedding norm's output: no norm of its own
        self.attn_norm = (nn.Identity() if index == 0
                          else nn.LayerNorm(h, eps=eps, bias=cfg.norm_bias, device=device))
        self.attn = nn.Module()
        self.attn.wqkv = nn.Linear(h, cfg.qkv_size, bias=cfg.attention_bias, device=device)
        self.attn.wo = nn.Linear(h, h, bias=cfg.attention_bias, device=device)
        self.mlp_norm = nn.LayerNorm(h, eps=eps, bias=cfg.norm_bias, device=device)
        self.mlp = nn.Module()
        self.mlp.wi = nn.Linear(h, cfg.glu_size, bias=cfg.mlp_bias, device=device)
        self.mlp.wo = nn.Linear(cfg.intermediate_size, h, bias=cfg.mlp_bias, device=device)
        self.act = ACTIVATIONS[cfg.hidden_activation]

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_in, gate = self.mlp.wi(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.mlp.wo(self.act(gate_in) * gate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cos: torch.Tensor,
                sin: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        qkv = self.attn.wqkv(self.attn_norm(x)).view(b, t, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [b, heads, t, d] each
        y = nn.functional.scaled_dot_product_attention(rotate(q, cos, sin), rotate(k, cos, sin), v, attn_mask=mask)
        x = x + self.attn.wo(y.transpose(1, 2).reshape(b, t, h))
        return self.feed_forward(x)

    def forward_packed(self, x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int, cos: torch.Tensor,
                       sin: torch.Tensor) -> torch.Tensor:
        n, h = x.shape
        q, k, v = self.attn.wqkv(self.attn_norm(x)).view(n, 3, self.n_heads, self.head_dim).unbind(1)
        cos, sin = cos[:, None], sin[:, None]  # [tokens, 1, d] against [tokens, heads, d]
        y = packed_attention(rotate(q, cos, sin), rotate(k, cos, sin), v, cu_seqlens, max_seqlen, self.window)
        x = x + self.attn.wo(y.reshape(n, h))
        return self.feed_forward(x)


class ModernBert(nn.Module):
    # flash varlen attention computes global and sliding-window attention over packed sequences
    packs_with_flash = True

    def __init__(self, cfg: ModernBertConfig, device=None):
        super().__init__()
        self.config = cfg
        self.tok_embeddings = Table(cfg.vocab_size, cfg.hidden_size, device=device)
        self.embed_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=cfg.norm_bias, device=device)
        self.layers = nn.ModuleList(Layer(cfg, i, device) for i in range(cfg.num_hidden_layers))
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=cfg.norm_bias, device=device)

    @staticmethod
    def prepare_state(state: dict[str, torch.Tensor], cfg: ModernBertConfig) -> dict[str, torch.Tensor]:
        return state

    def _rotary(self, positions: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.config
        return {kind: rotary(positions, cfg.rope_theta(kind), cfg.head_dim) for kind in set(cfg.kinds)}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token states [batch, seq, hidden] for right-padded `input_ids`; `attention_mask` is 1 on real tokens."""
        b, t = input_ids.shape
        x = self.embed_norm(self.tok_embeddings(input_ids))
        rope = self._rotary(torch.arange(t, device=input_ids.device))
        keys = (torch.ones(b, t, dtype=torch.bool, device=x.device) if attention_mask is None
                else attention_mask.bool())[:, None, None, :]
        itself = torch.eye(t, dtype=torch.bool, device=x.device)  # padded queries see themselves: no empty row
        masks = {GLOBAL: keys | itself, LOCAL: (keys & band_mask(t, self.config.window, x.device)) | itself}
        for layer in self.layers:
            x = layer(x, masks[layer.kind], *rope[layer.kind])
        return self.final_norm(x)

    def forward_packed(self, ids: torch.Tensor, positions: torch.Tensor, cu_seqlens: torch.Tensor,
                       max_seqlen: int) -> torch.Tensor:
        """Token states [tokens, hidden] for sequences packed end to end with no padding.

        ids, positions (within each sequence, from 0) [tokens]; cu_seqlens [n + 1] int32 offsets;
        max_seqlen bounds every length. Attention stays within each sequence (and its window).
        """
        x = self.embed_norm(self.tok_embeddings(ids))
        rope = self._rotary(positions)
        for layer in self.layers:
            x = layer.forward_packed(x, cu_seqlens, max_seqlen, *rope[layer.kind])
        return self.final_norm(x)
