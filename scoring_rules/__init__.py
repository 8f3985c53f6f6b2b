"""Scoring rules: the rule-file language, its checker and compiler, and the pure engine core."""
