"""A BERT encoder in PyTorch, loaded straight from `model.safetensors`.

Post-LayerNorm layers, GELU, attention through scaled_dot_product_attention.
Built on the meta device and filled with the file's (memory-mapped) tensors by
`load_state_dict(assign=True)`, so loading costs no extra copy in fp32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codesift.embed.bert_spec import BertConfig, map_weights
from codesift.embed.safetensors_file import SafetensorsFile

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


class Table(nn.Module):
    """An embedding table with no random init (on the meta device, init would cost a second of imports)."""

    def __init__(self, n: int, dim: int, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, dim, device=device), requires_grad=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


class Attention(nn.Module):
    def __init__(self, cfg: BertConfig, device=None):
        super().__init__()
        self.n_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, device=device)  # q, k, v fused: one matmul
        self.wo = nn.Linear(cfg.hidden_size, cfg.hidden_size, device=device)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(b, t, h))

    def forward_packed(self, x: torch.Tensor, cu_seqlens: torch.Tensor, max_len: int) -> torch.Tensor:
        """x [tokens, hidden] of sequences laid end to end; cu_seqlens [n + 1] their int32 offsets."""
        n, h = x.shape
        q, k, v = self.wqkv(x).view(n, 3, self.n_heads, self.head_dim).unbind(1)
        y = packed_attention(q, k, v, cu_seqlens, max_len)
        return self.wo(y.reshape(n, h))


class FeedForward(nn.Module):
    def __init__(self, cfg: BertConfig, device=None):
        super().__init__()
        self.w1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, device=device)
        self.w2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size, device=device)
        self.act = _ACTIVATIONS[cfg.hidden_act]

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

    def forward_packed(self, x: torch.Tensor, cu_seqlens: torch.Tensor, max_len: int) -> torch.Tensor:
        x = self.attention_norm(x + self.attention.forward_packed(x, cu_seqlens, max_len))
        return self.ffn_norm(x + self.ffn(x))


class Bert(nn.Module):
    def __init__(self, cfg: BertConfig, device=None):
        """device="meta" builds the structure without allocating; `load_bert` then assigns the weights."""
        super().__init__()
        self.config = cfg
        self.tok_embeddings = Table(cfg.vocab_size, cfg.hidden_size, device=device)
        self.pos_embeddings = Table(cfg.max_position_embeddings, cfg.hidden_size, device=device)
        self.type_embeddings = Table(cfg.type_vocab_size, cfg.hidden_size, device=device)
        self.embed_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, device=device)
        self.layers = nn.ModuleList(EncoderLayer(cfg, device) for _ in range(cfg.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token states [batch, seq, hidden] for right-padded `input_ids`; `attention_mask` is 1 on real tokens.

        Every input is one segment, so the token-type embedding is row 0 for all tokens.
        """
        t = input_ids.shape[1]
        x = self.tok_embeddings(input_ids) + self.pos_embeddings.weight[:t] + self.type_embeddings.weight[0]
        x = self.embed_norm(x)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]  # keys only: padded queries are discarded later
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def forward_packed(self, ids: torch.Tensor, positions: torch.Tensor, cu_seqlens: torch.Tensor,
                       max_len: int) -> torch.Tensor:
        """Token states [tokens, hidden] for sequences packed end to end with no padding.

        ids, positions [tokens]; cu_seqlens [n + 1] int32 offsets; max_len bounds every length.
        Attention stays within each sequence (varlen flash attention on CUDA).
        """
        x = self.tok_embeddings(ids) + self.pos_embeddings(positions) + self.type_embeddings.weight[0]
        x = self.embed_norm(x)
        for layer in self.layers:
            x = layer.forward_packed(x, cu_seqlens, max_len)
        return x


def _varlen_attn():
    """Flash attention over packed sequences: torch's public varlen API, else the aten op beneath it."""
    try:
        from torch.nn.attention.varlen import varlen_attn

        return varlen_attn
    except ImportError:
        pass
    flash = getattr(torch.ops.aten, "_flash_attention_forward", None)
    if flash is None:
        return None

    def varlen(q, k, v, cu_q, cu_k, max_q, max_k):
        return flash(q, k, v, cu_q, cu_k, max_q, max_k, 0.0, False, False)[0]

    return varlen


def packed_attention_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the fast packed path exists here: flash varlen attention is CUDA fp16/bf16 only."""
    return (device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and _varlen_attn() is not None
            and torch.cuda.get_device_capability(device)[0] >= 8)  # flash attention needs Ampere or newer


def packed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_len: int) -> torch.Tensor:
    """Attention within each packed sequence: q, k, v [tokens, heads, head_dim] -> same shape."""
    if packed_attention_supported(q.device, q.dtype):
        return _varlen_attn()(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len)
    # Reference path (CPU, fp32): one SDPA per sequence. Correct, not fast; used by tests.
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        if e > s:
            seg = F.scaled_dot_product_attention(q[s:e].transpose(0, 1), k[s:e].transpose(0, 1),
                                                 v[s:e].transpose(0, 1))
            out[s:e] = seg.transpose(0, 1)
    return out


def fuse_qkv(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Replace each layer's wq/wk/wv tensors by one concatenated wqkv tensor."""
    for i in range(n_layers):
        p = f"layers.{i}.attention."
        for kind in ("weight", "bias"):
            parts = [state.pop(f"{p}{w}.{kind}") for w in ("wq", "wk", "wv")]
            state[f"{p}wqkv.{kind}"] = torch.cat(parts, dim=0)
    return state


def load_bert(weights_path, config: dict, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> Bert:
    """Build a Bert from config.json's dict and a safetensors file, on `device` in `dtype`."""
    cfg = BertConfig.from_dict(config, source=str(weights_path))
    st = SafetensorsFile(weights_path)
    mapping = map_weights(st, cfg)  # checks every tensor's presence and shape first
    from safetensors import safe_open

    state = {}
    with safe_open(str(weights_path), framework="pt", device="cpu") as f:
        for ours, name in mapping.items():
            state[ours] = f.get_tensor(name)
    state = fuse_qkv(state, cfg.num_hidden_layers)
    state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
    model = Bert(cfg, device="meta")
    model.load_state_dict(state, assign=True, strict=True)
    return model.eval().requires_grad_(False)

