"""Routing of new leads to reps (Market Response Reps, Sales Development Reps).

Assignment, queues and alerts arrive with the routing issue; the scoring core already emits
the `prospect.promoted` decisions (with their track) that routing consumes.
"""
