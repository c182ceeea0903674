"""An independent reference: the RetinaLogos authors' NextDiT (uni-medical/retina-text2cfp `codes/models/model.py`, a
Lumina-Next fork) re-written in plain PyTorch with their module and parameter names, so its `state_dict()` has the
exact key layout of their `consolidated[_ema].00-of-01.pth`.

Only what the fp32 single-rank path does is kept: fairscale's Column/RowParallelLinear at world size 1 are nn.Linear,
flash-attn varlen with GQA equals SDPA with each KV head repeated for its group of query heads. Nothing here imports
diffusers: the test compares diffusers' `LuminaNextDiT2DModel` loaded through the converter against this forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0) -> torch.Tensor:
    """NextDiT's 2D RoPE table: (end, end, dim // 2) complex, the first dim // 4 pairs for rows, the rest for columns."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    freqs = torch.outer(torch.arange(end).float(), freqs)
    cis = torch.polar(torch.ones_like(freqs), freqs)
    h = cis.view(end, 1, dim // 4, 1).repeat(1, end, 1, 1)
    w = cis.view(1, end, dim // 4, 1).repeat(end, 1, 1, 1)
    return torch.cat([h, w], dim=-1).flatten(2)


def rope(x: torch.Tensor, cis: torch.Tensor) -> torch.Tensor:
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * cis.unsqueeze(2)).flatten(3).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def modulate(x, scale):
    return x * (1 + scale.unsqueeze(1))


class Attention(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, y_dim):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = n_heads, n_kv_heads, dim // n_heads
        kv = n_kv_heads * self.head_dim
        self.wq, self.wk, self.wv = (
            nn.Linear(dim, dim, bias=False),
            nn.Linear(dim, kv, bias=False),
            nn.Linear(dim, kv, bias=False),
        )
        self.wk_y, self.wv_y = nn.Linear(y_dim, kv, bias=False), nn.Linear(y_dim, kv, bias=False)
        self.gate = nn.Parameter(torch.zeros(n_heads))
        self.wo = nn.Linear(dim, dim, bias=False)
        self.q_norm, self.k_norm, self.ky_norm = nn.LayerNorm(dim), nn.LayerNorm(kv), nn.LayerNorm(kv)

    def forward(self, x, x_mask, cis, y, y_mask):
        b, n, _ = x.shape
        rep = self.n_heads // self.n_kv
        xq = self.q_norm(self.wq(x)).view(b, n, self.n_heads, self.head_dim)
        xk = self.k_norm(self.wk(x)).view(b, n, self.n_kv, self.head_dim)
        xv = self.wv(x).view(b, n, self.n_kv, self.head_dim)
        xq, xk = rope(xq, cis), rope(xk, cis)

        def attend(q, k, v, mask):
            k = (
                k.unsqueeze(3).repeat(1, 1, 1, rep, 1).flatten(2, 3)
            )  # KV head j serves query heads j*rep .. j*rep+rep-1
            v = v.unsqueeze(3).repeat(1, 1, 1, rep, 1).flatten(2, 3)
            m = mask.bool().view(b, 1, 1, -1).expand(b, self.n_heads, n, -1)
            out = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=m, scale=1 / math.sqrt(self.head_dim)
            )
            return out.transpose(1, 2)

        out = attend(xq, xk, xv, x_mask)
        yk = self.ky_norm(self.wk_y(y)).view(b, -1, self.n_kv, self.head_dim)
        yv = self.wv_y(y).view(b, -1, self.n_kv, self.head_dim)
        out = out + attend(xq, yk, yv, y_mask) * self.gate.tanh().view(1, 1, -1, 1)
        return self.wo(out.flatten(-2))


class FeedForward(nn.Module):
    def __init__(self, dim, multiple_of):
        super().__init__()
        hidden = int(2 * (4 * dim) / 3)
        hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of)
        self.w1, self.w2, self.w3 = (
            nn.Linear(dim, hidden, bias=False),
            nn.Linear(hidden, dim, bias=False),
            nn.Linear(dim, hidden, bias=False),
        )

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, multiple_of, y_dim):
        super().__init__()
        self.attention = Attention(dim, n_heads, n_kv_heads, y_dim)
        self.feed_forward = FeedForward(dim, multiple_of)
        self.attention_norm1, self.ffn_norm1 = RMSNorm(dim), RMSNorm(dim)
        self.attention_norm2, self.ffn_norm2 = RMSNorm(dim), RMSNorm(dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(min(dim, 1024), 4 * dim))
        self.attention_y_norm = RMSNorm(y_dim)

    def forward(self, x, x_mask, cis, y, y_mask, c):
        scale_msa, gate_msa, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(4, dim=1)
        a = self.attention(modulate(self.attention_norm1(x), scale_msa), x_mask, cis, self.attention_y_norm(y), y_mask)
        x = x + gate_msa.unsqueeze(1).tanh() * self.attention_norm2(a)
        f = self.feed_forward(modulate(self.ffn_norm1(x), scale_mlp))
        return x + gate_mlp.unsqueeze(1).tanh() * self.ffn_norm2(f)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_ch):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_ch)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(min(dim, 1024), dim))

    def forward(self, x, c):
        return self.linear(modulate(self.norm_final(x), self.adaLN_modulation(c)))


class NextDiT(nn.Module):
    def __init__(self, patch_size, in_channels, dim, n_layers, n_heads, n_kv_heads, multiple_of, cap_feat_dim):
        super().__init__()
        self.patch, self.out_ch = patch_size, in_channels * 2  # learn_sigma
        self.x_embedder = nn.Linear(patch_size * patch_size * in_channels, dim)
        self.t_embedder = TimestepEmbedder(min(dim, 1024))
        self.cap_embedder = nn.Sequential(nn.LayerNorm(cap_feat_dim), nn.Linear(cap_feat_dim, min(dim, 1024)))
        self.layers = nn.ModuleList(
            TransformerBlock(dim, n_heads, n_kv_heads, multiple_of, cap_feat_dim) for _ in range(n_layers)
        )
        self.final_layer = FinalLayer(dim, patch_size, self.out_ch)
        self.freqs_cis = precompute_freqs_cis(dim // n_heads, 384)  # a plain attribute, as theirs: not in state_dict
        self.pad_token = nn.Parameter(torch.empty(dim))

    def forward(self, x, t, cap_feats, cap_mask):
        """Their tensor path; returns all 2*C output channels (their forward then keeps the first C)."""
        b, c, h, w = x.shape
        p = self.patch
        x = self.x_embedder(x.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).flatten(3)).flatten(1, 2)
        mask = torch.ones(b, x.shape[1], dtype=torch.int32)
        cis = self.freqs_cis[: h // p, : w // p].flatten(0, 1).unsqueeze(0)
        m = cap_mask.float().unsqueeze(-1)
        adaln = self.t_embedder(t) + self.cap_embedder((cap_feats * m).sum(1) / m.sum(1))
        for layer in self.layers:
            x = layer(x, mask, cis, cap_feats, cap_mask.bool(), adaln)
        x = self.final_layer(x, adaln)
        x = x.view(b, h // p, w // p, p, p, self.out_ch).permute(0, 5, 1, 3, 2, 4).flatten(4, 5).flatten(2, 3)
        return x
