import pytest
import torch

from instancehmr.model.positional_encoding import sinusoidal_encoding_2d


def test_halves_encode_y_then_x():
    enc = sinusoidal_encoding_2d(16, 4, 6)
    assert enc.shape == (16, 4, 6)
    assert torch.allclose(enc[:8, :, 0:1], enc[:8, :, 1:2])  # y half constant along x
    assert torch.allclose(enc[8:, 0:1, :], enc[8:, 1:2, :])  # x half constant along y
    assert enc[0, 0, 0] == pytest.approx(torch.sin(torch.tensor(2 * torch.pi / 4)).item(), abs=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sinusoidal_encoding_2d(10, 4, 4)
