"""Localisation by keypoint matching (the ForkGAN / N2D3 Alderley protocol).

Score of one frame: the number of SIFT keypoints of the translated frame that match the matched
real day frame under Lowe's ratio test. Parameters, written down because the papers do not state
theirs: OpenCV SIFT with its defaults (nfeatures 0 = all, 3 layers per octave, contrast
threshold 0.04, edge threshold 10, sigma 1.6) on the 8-bit luma of each image; brute-force L2
nearest and second-nearest descriptors from the translated frame into the day frame; a match
counts when d1 < 0.8 d2 (Lowe 2004, section 7.1). No geometric verification.
"""

from __future__ import annotations

import cv2
import numpy as np

LOWE_RATIO = 0.8


def _descriptors(img: np.ndarray) -> np.ndarray | None:
    gray = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    _, desc = cv2.SIFT_create().detectAndCompute(gray, None)
    return desc


def sift_matches(query: np.ndarray, reference: np.ndarray, ratio: float = LOWE_RATIO) -> int:
    """Ratio-test SIFT matches from ``query`` (a translated frame) into ``reference`` (its day frame)."""
    dq, dr = _descriptors(query), _descriptors(reference)
    if dq is None or dr is None or len(dr) < 2:
        return 0
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(dq, dr, k=2)
    return sum(1 for m, n in pairs if m.distance < ratio * n.distance)
