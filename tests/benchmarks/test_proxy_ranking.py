"""benchmarks/proxy_ranking.py's arithmetic (issue 12): the paired tau difference, the proxy flag and the
training-compute estimate. Its trainings are nas.orchestration.validation's, tested in
tests/nas/orchestration/test_validation.py."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pytest

from search_spaces import complexity, template
from search_spaces.architecture import with_io
from tests.helpers.searchrun import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import proxy_ranking  # noqa: E402


def test_paired_difference_is_zero_for_the_same_proxy_and_positive_for_a_better_one():
    ref = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert proxy_ranking.paired_tau_difference(ref, ref, ref) == (0.0, 0.0, 0.0)
    reversed_ = ref[::-1].copy()
    d, lo, hi = proxy_ranking.paired_tau_difference(ref, reversed_, ref)
    assert d == pytest.approx(2.0) and lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    noisy = np.array([0.9, 0.7, 0.8, 0.6, 0.4, 0.5])  # 2 of 15 pairs swapped: tau 11/15 vs 1
    d, lo, hi = proxy_ranking.paired_tau_difference(noisy, ref, ref)
    assert d == pytest.approx(11 / 15 - 1) and lo <= d <= hi <= 0.0


def test_proxy_flag():
    assert proxy_ranking.parse_proxy("33x1") == (33, 1)
    for bad in ("33", "33x", "0x2", "ax2"):
        with pytest.raises(argparse.ArgumentTypeError, match="--proxy"):
            proxy_ranking.parse_proxy(bad)


def test_training_compute_is_three_forwards_at_the_trials_ends():
    arch = template((1, 1, 1, 1), 4, 8)
    one = proxy_ranking.train_flops(json.dumps(arch.to_dict()), 33, channels=1, classes=10)
    assert one == 3 * complexity(with_io(arch, in_channels=1, num_classes=10), 33).flops
    assert proxy_ranking.train_flops(json.dumps(arch.to_dict()), 28, 1, 10) < one  # 28 leaves smaller maps
