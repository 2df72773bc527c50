"""The production loop: live quality, drift, tiers, the shadow challenger and the review queue.

Plain functions over the store and the registry; ``flows/monitor.py`` composes them.
"""
