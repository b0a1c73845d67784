"""What ties frames together: the per-frame policy, optical flow, style keyframes, region masks."""
