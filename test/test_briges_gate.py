"""Bridging Gate math: Attention Temperature Scaling, learnable and overridden tau, gate shape rules."""

import math

import pytest
import torch

from fsmde_ros.briges.attention import Temperature, TemperatureAttention
from fsmde_ros.briges.gate import BridgingGate, GateBlock, GateConfig, sincos_position_code


def reference_attention(att: TemperatureAttention, q_in, kv_in, tau: float) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d) / tau) V written out, head by head."""
    q, k, v = att.to_q(q_in), att.to_k(kv_in), att.to_v(kv_in)
    d = att.head_dim
    heads = []
    for h in range(att.heads):
        sl = slice(h * d, (h + 1) * d)
        weights = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(d) / tau, dim=-1)
        heads.append(weights @ v[..., sl])
    return att.to_out(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("tau", [0.25, 1.0, 3.0])
def test_attention_matches_the_temperature_formula(tau):
    torch.manual_seed(0)
    att = TemperatureAttention(12, 6, 8, 2, Temperature("fixed", tau))
    torch.nn.init.normal_(att.to_out.weight)
    q_in, kv_in = torch.randn(3, 5, 12), torch.randn(3, 7, 6)
    torch.testing.assert_close(att(q_in, kv_in), reference_attention(att, q_in, kv_in, tau))


def test_low_temperature_attends_to_the_best_key_and_high_temperature_averages():
    torch.manual_seed(0)
    att = TemperatureAttention(4, 4, 4, 1, Temperature())
    with torch.no_grad():
        att.to_out.weight.copy_(torch.eye(4))
    q_in, kv_in = torch.randn(1, 1, 4), torch.randn(1, 9, 4)
    with torch.no_grad():
        best = int((att.to_q(q_in) @ att.to_k(kv_in).transpose(1, 2)).argmax())
        values = att.to_v(kv_in)[0]
        att.temperature.set_override(1e-4)
        torch.testing.assert_close(att(q_in, kv_in)[0, 0], values[best] + att.to_out.bias)
        att.temperature.set_override(1e4)
        torch.testing.assert_close(
            att(q_in, kv_in)[0, 0], values.mean(0) + att.to_out.bias, atol=1e-3, rtol=0
        )


def test_learnable_temperature_is_exp_theta_and_gets_gradients():
    t = Temperature("learnable", 2.0)
    assert isinstance(t.theta, torch.nn.Parameter)
    assert t().item() == pytest.approx(2.0)
    att = TemperatureAttention(4, 4, 4, 2, t)
    torch.nn.init.normal_(att.to_out.weight)
    att(torch.randn(2, 3, 4), torch.randn(2, 5, 4)).square().sum().backward()
    assert t.theta.grad is not None and float(t.theta.grad.abs()) > 0


def test_fixed_temperature_is_a_buffer():
    t = Temperature("fixed", 0.5)
    assert list(t.parameters()) == [] and "theta" in t.state_dict()
    assert float(t()) == pytest.approx(0.5)


def test_override_sweeps_tau_and_restores_it():
    torch.manual_seed(0)
    gate = BridgingGate(
        [8, 8], 4, GateConfig(levels=(0, 1), dim=8, heads=2, temperature="learnable", tau=1.5)
    )
    assert len(gate.temperatures()) == 4
    gate.set_temperature_override(0.7)
    assert all(t().item() == pytest.approx(0.7) for t in gate.temperatures())
    gate.set_temperature_override(None)
    assert all(t().item() == pytest.approx(1.5) for t in gate.temperatures())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperatures_are_rejected(bad):
    with pytest.raises(ValueError, match="tau"):
        Temperature("fixed", bad)
    with pytest.raises(ValueError, match="override"):
        Temperature().set_override(bad)


def test_bad_gate_configs_are_rejected():
    with pytest.raises(ValueError, match="temperature mode"):
        Temperature("annealed")
    with pytest.raises(ValueError, match="at least one"):
        GateConfig(levels=())
    with pytest.raises(ValueError, match="distinct"):
        GateConfig(levels=(1, 1))
    with pytest.raises(ValueError, match="out of range"):
        BridgingGate([8, 8], 4, GateConfig(levels=(2,)))
    with pytest.raises(ValueError, match="divisible"):
        TemperatureAttention(4, 4, 6, 4, Temperature())
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_position_code(2, 2, 6, torch.device("cpu"))


def test_block_resizes_segmentation_features_and_keeps_shape():
    torch.manual_seed(0)
    block = GateBlock(8, 5, GateConfig(levels=(0,), dim=8, heads=2))
    depth = torch.randn(2, 8, 3, 4)
    torch.testing.assert_close(block(depth, torch.randn(2, 5, 12, 16)), depth, rtol=0, atol=0)
    for p in (block.cross.to_out.weight, block.self_attn.to_out.weight):
        torch.nn.init.normal_(p)
    out = block(depth, torch.randn(2, 5, 12, 16))
    assert out.shape == depth.shape and not torch.equal(out, depth)


def test_cross_attention_uses_the_segmentation_features():
    torch.manual_seed(0)
    block = GateBlock(8, 5, GateConfig(levels=(0,), dim=8, heads=2))
    torch.nn.init.normal_(block.cross.to_out.weight)
    depth = torch.randn(1, 8, 3, 4)
    assert not torch.allclose(block(depth, torch.randn(1, 5, 3, 4)), block(depth, torch.randn(1, 5, 3, 4)))


def test_position_code_shape_and_range():
    code = sincos_position_code(3, 5, 16, torch.device("cpu"))
    assert code.shape == (15, 16)
    assert float(code.abs().max()) <= 1.0
    assert len({tuple(row.tolist()) for row in code}) == 15
