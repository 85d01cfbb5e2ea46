"""Market Spine benchmarks: product figures as ratios against raw baselines run alongside."""
