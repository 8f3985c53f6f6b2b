"""leadscore: real-time lead scoring and routing on Kafka.

The scoring core lives in `scoring_rules`, the stream processors in `streams`, routing in
`routing`; this package holds what they share: settings, the canonical event, logging,
the command line and the launchers for the servers the tests and dev mode run.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leadscore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
